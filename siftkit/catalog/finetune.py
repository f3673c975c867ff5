"""The fine-tuned variant (spec §2 "Generators": TRL SFT on (context → description) pairs from the pool, the same
retrieval few-shot at inference), trained so that no description of a target's database is ever trained on.

* Folds [ours]: the databases, sorted by name, are dealt round-robin into ``folds`` groups; the model that
  describes the targets of group g is trained on the described assets of every other group. ``folds=0`` gives one
  model per database, the exact leave-one-database-out; a few groups (the default 2) are what 2 CPU cores can train,
  and leak no more (each target's database is still unseen; each model sees fewer databases).
* Rows: every usable asset (non-trivial, not a duplicate) of the training databases, prompt = the zero-shot prompt
  of :func:`~siftkit.catalog.exemplars.build_prompt` through the model's chat template (exactly what inference
  sends), completion = the human description (TRL appends the end-of-turn token; the loss is on the completion).
* Training: LoRA on every linear layer but the head, merged back, through the core helper
  :func:`siftkit.llm.finetune.finetune`. The merged model is saved in a folder named by a hash of the base model,
  the training rows and the settings, so a resumed run loads it instead of training again; inference then runs on
  any engine (``ct2`` converts the folder once).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from siftkit.catalog.exemplars import build_prompt, usable
from siftkit.catalog.model import Asset
from siftkit.core.errors import InputError
from siftkit.core.validate import check_choices, check_range


@dataclass
class CatalogSFTConfig:
    """Settings of the fine-tuned variant; defaults [ours] train one SmolLM2-135M fold in a few minutes on 2 CPU
    cores.

    Attributes:
        folds: groups of databases (one model each); 0 = one model per database (exact leave-one-database-out).
        kinds: asset kinds trained on (and described by the fine-tuned models).
        steps: optimiser steps per fold.
        batch_size: rows per step.
        lr: peak learning rate (linear decay).
        lora_r: LoRA rank (α = 2r).
        max_length: longer training rows (prompt + description, in tokens) are left out.
        max_rows: at most this many training rows per fold, evenly spaced (0 = all).
        seed: data order and LoRA init.
    """

    folds: int = 2
    kinds: tuple[str, ...] = ("column",)
    steps: int = 20
    batch_size: int = 4
    lr: float = 1e-3
    lora_r: int = 16
    max_length: int = 256
    max_rows: int = 0
    seed: int = 0

    def __post_init__(self):
        check_range(self.folds, "folds", lo=0)
        if self.folds == 1:
            raise InputError("must be 0 (one model per database) or >= 2", field="folds")
        self.kinds = tuple(check_choices(self.kinds, ("column", "table"), "kinds"))
        for name in ("steps", "batch_size", "lora_r", "max_length"):
            check_range(getattr(self, name), name, lo=1)
        check_range(self.lr, "lr", lo=0, lo_open=True)
        check_range(self.max_rows, "max_rows", lo=0)


# ------------------------------------------------------------------------------------------------------- method
def fold_groups(dbs: Sequence[str], folds: int) -> list[list[str]]:
    """Databases dealt round-robin (sorted by name) into ``folds`` groups; ``folds=0``: one group per database.

    Example:
        >>> fold_groups(["c", "a", "b", "d"], 2)
        [['a', 'c'], ['b', 'd']]
    """
    names = sorted(set(dbs))
    if folds == 0 or folds >= len(names):
        return [[d] for d in names]
    return [names[g::folds] for g in range(folds)]


def training_rows(tokenizer, assets: Sequence[Asset], held_out: Sequence[str], kinds: Sequence[str] = ("column",),
                  max_rows: int = 0, max_length: int | None = None) -> list[dict]:
    """TRL prompt-completion rows from the usable assets of ``kinds`` outside the databases ``held_out``.

    The prompt is the zero-shot chat prompt rendered by ``tokenizer``'s chat template with the generation prompt
    (what :class:`~siftkit.llm.local.LocalChatModel` sends); the completion is the human description. Rows longer
    than ``max_length`` tokens are left out [ours: truncation would cut the completion, the only part with a loss];
    then at most ``max_rows`` (evenly spaced) are kept.
    """
    out = set(held_out)
    rows = [{"prompt": tokenizer.apply_chat_template(build_prompt(a, []), add_generation_prompt=True, tokenize=False),
             "completion": a.description.strip()}
            for a in assets if a.kind in kinds and usable(a) and a.db not in out]
    if max_length:
        rows = [r for r in rows if len(tokenizer(r["prompt"] + r["completion"]).input_ids) < max_length]
    if max_rows and len(rows) > max_rows:
        step = len(rows) / max_rows
        rows = [rows[int(i * step)] for i in range(max_rows)]
    return rows


def train(base: str, rows: Sequence[dict], cfg: CatalogSFTConfig, threads: int | None = 2):
    """LoRA SFT of the torch model ``base`` on ``rows``; returns ``(LocalChatModel, loss log)``."""
    from siftkit.llm.finetune import FinetuneConfig, finetune
    from siftkit.llm.local import LocalChatModel

    llm = LocalChatModel.from_pretrained(base, threads=threads)
    ft = FinetuneConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, max_length=cfg.max_length,
                        seed=cfg.seed, device="cpu", lora=True, lora_r=cfg.lora_r, lora_alpha=2 * cfg.lora_r,
                        logging_steps=max(1, cfg.steps // 6))
    log = finetune(llm, rows, ft)
    return llm, log


# ----------------------------------------------------------------------------------------------------- plumbing
class FoldModels:
    """One fine-tuned model per fold of databases, trained on first use and kept in ``models_dir``.

    Args:
        assets: the pool (every asset; the usable ones of ``cfg.kinds`` are trained on).
        cfg: the settings.
        models_dir: where fold models are saved (a sub-folder per fold, named by a hash of what it was trained on).
        base: the base model (``"smollm2"`` or a folder).
        engine: inference engine of the fold models (``torch`` or ``ct2``).
        threads: CPU threads for training and inference.
        progress: print one line per fold trained (the run's progress; TRL's own output stays quiet).

    Example:
        >>> fm = FoldModels(cat.assets(), CatalogSFTConfig(), tmp / "sft")  # doctest: +SKIP
        >>> describe(targets, cat.assets(), ["sft-3"], sft=fm)              # doctest: +SKIP
    """

    def __init__(self, assets: Sequence[Asset], cfg: CatalogSFTConfig, models_dir: str | Path, base: str = "smollm2",
                 engine: str = "ct2", threads: int | None = 2, progress: bool = False):
        self.assets, self.cfg, self.dir = list(assets), cfg, Path(models_dir)
        self.base, self.engine, self.threads, self.progress = base, engine, threads, progress
        self.groups = fold_groups([a.db for a in self.assets], cfg.folds)
        self._fold = {d: g for g, dbs in enumerate(self.groups) for d in dbs}

    def name(self, db: str) -> str:
        """The response-cache model name of the fold that holds ``db`` (e.g. ``sft-fold1of3``)."""
        if db not in self._fold:
            raise InputError(f"database {db!r} is not in the fine-tuning pool", field="db")
        return f"sft-fold{self._fold[db] + 1}of{len(self.groups)}"

    def held_out(self, name: str) -> list[str]:
        """The databases fold ``name`` was not trained on (and describes)."""
        return self.groups[int(name.removeprefix("sft-fold").split("of")[0]) - 1]

    def folder(self, name: str) -> Path:
        """Train (once) and save the fold's merged model; returns its folder."""
        from siftkit.llm.local import resolve_model_folder

        base_folder = resolve_model_folder(self.base)[0]
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base_folder, local_files_only=True)
        rows = training_rows(tok, self.assets, self.held_out(name), self.cfg.kinds, self.cfg.max_rows,
                             self.cfg.max_length)
        key = hashlib.sha256(json.dumps({"base": str(base_folder), "rows": rows, "cfg": asdict(self.cfg)},
                                        sort_keys=True, default=str).encode()).hexdigest()[:16]
        dest = self.dir / f"{name}-{key}"
        if (dest / "siftkit-sft.json").exists():
            return dest
        if self.progress:
            print(f"fine-tuning {name}: {len(rows)} rows, {self.cfg.steps} steps", flush=True)
        llm, log = train(str(base_folder), rows, self.cfg, self.threads)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=self.dir))
        try:
            llm.model.save_pretrained(tmp)
            llm.tokenizer.save_pretrained(tmp)
            (tmp / "siftkit-sft.json").write_text(json.dumps({"held_out": self.held_out(name), "rows": len(rows),
                                                              "cfg": asdict(self.cfg), "log": log}, default=str))
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def factory(self, name: str):
        """A zero-argument callable that builds the fold's chat model (training it first if needed)."""
        def build():
            from siftkit.llm.factory import make_local_model

            return make_local_model(str(self.folder(name)), self.engine, "cpu", self.threads, None)

        return build

    def log(self, name: str) -> dict:
        """What the fold's folder records: held-out databases, rows, settings, the loss log."""
        return json.loads((self.folder(name) / "siftkit-sft.json").read_text())
