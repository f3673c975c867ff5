"""The ``ct2`` engine of the local back-end: a Llama-architecture model run by CTranslate2 (int8 on CPU by default).

``CT2ChatModel.from_pretrained("smollm2")`` resolves the model exactly as the torch engine does (the embedded
SmolLM2, converted once from its GGUF to a Hugging Face folder; or any Llama-architecture folder or ``.gguf``), then
converts that folder once with CTranslate2's ``TransformersConverter`` into
``siftkit_home()/models/ct2/<name>-<compute_type>-<key>/``. The key hashes the weights (every file of the folder but
siftkit's own markers), the quantisation and the CTranslate2 version; the folder is written to a temporary sibling and
renamed into place with a marker written last, so a killed or concurrent conversion never leaves a half-written model,
and later runs reuse it (SmolLM2: about 7 s to convert, a fraction of a second to load).

Everything a caller sees is the torch engine's: the chat template and tokenisation are
:class:`~siftkit.llm.local.LocalChatModel`'s own methods (shared, not copied), and generated rows are finished by the
same :func:`~siftkit.llm.local.finish_row` (EOS counts as a token, stop sequences are cut from the text), so the
``Generation`` records have the same texts, finish reasons and token counts.

* ``generate``: rows sorted by prompt length (longest first), ``batch_size`` per ``generate_batch`` call, the prompt
  forwarded at once (``include_prompt_in_result=False``). Greedy when ``temperature == 0``. Sampling is temperature +
  top-p over the full vocabulary (``sampling_topk=0``). CTranslate2 draws from one random generator per worker thread,
  seeded once when the thread first samples, so a seeded call runs each prompt's ``n`` samples in their own
  short-lived replica seeded from ``(seed, prompt)`` [ours]: a sample does not depend on which prompts share the call
  (as with the torch engine), at the price of a replica load per prompt (about 0.15 s for SmolLM2 int8). Sampling
  without a seed is batched on the main replica. The two engines draw different samples for the same seed.
* Stop sequences: a per-token callback decodes each row's recent tokens and ends that row when a stop sequence shows
  up (as the torch engine's stopping criterion does).
* ``score``: ``Generator.score_batch`` gives the log-probability of every token after the first; a continuation's
  are the last ``len(continuation)`` of them, tokenised in context exactly as the torch engine does. It computes the
  log-softmax at every position, so calls are capped at ``score_tokens`` padded tokens (memory), and long prompts
  cost about a quarter more than the torch engine's continuation-only logits would at equal speed.
  ``token_logprobs(text)`` gives the same per token of raw text, so ``siftkit serve llm --engine ct2`` answers
  ``echo`` + ``logprobs`` requests.
* ``next_token_logprobs``: one ``generate_batch`` step (``max_length=1``) with ``return_logits_vocab=True`` returns the
  raw next-token logits for the whole vocabulary [ours: rather than ``forward_batch``, which materialises logits at
  every prompt position]; the log-softmax is taken here in float64 and the top-k kept. Only prompts of the same
  token length share a call (CTranslate2 forwards the shortest prompt at once and feeds the rest of longer ones
  token by token, so their first-step logits would not be the next-token distribution).

The fingerprint hashes the engine, the compute type, the conversion key (weights + quantisation), the chat template
and the tokenizer, so the response cache never mixes torch fp32, ct2 float32 and ct2 int8 answers.

Fine-tuned models: :func:`convert_local_model` merges a (LoRA or fully) fine-tuned
:class:`~siftkit.llm.local.LocalChatModel` and converts it; a saved full-weights folder loads with
``CT2ChatModel.from_pretrained(folder)``.

Example:
    >>> llm = CT2ChatModel.from_pretrained("smollm2", compute_type="int8", threads=2)  # doctest: +SKIP
    >>> llm.generate([[{"role": "user", "content": "Name a fruit."}]], GenerationParams(max_new_tokens=8))[0].text
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from siftkit.core.errors import InputError
from siftkit.core.paths import cache_dir
from siftkit.llm.base import Generation, GenerationParams, Prompt, Score, TokenDistribution, prompt_key, sha256_text
from siftkit.llm.factory import check_engine
from siftkit.llm.local import LocalChatModel, _file_sha256, _make_readable, _row_seed, finish_row, resolve_model_folder

BACKEND = "local-ct2"
_MARKER = "siftkit-ct2.json"  # written last into a converted folder; its presence means "complete"
_SEED_LOCK = threading.Lock()  # ctranslate2.set_random_seed is process-wide


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: conversion into the cache
# ---------------------------------------------------------------------------------------------------------------------

def check_compute_type(compute_type: str) -> str:
    check_engine("ct2", compute_type)
    return compute_type


def weights_digest(folder: str | Path) -> str:
    """sha256 over every file of a Hugging Face model folder (names and bytes), siftkit's own ``siftkit-*`` markers
    and hidden files excepted: the weights, the config and the tokenizer."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).iterdir()):
        if f.is_file() and not f.name.startswith(("siftkit-", ".")):
            h.update(f"{f.name}\x00{_file_sha256(f)}\x00".encode())
    return h.hexdigest()


def conversion_key(source_digest: str, compute_type: str) -> str:
    """The cache key of a converted model: the source weights, the quantisation and the CTranslate2 version."""
    import ctranslate2

    return sha256_text(BACKEND, source_digest, compute_type, ctranslate2.__version__)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "model"


def _dest(models_dir: str | Path | None, name: str, compute_type: str, key: str) -> Path:
    return Path(models_dir or cache_dir("models")) / "ct2" / f"{_safe_name(name)}-{compute_type}-{key[:16]}"


def convert_folder(folder: str | Path, compute_type: str = "int8", models_dir: str | Path | None = None,
                   name: str | None = None, source_digest: str | None = None) -> Path:
    """Convert a Llama-architecture Hugging Face folder once into the CTranslate2 cache; return the converted folder.

    Args:
        folder: the Hugging Face model folder (``config.json``, weights, tokenizer).
        compute_type: the quantisation written (``int8``, ``float32``, ...; see
            :data:`siftkit.llm.factory.COMPUTE_TYPES`).
        models_dir: where models are kept (default ``siftkit_home()/models``); conversions go to ``<models_dir>/ct2``.
        name: the folder name's prefix (default: the source folder's name).
        source_digest: the weights' hash when the caller has it (default: :func:`weights_digest` of ``folder``).

    Returns:
        ``<models_dir>/ct2/<name>-<compute_type>-<key[:16]>``, holding the CTranslate2 model, the tokenizer, the
        generation config and ``siftkit-ct2.json``. An existing complete folder is returned as is.
    """
    folder = Path(folder)
    check_compute_type(compute_type)
    if not (folder / "config.json").is_file():
        raise InputError("not a model folder (no config.json)", path=folder)
    digest = source_digest or weights_digest(folder)
    key = conversion_key(digest, compute_type)
    dest = _dest(models_dir, name or folder.name, compute_type, key)
    root = dest.parent
    if (dest / _MARKER).exists():
        return dest

    from ctranslate2.converters import TransformersConverter
    from transformers import AutoTokenizer

    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=root))
    try:
        TransformersConverter(str(folder), low_cpu_mem_usage=True).convert(str(tmp), quantization=compute_type,
                                                                           force=True)
        AutoTokenizer.from_pretrained(folder, local_files_only=True).save_pretrained(tmp)
        if (folder / "generation_config.json").is_file():
            shutil.copyfile(folder / "generation_config.json", tmp / "generation_config.json")
        meta = {"source": str(folder.resolve()), "weights_sha256": digest, "compute_type": compute_type,
                "key": key, "convert_s": round(time.perf_counter() - t0, 2)}
        (tmp / _MARKER).write_text(json.dumps(meta, indent=1))
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


# ---------------------------------------------------------------------------------------------------------------------
# stop sequences
# ---------------------------------------------------------------------------------------------------------------------

class _StopWatch:
    """A ``generate_batch`` callback: ends a row once its decoded recent tokens contain a stop sequence and records
    how many new tokens it had then (the torch engine's stopping criterion, fed token by token)."""

    def __init__(self, tokenizer, stops: Sequence[str], rows: int):
        self.tokenizer, self.stops = tokenizer, list(stops)
        self.window = 4 * max(len(s) for s in self.stops) + 8  # tokens; a char is at most 4 byte-level tokens
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.done_at: dict[int, int] = {}

    def __call__(self, step) -> bool:
        b = step.batch_id
        if b in self.done_at:
            return True
        toks = self.tokens[b]
        toks.append(step.token_id)
        text = self.tokenizer.decode(toks[-self.window:], skip_special_tokens=True)
        if any(s in text for s in self.stops):
            self.done_at[b] = len(toks)
            return True
        return False


# ---------------------------------------------------------------------------------------------------------------------
# the chat model
# ---------------------------------------------------------------------------------------------------------------------

class CT2ChatModel:
    """A :class:`~siftkit.llm.base.ChatModel` over a CTranslate2 ``Generator``.

    Args:
        path: a folder written by :func:`convert_folder` (model, tokenizer, ``siftkit-ct2.json``).
        model_id: the name reported to caches and run metadata.
        compute_type: the quantisation the folder holds (checked against its marker).
        threads: CTranslate2 ``intra_threads`` (0: its default).
        batch_size: rows per ``generate_batch`` / ``score_batch`` call.
        device: ``"cpu"`` or ``"cuda"``.
        score_tokens: at most this many (padded) tokens per ``score_batch`` call: CTranslate2 scores with the
            log-softmax over the whole vocabulary at every position (``tokens × vocabulary`` floats; 2048 tokens of
            SmolLM2 is 400 MB), where the torch engine keeps only the continuation's positions.
    """

    backend = BACKEND
    # the torch engine's tokenisation and chat template, shared (they read only ``tokenizer`` and ``model_id``)
    _prompt_text = LocalChatModel._prompt_text
    _encode = LocalChatModel._encode
    _score_ids = LocalChatModel._score_ids
    _score_pairs = LocalChatModel._score_pairs

    def __init__(self, path: str | Path, model_id: str, compute_type: str = "int8", threads: int = 0,
                 batch_size: int = 32, device: str = "cpu", score_tokens: int = 2048):
        from transformers import AutoTokenizer, GenerationConfig

        self.path = Path(path)
        marker = self.path / _MARKER
        if not marker.is_file():
            raise InputError("not a converted CTranslate2 folder (no siftkit-ct2.json); use convert_folder",
                             path=self.path)
        self.meta = json.loads(marker.read_text())
        if self.meta["compute_type"] != check_compute_type(compute_type):
            raise InputError(f"folder holds {self.meta['compute_type']} weights, not {compute_type}", path=self.path)
        self.model_id, self.compute_type, self.batch_size = model_id, compute_type, batch_size
        self.threads, self.device = threads, device
        self.score_tokens = score_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        gen_cfg = self.path / "generation_config.json"
        self._gen_eos = GenerationConfig.from_pretrained(self.path).eos_token_id if gen_cfg.is_file() else None
        self.generator = self._replica()
        self._fingerprint = self._hash()

    def _replica(self):
        import ctranslate2

        return ctranslate2.Generator(str(self.path), device=self.device, compute_type=self.compute_type,
                                     inter_threads=1, intra_threads=self.threads)

    def __repr__(self) -> str:
        return f"CT2ChatModel({self.model_id!r}, compute_type={self.compute_type!r}, path={str(self.path)!r})"

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path = "smollm2", compute_type: str = "int8",
                        threads: int | None = None, model_id: str | None = None,
                        models_dir: str | Path | None = None, batch_size: int = 32,
                        device: str = "cpu") -> "CT2ChatModel":
        """Load ``"smollm2"``, a Llama-architecture model folder or ``.gguf``, converting it once into the cache.

        Args:
            path_or_name: as for :meth:`LocalChatModel.from_pretrained`.
            compute_type: ``int8`` (default), ``float32`` (parity with the torch engine), or another of
                :data:`siftkit.llm.factory.COMPUTE_TYPES`.
            threads: CTranslate2 intra-op threads (``None``: its default).
            model_id: override the reported name (default as for the torch engine).
            models_dir: where models are kept (default ``siftkit_home()/models``).
            batch_size: rows per CTranslate2 call.
            device: ``"cpu"`` or ``"cuda"``.
        """
        check_compute_type(compute_type)
        folder, default_id = resolve_model_folder(path_or_name, models_dir)
        dest = convert_folder(folder, compute_type, models_dir)
        return cls(dest, model_id or default_id, compute_type, threads or 0, batch_size, device)

    # -- fingerprint -----------------------------------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """sha256 over the engine, compute type, conversion key (weights + quantisation), chat template, tokenizer."""
        return self._fingerprint

    def _hash(self) -> str:
        backend_tok = getattr(self.tokenizer, "backend_tokenizer", None)
        vocab = backend_tok.to_str() if backend_tok is not None else json.dumps(self.tokenizer.get_vocab(),
                                                                              sort_keys=True)
        return sha256_text(BACKEND, self.compute_type, self.meta["key"], self.tokenizer.chat_template or "", vocab)

    # -- tokens ----------------------------------------------------------------------------------------------------

    def _eos_ids(self) -> list[int]:
        extra = self._gen_eos
        ids = [self.tokenizer.eos_token_id] + (extra if isinstance(extra, list) else [extra])
        return list(dict.fromkeys(i for i in ids if i is not None))

    def _tokens(self, ids: list[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _prompt_ids(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        ids = [self._encode(*self._prompt_text(p)) for p in prompts]
        for x, prompt in zip(ids, prompts):
            if not x:
                raise InputError(f"cannot generate from an empty prompt: {prompt_key(prompt)[:80]}")
        return ids

    def _chunks(self, lengths: list[int], max_tokens: int | None = None):
        """Row indices sorted by length (longest first), at most ``batch_size`` rows and (when given) ``max_tokens``
        tokens at a time (a longer row goes alone)."""
        order = sorted(range(len(lengths)), key=lambda r: -lengths[r])
        chunk: list[int] = []
        for r in order:
            if chunk and (len(chunk) == self.batch_size
                          or (max_tokens is not None and (len(chunk) + 1) * lengths[chunk[0]] > max_tokens)):
                yield chunk
                chunk = []
            chunk.append(r)
        if chunk:
            yield chunk

    # -- generate ---------------------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None) -> list[Generation]:
        """Generate ``params.n`` samples per prompt (see the module docstring for decoding rules).

        Args:
            prompts: chat message lists (templated, with the generation prompt) or raw strings (no template).
            params: decoding parameters; default greedy, 64 new tokens.

        Returns:
            One :class:`~siftkit.llm.base.Generation` per prompt, as the torch engine returns them.
        """
        params = params or GenerationParams()
        ids = self._prompt_ids(prompts)
        outs: list[list[tuple[str, str, int]]] = [[] for _ in prompts]
        if params.greedy or params.seed is None:
            samples = 1 if params.greedy else params.n
            rows = [(i, j) for i in range(len(prompts)) for j in range(samples)]
            done: list = [None] * len(rows)
            for chunk in self._chunks([len(ids[i]) for i, _ in rows]):
                for r, out in zip(chunk, self._generate_rows(self.generator, [ids[rows[r][0]] for r in chunk],
                                                             params)):
                    done[r] = out
            for (i, _), out in zip(rows, done):
                outs[i].append(out)
        else:
            for i, prompt in enumerate(prompts):  # one seeded replica per prompt: its n samples in one call
                with _SEED_LOCK:
                    import ctranslate2

                    ctranslate2.set_random_seed(_row_seed(params.seed, prompt, 0) % (2 ** 32))
                    replica = self._replica()
                    outs[i] = self._generate_rows(replica, [ids[i]] * params.n, params)
                    del replica
        return [Generation(texts=[o[0] for o in out] * (params.n // len(out)),
                           finish_reasons=[o[1] for o in out] * (params.n // len(out)), prompt_tokens=len(ids[i]),
                           completion_tokens=sum(o[2] for o in out) * (params.n // len(out)))
                for i, out in enumerate(outs)]

    def _generate_rows(self, generator, rows: list[list[int]], params: GenerationParams) -> list[tuple[str, str, int]]:
        """One ``generate_batch`` call; returns (text, finish_reason, completion_tokens) per row."""
        eos = self._eos_ids()
        watch = _StopWatch(self.tokenizer, params.stop, len(rows)) if params.stop else None
        kwargs = dict(max_length=params.max_new_tokens, include_prompt_in_result=False, end_token=eos,
                      return_end_token=True, beam_size=1, callback=watch)
        if not params.greedy:
            kwargs.update(sampling_topk=0, sampling_topp=params.top_p, sampling_temperature=params.temperature)
        results = generator.generate_batch([self._tokens(r) for r in rows], **kwargs)
        done_at = watch.done_at if watch else {}
        return [finish_row(self.tokenizer, res.sequences_ids[0], eos, params.stop, done_at.get(b))
                for b, res in enumerate(results)]

    # -- score ------------------------------------------------------------------------------------------------------

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[Score]:
        """Sum of log p(continuation token | prompt, earlier continuation tokens), one per (prompt, continuation).

        Args:
            prompts: chat message lists (templated, with the generation prompt) or raw strings.
            continuations: one string per prompt, e.g. a judge's label word.

        Returns:
            One :class:`~siftkit.llm.base.Score` per pair, with the per-token log-probabilities.
        """
        pairs = self._score_pairs(prompts, continuations)
        scores: list[Score] = [Score(logprob=0.0, token_logprobs=[]) for _ in pairs]
        todo = [k for k, (_, c) in enumerate(pairs) if c]
        for chunk in self._chunks([len(pairs[k][0]) + len(pairs[k][1]) for k in todo], self.score_tokens):
            ks = [todo[r] for r in chunk]
            results = self.generator.score_batch([self._tokens(pairs[k][0] + pairs[k][1]) for k in ks],
                                                 max_input_length=0)
            for k, res in zip(ks, results):
                lp = [float(x) for x in res.log_probs[-len(pairs[k][1]):]]  # log_probs[t] scores token t + 1
                scores[k] = Score(logprob=float(sum(lp)), token_logprobs=lp)
        return scores

    def token_logprobs(self, text: str) -> list[tuple[str, float | None, int]]:
        """Per-token (text piece, log-probability, character offset) of raw ``text`` (special tokens as for a raw
        prompt; the first token has no context and gets ``None``): what ``siftkit serve llm`` needs for ``echo`` +
        ``logprobs`` (see :mod:`siftkit.llm.server`)."""
        enc = self.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if not ids:
            return []
        lps: list[float | None] = [None]
        if len(ids) > 1:
            lps += [float(x) for x in self.generator.score_batch([self._tokens(ids)], max_input_length=0)[0].log_probs]
        return [(text[a:b], lp, a) for (a, b), lp in zip(offsets, lps)]

    # -- next-token distribution ------------------------------------------------------------------------------------

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20) -> list[TokenDistribution]:
        """The top-``top_k`` of the first generated token's distribution after each prompt (natural logs under the
        full softmax), tokens decoded as they would appear in generated text.

        Args:
            prompts: chat message lists (templated, with the generation prompt opened) or raw strings.
            top_k: how many of the most probable tokens to return.
        """
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        ids = self._prompt_ids(prompts)
        out: list[TokenDistribution | None] = [None] * len(prompts)
        by_length: dict[int, list[int]] = {}
        for i, x in enumerate(ids):
            by_length.setdefault(len(x), []).append(i)
        # only prompts of one length share a call: CTranslate2 forwards the shortest prompt's length at once and
        # feeds the rest token by token, so a longer prompt's first-step logits would not follow its last token
        chunks = [same[k:k + self.batch_size] for same in by_length.values()
                  for k in range(0, len(same), self.batch_size)]
        for chunk in chunks:
            results = self.generator.generate_batch([self._tokens(ids[i]) for i in chunk], max_length=1,
                                                    include_prompt_in_result=False, return_logits_vocab=True,
                                                    beam_size=1)
            for i, res in zip(chunk, results):
                logits = np.asarray(res.logits[0], dtype=np.float64).reshape(-1)  # (V,)
                shifted = logits - logits.max()
                logp = shifted - np.log(np.exp(shifted).sum())  # (V,)
                k = min(top_k, logp.size)
                top = np.argpartition(-logp, k - 1)[:k]
                top = top[np.argsort(-logp[top], kind="stable")]
                out[i] = TokenDistribution(top=[(self.tokenizer.decode([int(t)]), float(logp[t])) for t in top])
        return out


# ---------------------------------------------------------------------------------------------------------------------
# fine-tuned models
# ---------------------------------------------------------------------------------------------------------------------

def convert_local_model(llm: LocalChatModel, compute_type: str = "int8", models_dir: str | Path | None = None,
                        model_id: str | None = None, threads: int | None = None,
                        batch_size: int = 32) -> CT2ChatModel:
    """Convert a fine-tuned torch :class:`~siftkit.llm.local.LocalChatModel` (LoRA adapters merged into a copy, or
    fully fine-tuned weights) once into the CTranslate2 cache and load it, e.g. to evaluate it on the ``ct2`` engine.

    The cache key is the torch model's fingerprint (weights with adapters, tokenizer, chat template) with the
    quantisation, so retraining gives a new folder and an unchanged model is converted once. The model itself is not
    modified.

    Args:
        llm: the trained model.
        compute_type, models_dir, threads, batch_size: as for :meth:`CT2ChatModel.from_pretrained`.
        model_id: the reported name (default ``llm.model_id``).
    """
    check_compute_type(compute_type)
    name = model_id or llm.model_id
    digest = sha256_text("local-model", llm.fingerprint)
    dest = _dest(models_dir, name, compute_type, conversion_key(digest, compute_type))
    if not (dest / _MARKER).exists():
        model = llm.model
        if hasattr(model, "merge_and_unload"):  # PEFT: merge the adapters into a copy, keep the trained model as is
            model = copy.deepcopy(model).merge_and_unload()
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".merged-", dir=dest.parent) as src:
            model.save_pretrained(src)
            llm.tokenizer.save_pretrained(src)
            dest = convert_folder(src, compute_type, models_dir, name=name, source_digest=digest)
    return CT2ChatModel(dest, name, compute_type, threads or 0, batch_size)
