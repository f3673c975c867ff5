"""Backends benchmark (issue 3): ratios measured in one process, written to benchmarks/results/backends.md.

    python -m benchmarks.backends            # full run (SmolLM2 on CPU: several minutes)
    python -m benchmarks.backends --quick    # smaller sizes, for a smoke check

Four measurements, each a ratio against a baseline run in the same process:
1. local batched generation: tokens/s of the embedded SmolLM2 at batch 1, 8 and 32 (greedy, left padding),
   as a ratio to batch 1;
2. ``openai`` back-end with 8 requests in flight vs 1 (sequential), against ``siftkit serve llm``'s app in this
   process serving a model with a fixed per-request latency (goal ≥ 6×);
3. siftkit's BM25 retriever vs bm25s called directly on the same corpus and queries (goal ≥ 0.9×);
4. a warm-cache rerun vs the cold run through :class:`CachedChatModel` over SmolLM2 (goal ≥ 20×).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.cells import RESULTS, write_markdown

PROMPTS = [
    "Name three uses of a paperclip.", "What is the capital of France?", "Write a haiku about rain.",
    "Explain what a search engine does.", "Give me a tip for sleeping better.", "What is 12 times 7?",
    "Describe the colour blue to someone.", "Why do leaves change colour in autumn?",
]


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"{PROMPTS[i % len(PROMPTS)]} (#{i})"}] for i in range(n)]


def bench_local_generation(model, batches=(1, 8, 32), new_tokens=64, repeats=1) -> list[dict]:
    from siftkit.llm.base import GenerationParams

    params = GenerationParams(max_new_tokens=new_tokens, temperature=0.0)
    model.generate(_prompts(2), GenerationParams(max_new_tokens=4))  # warm-up
    rows = []
    for b in batches:
        best = float("inf")
        toks = 0
        for _ in range(repeats):
            t = time.perf_counter()
            gens = model.generate(_prompts(b), params)
            best = min(best, time.perf_counter() - t)
            toks = sum(g.completion_tokens for g in gens)
        rows.append({"batch": b, "new_tokens": toks, "seconds": best, "tokens_per_s": toks / best})
    base = rows[0]["tokens_per_s"]
    for r in rows:
        r["ratio_vs_batch1"] = r["tokens_per_s"] / base
    return rows


class _LatencyModel:
    """Echo model with a fixed latency per request; thread-safe so the server overlaps requests."""

    thread_safe = True

    def __init__(self, latency_s: float):
        from siftkit.llm.testing import FakeChatModel

        self.inner = FakeChatModel(model_id="latency", fingerprint="latency-v1")
        self.latency_s = latency_s
        self.model_id = "latency"

    @property
    def fingerprint(self):
        return self.inner.fingerprint

    def generate(self, prompts, params=None):
        time.sleep(self.latency_s)
        return self.inner.generate(prompts, params)

    def score(self, prompts, continuations):
        time.sleep(self.latency_s)
        return self.inner.score(prompts, continuations)


def bench_openai_in_flight(n_requests=64, latency_s=0.1, in_flight=8) -> dict:
    from siftkit.llm.base import GenerationParams
    from siftkit.llm.openai_client import OpenAIChatModel
    from siftkit.llm.server import create_app, start_background

    app = create_app({"latency": _LatencyModel(latency_s)})
    url, stop = start_background(app)
    try:
        prompts = _prompts(n_requests)
        params = GenerationParams(max_new_tokens=16)
        out = {}
        for k in (1, in_flight):
            client = OpenAIChatModel(url + "/v1", "latency", api_key_env="SIFTKIT_BENCH_NO_KEY", max_in_flight=k)
            client.generate(prompts[:2], params)  # connection warm-up
            t = time.perf_counter()
            gens = client.generate(prompts, params)
            out[k] = time.perf_counter() - t
            assert all(g.finish_reasons[0] != "error" for g in gens)
    finally:
        stop()
    return {"requests": n_requests, "latency_ms": latency_s * 1000, "sequential_s": out[1],
            f"in_flight_{in_flight}_s": out[in_flight], "speedup": out[1] / out[in_flight]}


def _synthetic_corpus(n_docs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(5000)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    docs = [" ".join(rng.choice(vocab, size=60, p=p)) for _ in range(n_docs)]
    queries = [" ".join(rng.choice(vocab[:2000], size=5)) for _ in range(1000)]
    return docs, queries


def bench_bm25(n_docs=10_000, k=10, repeats=3) -> dict:
    import bm25s

    from siftkit.retrieval import BM25Retriever, Corpus

    docs, queries = _synthetic_corpus(n_docs)
    corpus = Corpus.from_records([{"id": f"d{i}", "contents": d} for i, d in enumerate(docs)])
    ours = BM25Retriever(corpus, stemmer=None)
    # bm25s directly, same tokenisation settings and parameters as the wrapper
    tok = bm25s.tokenization.Tokenizer(stopwords="en")
    ref = bm25s.BM25(k1=ours.k1, b=ours.b, method="lucene")
    ref.index((tok.tokenize(docs, update_vocab=True, return_as="ids", show_progress=False), tok.get_vocab_dict()),
              show_progress=False)

    def run_ref():
        q = tok.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False)
        ref.retrieve(q, k=k, show_progress=False)

    def run_ours():
        ours.search(queries, k)

    t_ref, t_ours = [], []
    for _ in range(repeats):  # interleaved, best of N
        t = time.perf_counter()
        run_ref()
        t_ref.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_ours()
        t_ours.append(time.perf_counter() - t)
    return {"docs": n_docs, "queries": len(queries), "k": k, "bm25s_s": min(t_ref), "siftkit_s": min(t_ours),
            "ratio": min(t_ref) / min(t_ours)}


def bench_cache(model, n_prompts=16, new_tokens=32) -> dict:
    from siftkit.llm.base import GenerationParams
    from siftkit.llm.cache import CachedChatModel, ResponseCache

    with tempfile.TemporaryDirectory() as d:
        cache = ResponseCache(Path(d) / "cache.sqlite")
        cached = CachedChatModel(model, cache, chunk_size=8)
        params = GenerationParams(max_new_tokens=new_tokens)
        prompts = _prompts(n_prompts)
        t = time.perf_counter()
        cold = cached.generate(prompts, params)
        t_cold = time.perf_counter() - t
        t = time.perf_counter()
        warm = cached.generate(prompts, params)
        t_warm = time.perf_counter() - t
        assert [g.texts for g in cold] == [g.texts for g in warm] and all(g.cached for g in warm)
        stats = cache.stats()
    return {"prompts": n_prompts, "cold_s": t_cold, "warm_s": t_warm, "speedup": t_cold / t_warm,
            "hits": stats["hits"], "misses": stats["misses"]}


def _md(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke check)")
    ap.add_argument("--model", default="smollm2", help="local model for 1 and 4 (name or folder)")
    ap.add_argument("--out", default=str(RESULTS / "backends.md"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster than 2 on a busy 2-core machine)")
    a = ap.parse_args(argv)
    import torch

    from siftkit.llm.local import LocalChatModel

    torch.set_num_threads(a.threads)
    load = os.getloadavg()
    t = time.perf_counter()
    model = LocalChatModel.from_pretrained(a.model)
    load_s = time.perf_counter() - t
    gen = bench_local_generation(model, batches=(1, 4) if a.quick else (1, 8, 32), new_tokens=16 if a.quick else 64)
    oai = bench_openai_in_flight(n_requests=16 if a.quick else 64)
    bm = bench_bm25(n_docs=2000 if a.quick else 10_000)
    cache = bench_cache(model, n_prompts=4 if a.quick else 16, new_tokens=8 if a.quick else 32)
    goal = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    body = f"""Machine load average when the run started: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on \
{os.cpu_count()} CPUs. Absolute times move with load; the ratios are what this page reports. Model: `{model.model_id}` \
(loaded in {load_s:.1f} s), fp32, {torch.get_num_threads()} torch threads.

## 1. Local batched generation (greedy, left padding)

{_md(gen)}

## 2. `openai` back-end: {oai['requests']} requests, 8 in flight vs sequential (goal ≥ 6×: {goal(oai['speedup'] >= 6)})

Against `siftkit serve llm`'s app on a loopback port, serving a model with a fixed {oai['latency_ms']:.0f} ms latency.

{_md([oai])}

## 3. siftkit BM25 vs bm25s called directly (goal ≥ 0.9×: {goal(bm['ratio'] >= 0.9)})

Synthetic Zipf corpus, all queries in one batch, best of 3 interleaved runs; ratio = bm25s time / siftkit time.

{_md([bm])}

## 4. Warm-cache rerun vs cold run (goal ≥ 20×: {goal(cache['speedup'] >= 20)})

`CachedChatModel` over the local model; the warm run answers every prompt from the SQLite cache.

{_md([cache])}
"""
    cmd = "python -m benchmarks.backends" + (" --quick" if a.quick else "") + f" --threads {a.threads}"
    out = write_markdown(a.out, "Backends benchmark (issue 3)", body, cmd)
    print(body)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
