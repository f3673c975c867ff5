"""CLI ``siftkit relevance synth|select|sft|dpo|judge|eval`` and the LREF quickstart step.

Pair files are JSONL or CSV with ``query``, ``title`` (or ``name``) and, for training and evaluation, ``label``.
Heavy modules (torch, transformers, TRL) load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.relevance.config import LrefConfig

_D = LrefConfig()
app = typer.Typer(no_args_is_help=True, help="LREF: an LLM relevance judge for e-commerce search (arXiv 2503.09223).")

_SCHEMA = {"query": ((str,), True), "title": ((str,), True), "label": ((str,), False)}


def read_pairs(path: Path, need_label: bool = False) -> list[dict]:
    """Pair records from JSONL or CSV (``name`` is accepted for ``title``, ``target`` for ``label``)."""
    from siftkit.core.errors import InputError
    from siftkit.core.io import iter_jsonl, read_csv

    if path.suffix.lower() == ".csv":
        rows = [(i + 2, r) for i, r in enumerate(read_csv(path))]
    else:
        rows = list(iter_jsonl(path))
    out = []
    for line, r in rows:
        r = dict(r)
        r.setdefault("title", r.pop("name", None))
        if r.get("label") in (None, "") and r.get("target"):
            r["label"] = r["target"]
        for f in ("query", "title") + (("label",) if need_label else ()):
            if not isinstance(r.get(f), str) or not r[f]:
                raise InputError(f'field "{f}" missing or not a string', path, line, f)
        r.setdefault("pid", f"{path.stem}-{line}")
        out.append(r)
    if not out:
        raise InputError("no pairs", path)
    return out


def _write_jsonl(path: Path, rows) -> None:
    from siftkit.core.io import write_jsonl

    write_jsonl(path, rows)


def _check(threads: int | None = None, out_file: Path | None = None, out_dir: Path | None = None) -> None:
    """Options every command shares, checked before any file is read or model loads."""
    from siftkit.core.validate import check_output_dir, check_output_file, check_range

    if threads is not None:
        check_range(threads, "--threads", lo=1)
    if out_file is not None:
        check_output_file(out_file)
    if out_dir is not None:
        check_output_dir(out_dir)


def _cfg(**kw) -> LrefConfig:
    return LrefConfig(**{k: v for k, v in kw.items() if v is not None})


def _llm(model: str, threads: int):
    import torch

    from siftkit.llm.local import LocalChatModel

    torch.set_num_threads(threads)
    return LocalChatModel.from_pretrained(model)


def _judge_llm(model: str, threads: int, engine: str):
    """The judging model: the torch one (as for training) or, with ``engine="ct2"``, the CTranslate2 int8 one."""
    if engine == "torch":
        return _llm(model, threads)
    from siftkit.llm.factory import make_local_model

    return make_local_model(model, engine, threads=threads)


def _save(llm, output: Path) -> None:
    from siftkit.core.io import atomic_output_dir

    with atomic_output_dir(output) as tmp:  # a failed save leaves no half-written model folder
        llm.model.save_pretrained(tmp)
        llm.tokenizer.save_pretrained(tmp)
    print(f"model: {output}")


Model = Annotated[str, typer.Option("--model", help='"smollm2", a model folder or a .gguf.')]
Threads = Annotated[int, typer.Option("--threads", help="torch threads.")]
Engine = Annotated[str, typer.Option("--engine", help="Judging engine: torch | ct2 (CTranslate2 int8).")]
MaxLen = Annotated[int, typer.Option("--max-length", help="Token limit of prompt + completion.")]
GradCkpt = Annotated[bool, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing",
                                        help="Recompute activations in backward (on for 7B-scale models).")]
Bf16Judge = Annotated[bool, typer.Option("--judge-autocast/--no-judge-autocast",
                                         help="Score and decode under bf16 autocast (faster on AMX/AVX-512 CPUs).")]


@app.command()
def synth(output: Annotated[Path, typer.Option("--output", help="Folder for train.jsonl and test.jsonl.")],
          n_pairs: Annotated[int, typer.Option("--n-pairs")] = 2000,
          noise_rate: Annotated[float, typer.Option("--noise-rate")] = 0.15,
          seed: Annotated[int, typer.Option("--seed")] = 0):
    """Write the synthetic five-grade set (label noise injected into train).

    Example: ``siftkit relevance synth --output data/lref``
    """
    from siftkit.core.validate import check_range
    from siftkit.relevance.data import synthetic_pairs

    check_range(n_pairs, "--n-pairs", lo=1)
    check_range(noise_rate, "--noise-rate", lo=0, hi=1)
    _check(out_dir=output)
    d = synthetic_pairs(n_pairs=n_pairs, noise_rate=noise_rate, seed=seed)
    output.mkdir(parents=True, exist_ok=True)
    for split, rows in d.items():
        _write_jsonl(output / f"{split}.jsonl", rows)
        print(f"{output / f'{split}.jsonl'}: {len(rows)} pairs")


@app.command()
def select(train: Annotated[Path, typer.Option("--train", help="Labelled pairs (JSONL/CSV).")],
           output: Annotated[Path, typer.Option("--output", help="JSONL of kept pairs.")],
           model: Model = _D.base_model,
           steps: Annotated[int, typer.Option("--steps", help="Steps for each of IM, CI, MS.")] = _D.stage1_steps,
           ms_rule: Annotated[str, typer.Option("--ms-rule", help="neq | eq")] = _D.ms_rule,
           use_im: Annotated[bool, typer.Option("--im/--no-im")] = _D.use_im,
           use_ci: Annotated[bool, typer.Option("--ci/--no-ci")] = _D.use_ci,
           use_ms: Annotated[bool, typer.Option("--ms/--no-ms")] = _D.use_ms,
           seed: Annotated[int, typer.Option("--seed")] = 0, threads: Threads = 1, max_length: MaxLen = _D.max_length,
           gradient_checkpointing: GradCkpt = _D.gradient_checkpointing,
           judge_autocast: Bf16Judge = _D.judge_autocast):
    """Stage 1: train IM, CI and MS from the base model and keep hard, learnable, clean-looking pairs.

    Example: ``siftkit relevance select --train data/lref/train.jsonl --output kept.jsonl``
    """
    _check(threads, out_file=output)
    cfg = _cfg(base_model=model, stage1_steps=steps, ms_rule=ms_rule, use_im=use_im, use_ci=use_ci, use_ms=use_ms,
               seed=seed, max_length=max_length, gradient_checkpointing=gradient_checkpointing,
               judge_autocast=judge_autocast)
    rows = read_pairs(train, need_label=True)
    import torch  # heavy modules after the checks: bad input is answered at once

    from siftkit.relevance.pipeline import stage1_select

    torch.set_num_threads(threads)
    res = stage1_select(cfg, rows, rows, seed, log=print)
    _write_jsonl(output, [r for r, k in zip(rows, res["kept"]) if k])
    print(json.dumps(res["stats"], indent=1))


@app.command()
def sft(train: Annotated[Path, typer.Option("--train", help="Labelled pairs (JSONL/CSV).")],
        output: Annotated[Path, typer.Option("--output", help="Folder for the fine-tuned model.")],
        model: Model = _D.base_model,
        cot: Annotated[bool, typer.Option("--cot/--no-cot", help="Multi-CoT (EE→RA→DR), not label-only.")] = False,
        steps: Annotated[int, typer.Option("--steps", help="Label-only steps, or per CoT format.")] = _D.sft_steps,
        lr: Annotated[float, typer.Option("--lr")] = _D.lr,
        teacher: Annotated[str, typer.Option("--teacher", help="With --cot: rules | llm (rationales from a chat "
                                                               "model, cached).")] = _D.teacher,
        teacher_model: Annotated[str, typer.Option("--teacher-model", help='LLM teacher: "smollm2", a folder or '
                                                                           ".gguf; with --teacher-endpoint the "
                                                                           "served model name.")] = "smollm2",
        teacher_endpoint: Annotated[Optional[str], typer.Option("--teacher-endpoint", help="OpenAI-compatible base "
                                                                                           "URL of the teacher.")]
        = None,
        teacher_cache: Annotated[Optional[Path], typer.Option("--teacher-cache", help="Teacher response cache file "
                                                                                      "(default: siftkit home).")]
        = None,
        seed: Annotated[int, typer.Option("--seed")] = 0, threads: Threads = 1, max_length: MaxLen = _D.max_length,
        gradient_checkpointing: GradCkpt = _D.gradient_checkpointing):
    """Stage 1 main SFT (label only) or Stage 2 Multi-CoT SFT (teacher rationales: rule-based, or an LLM's).

    Example: ``siftkit relevance sft --train kept.jsonl --output runs/lref-sft``;
    ``siftkit relevance sft --cot --teacher llm --teacher-endpoint http://127.0.0.1:8000/v1 --teacher-model NAME
    --train kept.jsonl --model runs/lref-sft --output runs/lref-cot``
    """
    from siftkit.core.errors import InputError
    from siftkit.core.validate import check_url

    _check(threads, out_dir=output, out_file=teacher_cache)
    cfg = _cfg(base_model=model, cot_steps=steps, lr=lr, max_length=max_length,
               gradient_checkpointing=gradient_checkpointing, teacher=teacher)  # checked before any model loads
    if cfg.teacher == "llm" and not cot:
        raise InputError("--teacher llm writes rationales, so it needs --cot", field="--teacher")
    if cfg.teacher != "llm" and (teacher_endpoint or teacher_cache or teacher_model != "smollm2"):
        raise InputError("--teacher-model/--teacher-endpoint/--teacher-cache need --teacher llm", field="--teacher")
    if teacher_endpoint:
        check_url(teacher_endpoint, "--teacher-endpoint")
    rows = read_pairs(train, need_label=True)
    from siftkit.relevance.pipeline import stage2_multicot, wrap  # heavy modules after the checks
    from siftkit.relevance.train import sft as sft_train
    from siftkit.relevance.train import sft_rows

    tutor = None
    if cfg.teacher == "llm":
        import torch

        from siftkit.llm.factory import make_chat_model

        tutor = make_chat_model(teacher_model, teacher_endpoint, teacher_cache, threads=threads,
                                device="cuda" if torch.cuda.is_available() else "cpu")
    llm = _llm(model, threads)
    if cot:
        llm = stage2_multicot(cfg, llm, rows, seed, teacher=tutor, log=print)
    else:
        m, _ = sft_train(llm.model, llm.tokenizer, sft_rows(llm.tokenizer, rows), steps, cfg, seed)
        llm = wrap(m, llm.tokenizer, "lref-sft")
    _save(llm, output)


@app.command()
def dpo(train: Annotated[Path, typer.Option("--train", help="Labelled pairs (JSONL/CSV).")],
        model: Annotated[str, typer.Option("--model", help="The Stage-2 model folder.")],
        output: Annotated[Path, typer.Option("--output", help="Folder for the DPO model.")],
        steps: Annotated[int, typer.Option("--steps")] = _D.dpo_steps,
        beta: Annotated[float, typer.Option("--beta")] = _D.beta,
        lr: Annotated[Optional[float], typer.Option("--lr", help="DPO learning rate (default: the SFT --lr).")] = None,
        rpo_alpha: Annotated[float, typer.Option("--rpo-alpha", help="NLL weight; 0 = plain DPO.")] = _D.rpo_alpha,
        pair_source: Annotated[str, typer.Option("--pair-source", help="ranking | beam")] = _D.pair_source,
        beam_k: Annotated[int, typer.Option("--beam-k")] = _D.beam_k,
        errors: Annotated[str, typer.Option("--errors", help="all | over: which wrong samples give pairs.")] =
        _D.dpo_errors,
        seed: Annotated[int, typer.Option("--seed")] = 0, threads: Threads = 1, max_length: MaxLen = _D.max_length,
        gradient_checkpointing: GradCkpt = _D.gradient_checkpointing, judge_autocast: Bf16Judge = _D.judge_autocast):
    """Stage 3: preference pairs from the model's ranked outputs, then DPO with an NLL term (RPO).

    Example: ``siftkit relevance dpo --train kept.jsonl --model runs/lref-cot --output runs/lref-dpo``
    """
    _check(threads, out_dir=output)
    cfg = _cfg(dpo_steps=steps, beta=beta, dpo_lr=lr, rpo_alpha=rpo_alpha, pair_source=pair_source, beam_k=beam_k,
               dpo_errors=errors, max_length=max_length, gradient_checkpointing=gradient_checkpointing,
               judge_autocast=judge_autocast)
    rows = read_pairs(train, need_label=True)  # the file is read before the model loads
    from siftkit.relevance.pipeline import stage3_dpo

    llm, n = stage3_dpo(cfg, _llm(model, threads), rows, seed, log=print)
    if n == 0:
        print("no preference pairs: the model is right on every scanned sample (or the gold grade is out of reach)")
    _save(llm, output)


@app.command()
def judge(input: Annotated[Path, typer.Option("--input", help="Pairs (JSONL/CSV) with query and title.")],
          output: Annotated[Path, typer.Option("--output", help="JSONL of predictions.")],
          model: Model = _D.base_model,
          cot: Annotated[bool, typer.Option("--cot/--no-cot", help="Decode a rationale before scoring.")] = False,
          scale: Annotated[str, typer.Option("--scale", help="five | wands | esci | binary")] = "five",
          threads: Threads = 1, judge_autocast: Bf16Judge = _D.judge_autocast, engine: Engine = "torch"):
    """Grade pairs by scoring every grade's label words; writes grade, mapped label, log-probs and rationale.

    Example: ``siftkit relevance judge --input pairs.jsonl --output preds.jsonl``
    """
    from siftkit.core.errors import InputError
    from siftkit.llm.factory import check_engine
    from siftkit.relevance.lref import GRADES, SCALES

    if scale not in SCALES:
        raise InputError(f"scale must be one of {sorted(SCALES)}", field="--scale")
    check_engine(engine)
    _check(threads, out_file=output)
    rows = read_pairs(input)
    from siftkit.relevance.pipeline import predict  # heavy modules after the checks

    preds, lp, rats = predict(_judge_llm(model, threads, engine), rows, cot,
                              _cfg(base_model=model, judge_autocast=judge_autocast))
    mapped = SCALES[scale].map(preds)
    _write_jsonl(output, [{"pid": r["pid"], "query": r["query"], "title": r["title"], "grade": g, "label": m,
                           "logprobs": dict(zip(GRADES, x)), "rationale": rat}
                          for r, g, m, x, rat in zip(rows, preds, mapped, lp, rats)])
    print(f"{output}: {len(rows)} judgments")


@app.command("eval")
def eval_cmd(input: Annotated[Path, typer.Option("--input", help="Labelled pairs (JSONL/CSV).")],
             model: Model = _D.base_model,
             cot: Annotated[bool, typer.Option("--cot/--no-cot")] = False,
             scale: Annotated[str, typer.Option("--scale", help="Label scale: five | wands | esci | binary")] = "five",
             output: Annotated[Optional[Path], typer.Option("--output", help="Write the report as JSON.")] = None,
             threads: Threads = 1, judge_autocast: Bf16Judge = _D.judge_autocast, engine: Engine = "torch"):
    """Judge labelled pairs and report macro/weighted F1, accuracy, per-class P/R, over-recall and the confusion.

    Example: ``siftkit relevance eval --input data/lref/test.jsonl --model runs/lref-sft``
    """
    from siftkit.core.io import atomic_write_text
    from siftkit.core.validate import check_choice
    from siftkit.llm.factory import check_engine
    from siftkit.relevance.lref import SCALES

    check_choice(scale, sorted(SCALES), "--scale")
    check_engine(engine)
    _check(threads, out_file=output)
    rows = read_pairs(input, need_label=True)
    from siftkit.relevance.pipeline import evaluate  # heavy modules after the checks

    rep = evaluate(_judge_llm(model, threads, engine), rows, scale, cot,
                   _cfg(base_model=model, judge_autocast=judge_autocast), gold_key="label")
    flat = {k: v for k, v in rep.items() if not isinstance(v, (dict, list))}
    print(json.dumps(flat, indent=1))
    if output:
        atomic_write_text(output, json.dumps(rep, indent=1))


# ---------------------------------------------------------------------------------------------------------------------
# quickstart
# ---------------------------------------------------------------------------------------------------------------------

def quickstart_step(ctx):
    """About a minute on 2 cores: zero-shot SmolLM2 vs a short label-only SFT vs + a few DPO steps, on the
    synthetic set generated on the spot (held-out queries, clean labels)."""
    import pandas as pd
    import torch

    from siftkit.core.report import Section
    from siftkit.relevance.data import synthetic_pairs
    from siftkit.relevance.pipeline import evaluate, load_base, stage3_dpo, train_label_model

    torch.set_num_threads(2)
    opts = ctx.options  # lref.base_model / lref.max_length (tests use the tiny Llama)
    cfg = LrefConfig(seed=ctx.seed, batch_size=4, dpo_batch_size=2, dpo_steps=3, dpo_scan=16, beam_k=5,
                     base_model=opts["base_model"], max_length=opts["max_length"])
    d = synthetic_pairs(n_pairs=400, n_queries=80, seed=ctx.seed)
    test = d["test"][:24]
    rows = []
    rep = evaluate(load_base(cfg), test, "five", cfg=cfg)
    rows.append({"model": "zero-shot SmolLM2", **{k: rep[k] for k in ("macro_f1", "accuracy", "over_recall_err")}})
    llm, _ = train_label_model(cfg, d["train"], 6, ctx.seed)
    rep = evaluate(llm, test, "five", cfg=cfg)
    rows.append({"model": "SFT (6 steps)", **{k: rep[k] for k in ("macro_f1", "accuracy", "over_recall_err")}})
    cfg.dpo_cot = False  # the quickstart model answers with the label only
    llm, n_pairs = stage3_dpo(cfg, llm, d["train"], ctx.seed)
    rep = evaluate(llm, test, "five", cfg=cfg)
    rows.append({"model": f"+ DPO ({n_pairs} pairs, 3 steps)",
                 **{k: rep[k] for k in ("macro_f1", "accuracy", "over_recall_err")}})
    df = pd.DataFrame(rows)
    return Section("LREF relevance judge (synthetic five-grade set)", text=(
        f"SmolLM2-135M judging {len(test)} held-out synthetic query–product pairs on five grades, read by scoring "
        "each grade's label words. A few LoRA steps only: the full three-stage run and its table are in "
        "benchmarks/results/lref.md (python -m benchmarks run lref --profile cpu)."),
        tables=[("macro-F1, accuracy and over-recall (share of errors graded above gold)", df)],
        metrics={r["model"]: {k: v for k, v in r.items() if k != "model"} for r in rows})


def register(registry) -> None:
    """Add ``siftkit relevance ...`` and the ``lref`` quickstart step."""
    registry.app.add_typer(app, name="relevance")
    from siftkit.core.plugins import QuickstartOption

    registry.add_quickstart_step("lref", quickstart_step, order=60, options=[
        QuickstartOption("base_model", str, _D.base_model, "base model: smollm2 or a model folder"),
        QuickstartOption("max_length", int, _D.max_length, "token budget of one prompt")])
