"""The response cache shared by every method: one SQLite file (WAL mode), one row per (model, prompt, params).

A row's key is ``sha256(kind, model fingerprint, model_id, canonical prompt JSON, generation params incl. stop)``
(for ``score`` the continuation takes the params' place, for ``next_token`` the ``top_k``). Only the key, the kind,
the model id, the reply JSON and a timestamp are stored: prompts are not, and API keys never enter a key or a row (a
back-end's ``fingerprint`` must not contain one).

:class:`CachedChatModel` wraps any :class:`~siftkit.llm.base.ChatModel`. It looks every prompt up, sends only the
misses to the inner model (deduplicated, in chunks of ``chunk_size``), and stores each chunk's replies as soon as
that chunk returns, so a run killed half-way loses at most one chunk. What is never cached:

* sampled generation (``temperature > 0``) without ``params.seed``;
* calls made with ``bypass=True`` (e.g. RL rollouts) or through a cache built with ``enabled=False`` (``--no-cache``);
* errors and malformed replies (a ``Generation`` with a finish reason ``"error"``, the wrong number of samples, a
  non-finite score, an empty or over-long next-token distribution or one with a NaN or positive log-probability).

The file is safe for many threads (one connection behind a lock) and many processes (WAL, ``BEGIN IMMEDIATE``
writes, a busy timeout). Batch runners may also give each worker its own shard file and fold the shards in with
:meth:`ResponseCache.merge_from`.

Example:
    >>> llm = CachedChatModel(LocalChatModel.from_pretrained("smollm2"), ResponseCache())  # doctest: +SKIP
    >>> llm.generate(prompts, GenerationParams(max_new_tokens=16)); llm.cache.stats()  # doctest: +SKIP
    {'hits': 0, 'misses': 3, 'stored': 3, 'bypassed': 0, 'rejected': 0, 'hit_rate': 0.0}
"""

from __future__ import annotations

import copy
import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from siftkit.core.paths import cache_dir
from siftkit.llm.base import (
    ChatModel, Generation, GenerationParams, Prompt, Score, TokenDistribution, prompt_key, sha256_text,
)

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model_id TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)"""
_LOOKUP_BATCH = 500  # keys per SELECT ... IN (...), below SQLite's variable limit


def default_cache_path() -> Path:
    """``siftkit_home()/cache/responses.sqlite``."""
    return cache_dir("cache") / "responses.sqlite"


def params_key(params: GenerationParams) -> str:
    """Canonical JSON of the parameters that change a reply; greedy replies ignore ``seed`` and ``top_p``."""
    d = params.to_dict()
    if params.greedy:
        d.pop("seed")
        d.pop("top_p")
    return json.dumps(d, sort_keys=True)


def cache_key(kind: str, fingerprint: str, model_id: str, prompt: Prompt, extra: str) -> str:
    """sha256 over the kind ("generate"/"score"/"next_token"), the model, the canonical prompt and ``extra``."""
    return sha256_text(kind, fingerprint, model_id, prompt_key(prompt), extra)


# ---------------------------------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------------------------------

class ResponseCache:
    """A key/value store of model replies in one SQLite file, with hit/miss counters.

    Args:
        path: the SQLite file; default ``siftkit_home()/cache/responses.sqlite``.
        enabled: ``False`` turns every lookup into a pass-through and never touches the disk (``--no-cache``).
        timeout_s: how long a writer waits for another process's lock.
    """

    def __init__(self, path: str | Path | None = None, enabled: bool = True, timeout_s: float = 60.0):
        self.enabled = enabled
        self.path = Path(path) if path is not None else (default_cache_path() if enabled else None)
        self.timeout_s = timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._stats = dict.fromkeys(("hits", "misses", "stored", "bypassed", "rejected"), 0)

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r}, enabled={self.enabled})"

    # pickling (e.g. to a Ray worker) drops the connection and lock; the copy reopens the file lazily
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_lock=None, _conn=None, _pid=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _db(self) -> sqlite3.Connection:
        """The connection, opened on first use and reopened in a forked child."""
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # a commit survives a killed process (not a power cut)
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- counters ---------------------------------------------------------------------------------------------------

    def count(self, **deltas: int) -> None:
        """Add to the counters (``hits``, ``misses``, ``stored``, ``bypassed``, ``rejected``)."""
        with self._lock:
            for name, d in deltas.items():
                self._stats[name] += d

    def stats(self) -> dict[str, Any]:
        """This process's counters since creation (or :meth:`reset_stats`), plus ``hit_rate``."""
        with self._lock:
            s = dict(self._stats)
        looked_up = s["hits"] + s["misses"]
        s["hit_rate"] = s["hits"] / looked_up if looked_up else 0.0
        return s

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = dict.fromkeys(self._stats, 0)

    # -- rows -------------------------------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, str]:
        """The stored reply JSON for each key that is present (nothing when disabled)."""
        keys = list(dict.fromkeys(keys))
        if not self.enabled or not keys:
            return {}
        found: dict[str, str] = {}
        with self._lock:
            db = self._db()
            for start in range(0, len(keys), _LOOKUP_BATCH):
                part = keys[start:start + _LOOKUP_BATCH]
                q = f"SELECT key, value FROM responses WHERE key IN ({','.join('?' * len(part))})"
                found.update(db.execute(q, part).fetchall())
        return found

    def put_many(self, rows: Sequence[tuple[str, str, str, str]]) -> int:
        """Store ``(key, kind, model_id, value_json)`` rows in one transaction; returns how many were written."""
        if not self.enabled or not rows:
            return 0
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO responses (key, kind, model_id, value, created) "
                               "VALUES (?, ?, ?, ?, ?)", [(*r, now) for r in rows])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._stats["stored"] += len(rows)
        return len(rows)

    def __len__(self) -> int:
        if not self.enabled:
            return 0
        with self._lock:
            return self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def merge_from(self, other_path: str | Path) -> int:
        """Copy every row of another cache file (e.g. a worker's shard) that this one lacks; returns rows added.

        Rows already present are kept (same key means same request, and stored replies are final).
        """
        other = Path(other_path)
        if not other.is_file():
            raise FileNotFoundError(other)
        if not self.enabled:
            return 0
        with self._lock:
            db = self._db()
            db.execute("ATTACH DATABASE ? AS shard", (str(other),))
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    before = db.total_changes
                    db.execute("INSERT OR IGNORE INTO main.responses (key, kind, model_id, value, created) "
                               "SELECT key, kind, model_id, value, created FROM shard.responses")
                    added = db.total_changes - before
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            finally:
                db.execute("DETACH DATABASE shard")
        return added


# ---------------------------------------------------------------------------------------------------------------------
# (de)serialising replies; what counts as well-formed
# ---------------------------------------------------------------------------------------------------------------------

def _generation_ok(g: Any, n: int) -> bool:
    return (isinstance(g, Generation) and isinstance(g.texts, list) and len(g.texts) == n
            and all(isinstance(t, str) for t in g.texts)
            and isinstance(g.finish_reasons, list) and len(g.finish_reasons) in (0, n)
            and all(isinstance(r, str) and r != "error" for r in g.finish_reasons))


def _score_ok(s: Any) -> bool:
    return (isinstance(s, Score) and isinstance(s.logprob, (int, float)) and math.isfinite(s.logprob)
            and all(isinstance(x, (int, float)) and math.isfinite(x) for x in s.token_logprobs))


def _distribution_ok(d: Any, top_k: int) -> bool:
    return (isinstance(d, TokenDistribution) and isinstance(d.top, list) and 0 < len(d.top) <= top_k
            and all(isinstance(t, str) and isinstance(lp, (int, float)) and not math.isnan(lp) and lp <= 1e-6
                    for t, lp in d.top))


def _generation_json(g: Generation) -> str:
    return json.dumps({"texts": g.texts, "finish_reasons": g.finish_reasons, "prompt_tokens": g.prompt_tokens,
                       "completion_tokens": g.completion_tokens}, ensure_ascii=False)


def _generation_from(value: str) -> Generation:
    d = json.loads(value)
    return Generation(texts=d["texts"], finish_reasons=d["finish_reasons"], prompt_tokens=d["prompt_tokens"],
                      completion_tokens=d["completion_tokens"], cached=True)


def _score_json(s: Score) -> str:
    return json.dumps({"logprob": s.logprob, "token_logprobs": s.token_logprobs})


def _score_from(value: str) -> Score:
    d = json.loads(value)
    return Score(logprob=d["logprob"], token_logprobs=d["token_logprobs"], cached=True)


def _distribution_json(d: TokenDistribution) -> str:
    return json.dumps({"top": [[t, lp] for t, lp in d.top]}, ensure_ascii=False)  # -inf is written as -Infinity


def _distribution_from(value: str) -> TokenDistribution:
    return TokenDistribution(top=[(t, float(lp)) for t, lp in json.loads(value)["top"]], cached=True)


# ---------------------------------------------------------------------------------------------------------------------
# the wrapper
# ---------------------------------------------------------------------------------------------------------------------

class CachedChatModel:
    """Any :class:`~siftkit.llm.base.ChatModel` behind a :class:`ResponseCache`; itself a ``ChatModel``.

    Args:
        inner: the model that answers misses.
        cache: the store; ``None`` means a disabled cache (every call goes to ``inner``).
        chunk_size: misses sent to ``inner`` per call; each chunk is stored when it returns, so a killed run
            loses at most one chunk.
    """

    def __init__(self, inner: ChatModel, cache: ResponseCache | None = None, chunk_size: int = 32):
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        self.inner = inner
        self.cache = cache if cache is not None else ResponseCache(enabled=False)
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return f"CachedChatModel({self.inner!r}, {self.cache!r})"

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams | None = None,
                 bypass: bool = False) -> list[Generation]:
        """Like ``inner.generate``, answering from the cache where possible (``Generation.cached`` is then True).

        Args:
            prompts: chat message lists or raw strings.
            params: decoding parameters (default greedy).
            bypass: skip the cache for this call (neither read nor written), e.g. for RL rollouts.
        """
        params = params or GenerationParams()
        if bypass or not self.cache.enabled or (not params.greedy and params.seed is None):
            self.cache.count(bypassed=len(prompts))
            return self.inner.generate(prompts, params)
        fp, model_id, extra = self.inner.fingerprint, self.inner.model_id, params_key(params)
        keys = [cache_key("generate", fp, model_id, p, extra) for p in prompts]
        return self._run(prompts, keys, "generate",
                         call=lambda idx: self.inner.generate([prompts[i] for i in idx], params),
                         ok=lambda g: _generation_ok(g, params.n), to_json=_generation_json,
                         from_json=_generation_from)

    def score(self, prompts: Sequence[Prompt], continuations: Sequence[str], bypass: bool = False) -> list[Score]:
        """Like ``inner.score``, answering from the cache where possible."""
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
        if bypass or not self.cache.enabled:
            self.cache.count(bypassed=len(prompts))
            return self.inner.score(prompts, continuations)
        return self._run(prompts, self._score_keys(prompts, continuations), "score",
                         call=lambda idx: self.inner.score([prompts[i] for i in idx], [continuations[i] for i in idx]),
                         ok=_score_ok, to_json=_score_json, from_json=_score_from)

    def _score_keys(self, prompts: Sequence[Prompt], continuations: Sequence[str]) -> list[str]:
        fp, model_id = self.inner.fingerprint, self.inner.model_id
        return [cache_key("score", fp, model_id, p, json.dumps(c, ensure_ascii=False))
                for p, c in zip(prompts, continuations)]

    def score_groups(self, prompts: Sequence[Prompt], continuations: Sequence[Sequence[str]],
                     bypass: bool = False) -> list[list[Score]]:
        """Several continuations per prompt, cached per (prompt, continuation) under the same keys as :meth:`score`.

        The misses go to ``inner.score_groups`` (the local model's shared-prefix path,
        :mod:`siftkit.llm.fastscore`) when the inner model has one, else to ``inner.score``.

        Args:
            prompts: chat message lists or raw strings.
            continuations: per prompt, the continuations to score (e.g. a judge's label words).
            bypass: skip the cache for this call.

        Returns:
            Per prompt, one :class:`~siftkit.llm.base.Score` per continuation.
        """
        if len(prompts) != len(continuations):
            raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuation groups")
        owner = [i for i, conts in enumerate(continuations) for _ in conts]  # flat position -> prompt index
        flat_p = [prompts[i] for i in owner]
        flat_c = [c for conts in continuations for c in conts]

        def call(idx: list[int]) -> list[Score]:
            if not hasattr(self.inner, "score_groups"):
                return self.inner.score([flat_p[k] for k in idx], [flat_c[k] for k in idx])
            groups: dict[int, list[int]] = {}
            for k in idx:
                groups.setdefault(owner[k], []).append(k)
            replies = self.inner.score_groups([prompts[i] for i in groups],
                                              [[flat_c[k] for k in ks] for ks in groups.values()])
            by_pos = {k: s for ks, row in zip(groups.values(), replies) for k, s in zip(ks, row)}
            return [by_pos[k] for k in idx]

        if bypass or not self.cache.enabled:
            self.cache.count(bypassed=len(flat_p))
            flat = call(list(range(len(flat_p))))
        else:
            flat = self._run(flat_p, self._score_keys(flat_p, flat_c), "score", call=call, ok=_score_ok,
                             to_json=_score_json, from_json=_score_from)
        it = iter(flat)
        return [[next(it) for _ in conts] for conts in continuations]

    def next_token_logprobs(self, prompts: Sequence[Prompt], top_k: int = 20,
                            bypass: bool = False) -> list[TokenDistribution]:
        """Like ``inner.next_token_logprobs``, answering from the cache where possible; keyed by ``top_k``.

        Raises:
            AttributeError: the inner back-end has no next-token call.
        """
        if not hasattr(self.inner, "next_token_logprobs"):
            raise AttributeError(f"{type(self.inner).__name__} has no next_token_logprobs")
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        if bypass or not self.cache.enabled:
            self.cache.count(bypassed=len(prompts))
            return self.inner.next_token_logprobs(prompts, top_k)
        fp, model_id = self.inner.fingerprint, self.inner.model_id
        keys = [cache_key("next_token", fp, model_id, p, json.dumps({"top_k": top_k})) for p in prompts]
        return self._run(prompts, keys, "next_token",
                         call=lambda idx: self.inner.next_token_logprobs([prompts[i] for i in idx], top_k),
                         ok=lambda d: _distribution_ok(d, top_k), to_json=_distribution_json,
                         from_json=_distribution_from)

    def _run(self, prompts, keys, kind, call, ok, to_json, from_json) -> list:
        """Look up ``keys``; send unique misses to ``call`` chunk by chunk, storing each chunk at once."""
        results: list = [None] * len(prompts)
        found = self.cache.get_many(keys)
        misses: dict[str, list[int]] = {}  # key -> every position that asked for it
        for i, k in enumerate(keys):
            if k in found:
                try:
                    results[i] = from_json(found[k])
                    continue
                except (ValueError, KeyError, TypeError):  # an unreadable row is a miss and gets overwritten
                    pass
            misses.setdefault(k, []).append(i)
        self.cache.count(hits=len(prompts) - sum(len(v) for v in misses.values()),
                         misses=sum(len(v) for v in misses.values()))

        todo = list(misses)
        model_id = self.inner.model_id
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start:start + self.chunk_size]
            replies = call([misses[k][0] for k in chunk])
            if len(replies) != len(chunk):
                raise RuntimeError(f"{model_id} returned {len(replies)} replies for {len(chunk)} prompts")
            rows = []
            for k, reply in zip(chunk, replies):
                for n_dup, i in enumerate(misses[k]):
                    results[i] = reply if n_dup == 0 else copy.deepcopy(reply)
                if ok(reply):
                    rows.append((k, kind, model_id, to_json(reply)))
            self.cache.count(rejected=len(chunk) - len(rows))
            self.cache.put_many(rows)
        return results
