"""Backends benchmark (issue 3): ratios measured in one process, written to benchmarks/results/backends.md.

    python -m benchmarks.backends            # full run (SmolLM2 on CPU: several minutes)
    python -m benchmarks.backends --quick    # smaller sizes, for a smoke check

Four measurements, each a ratio against a baseline run in the same process:
1. local batched generation: tokens/s of the embedded SmolLM2 at batch 1, 8 and 32 (greedy, left padding),
   as a ratio to batch 1;
2. ``openai`` back-end with 8 requests in flight vs 1 (sequential), against ``siftkit serve llm``'s app in this
   process serving a model with a fixed per-request latency (goal ≥ 6×);
3. siftkit's BM25 retriever vs bm25s called directly on the same corpus and queries (goal ≥ 0.9×);
4. a warm-cache rerun vs the cold run through :class:`CachedChatModel` over SmolLM2 (goal ≥ 20×);
5. the ``ct2`` engine (CTranslate2 int8, issue 17) vs the torch fp32 engine on SmolLM2: tokens/s at batch 1, 8, 32
   and 64, measured interleaved in this process on the same prompts (goal ≥ 2.5× at batch 1, ≥ 2× at batch 32);
   peak RSS of each engine in its own child process; greedy agreement with fp32 on 200 prompts; and label agreement of
   the LREF and usefulness judges between the engines on their quickstart data.

    python -m benchmarks.backends --rss-probe ct2   # (internal) one engine's peak RSS, printed as JSON
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


# ---------------------------------------------------------------------------------------------------------------------
# 5. the ct2 engine vs torch fp32 (issue 17)
# ---------------------------------------------------------------------------------------------------------------------

TOPICS = ["the moon", "coffee", "a bicycle", "rain", "the ocean", "bread", "a library", "music", "winter", "honey",
          "a volcano", "chess", "the internet", "a forest", "electricity", "gold", "a camera", "sleep", "bees",
          "a bridge", "salt", "the heart", "glass", "a map", "wind"]
FORMS = ["What is {}?", "Give one fact about {}.", "Write a short sentence about {}.", "Why is {} useful?",
         "Describe {} in five words.", "Name something related to {}.", "Is {} dangerous? Answer briefly.",
         "Explain {} to a child."]


def agreement_prompts(n: int = 200) -> list[list[dict[str, str]]]:
    """``n`` distinct chat prompts (25 topics × 8 question forms)."""
    rows = [f.format(t) for f in FORMS for t in TOPICS]
    return [[{"role": "user", "content": q}] for q in rows[:n]]


def _engines(model_name: str, threads: int, batch: int):
    from siftkit.llm.ct2 import CT2ChatModel
    from siftkit.llm.local import LocalChatModel

    t = time.perf_counter()
    torch_model = LocalChatModel.from_pretrained(model_name, threads=threads, batch_size=batch)
    t_torch = time.perf_counter() - t
    t = time.perf_counter()
    ct2_model = CT2ChatModel.from_pretrained(model_name, compute_type="int8", threads=threads, batch_size=batch)
    t_ct2 = time.perf_counter() - t
    return torch_model, ct2_model, {"torch_load_s": t_torch, "ct2_load_s": t_ct2,
                                    "ct2_convert_s": ct2_model.meta["convert_s"]}


def bench_engine_speed(torch_model, ct2_model, batches=(1, 8, 32, 64), new_tokens=64, repeats=2) -> list[dict]:
    """Tokens/s of both engines, interleaved per batch size and repeat (order alternating), best of ``repeats``."""
    from siftkit.llm.base import GenerationParams

    params = GenerationParams(max_new_tokens=new_tokens)
    for m in (torch_model, ct2_model):
        m.generate(_prompts(2), GenerationParams(max_new_tokens=4))  # warm-up
    rows = []
    for b in batches:
        best = {"torch": (float("inf"), 0), "ct2": (float("inf"), 0)}
        for r in range(repeats):
            pair = [("torch", torch_model), ("ct2", ct2_model)]
            for name, m in (pair if r % 2 == 0 else pair[::-1]):
                t = time.perf_counter()
                gens = m.generate(_prompts(b), params)
                dt = time.perf_counter() - t
                if dt < best[name][0]:
                    best[name] = (dt, sum(g.completion_tokens for g in gens))
        tps = {k: toks / dt for k, (dt, toks) in best.items()}
        rows.append({"batch": b, "torch_tokens": best["torch"][1], "torch_tok_per_s": tps["torch"],
                     "ct2_tokens": best["ct2"][1], "ct2_tok_per_s": tps["ct2"], "ratio": tps["ct2"] / tps["torch"]})
    return rows


def rss_probe(engine: str, model_name: str, threads: int, batch: int, new_tokens: int) -> dict:
    """Load one engine, generate one batch, report the process's peak RSS (run in a child process; ``VmHWM``, since
    ``ru_maxrss`` carries the parent's peak across ``exec``)."""
    from siftkit.llm.base import GenerationParams
    from siftkit.llm.factory import make_local_model

    m = make_local_model(model_name, engine, threads=threads, batch_size=batch)
    m.generate(_prompts(batch), GenerationParams(max_new_tokens=new_tokens))
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return {"engine": engine, "peak_rss_mb": int(hwm.split()[1]) / 1024}


def bench_rss(model_name: str, threads: int, batch: int, new_tokens: int) -> list[dict]:
    import json
    import subprocess
    import sys

    rows = []
    for engine in ("torch", "ct2"):
        cmd = [sys.executable, "-m", "benchmarks.backends", "--rss-probe", engine, "--model", model_name,
               "--threads", str(threads), "--probe-batch", str(batch), "--probe-tokens", str(new_tokens)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    return rows


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def bench_greedy_agreement(torch_model, others: dict, n_prompts=200, new_tokens=32) -> list[dict]:
    """Greedy agreement of each engine in ``others`` with torch fp32 on ``n_prompts`` prompts."""
    from siftkit.llm.base import GenerationParams

    prompts = agreement_prompts(n_prompts)
    params = GenerationParams(max_new_tokens=new_tokens)
    ref = torch_model.generate(prompts, params)
    ref_first = [d.top[0][0] for d in torch_model.next_token_logprobs(prompts, top_k=1)]
    tok = torch_model.tokenizer
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    rows = []
    for name, m in others.items():
        gens = m.generate(prompts, params)
        first = [d.top[0][0] for d in m.next_token_logprobs(prompts, top_k=1)]
        shares = []
        for g, r in zip(gens, ref):
            a, b = enc(g.text), enc(r.text)
            shares.append(_common_prefix(a, b) / max(len(b), 1))
        rows.append({"engine": name, "prompts": len(prompts), "new_tokens": new_tokens,
                     "identical_text": float(np.mean([g.text == r.text for g, r in zip(gens, ref)])),
                     "first_token": float(np.mean([a == b for a, b in zip(first, ref_first)])),
                     "shared_prefix": float(np.mean(shares))})
    return rows


def bench_judges(torch_model, ct2_model, seed: int = 0) -> list[dict]:
    """The LREF (zero-shot, quickstart's 24 held-out synthetic pairs) and usefulness (quickstart fixture, baseline
    prompt, log-probability read-out) judges on both engines: label agreement and wall time."""
    from siftkit.llm.cache import CachedChatModel, ResponseCache
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.data import synthetic_pairs
    from siftkit.relevance.pipeline import predict
    from siftkit.usefulness.config import UsefulnessConfig
    from siftkit.usefulness.data import load_sessions_jsonl
    from siftkit.usefulness.plugin import FIXTURES
    from siftkit.usefulness.run import label_clicks

    test = synthetic_pairs(n_pairs=400, n_queries=80, seed=seed)["test"][:24]  # as the lref quickstart step
    clicks = load_sessions_jsonl(FIXTURES)
    ucfg = UsefulnessConfig(mode="baseline", readout="logprob")  # as the usefulness quickstart step
    out: dict[str, dict] = {"torch": {}, "ct2": {}}
    engines = [("torch", torch_model), ("ct2", ct2_model)]
    for name, m in engines:  # LREF torch then ct2, usefulness ct2 then torch: outside load hits both alike
        t = time.perf_counter()
        out[name]["lref"] = predict(m, test, cfg=LrefConfig(seed=seed, batch_size=4))[0]
        out[name]["lref_s"] = time.perf_counter() - t
    for name, m in engines[::-1]:
        t = time.perf_counter()
        out[name]["use"] = label_clicks(CachedChatModel(m, ResponseCache(enabled=False)), clicks, ucfg).scores
        out[name]["use_s"] = time.perf_counter() - t
    gold = [x.get("gold") or x["label"] for x in test]
    a, b = out["torch"], out["ct2"]
    ids = sorted(set(a["use"]) | set(b["use"]))
    return [
        {"judge": "LREF zero-shot (24 synthetic pairs, 5 grades)", "items": len(test),
         "label_agreement": float(np.mean([x == y for x, y in zip(a["lref"], b["lref"])])),
         "torch_acc": float(np.mean([x == g for x, g in zip(a["lref"], gold)])),
         "ct2_acc": float(np.mean([x == g for x, g in zip(b["lref"], gold)])),
         "torch_s": a["lref_s"], "ct2_s": b["lref_s"], "speedup": a["lref_s"] / b["lref_s"]},
        {"judge": "usefulness baseline/logprob (9 fixture clicks, 0-3)", "items": len(ids),
         "label_agreement": float(np.mean([a["use"].get(i) == b["use"].get(i) for i in ids])),
         "torch_acc": float(np.mean([a["use"].get(c.id) == c.usefulness for c in clicks])),
         "ct2_acc": float(np.mean([b["use"].get(c.id) == c.usefulness for c in clicks])),
         "torch_s": a["use_s"], "ct2_s": b["use_s"], "speedup": a["use_s"] / b["use_s"]},
    ]


def _md(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
                     + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main(argv=None) -> None:
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke check)")
    ap.add_argument("--model", default="smollm2", help="local model for 1, 4 and 5 (name or folder)")
    ap.add_argument("--out", default=str(RESULTS / "backends.md"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster than 2 on a busy 2-core machine)")
    ap.add_argument("--rss-probe", choices=("torch", "ct2"), help=argparse.SUPPRESS)
    ap.add_argument("--probe-batch", type=int, default=64, help=argparse.SUPPRESS)
    ap.add_argument("--probe-tokens", type=int, default=16, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    import torch

    from siftkit.llm.local import LocalChatModel

    torch.set_num_threads(a.threads)
    if a.rss_probe:
        print(json.dumps(rss_probe(a.rss_probe, a.model, a.threads, a.probe_batch, a.probe_tokens)))
        return
    load = os.getloadavg()
    t = time.perf_counter()
    model = LocalChatModel.from_pretrained(a.model)
    load_s = time.perf_counter() - t
    gen = bench_local_generation(model, batches=(1, 4) if a.quick else (1, 8, 32), new_tokens=16 if a.quick else 64)
    oai = bench_openai_in_flight(n_requests=16 if a.quick else 64)
    bm = bench_bm25(n_docs=2000 if a.quick else 10_000)
    cache = bench_cache(model, n_prompts=4 if a.quick else 16, new_tokens=8 if a.quick else 32)
    del model

    batches = (1, 4) if a.quick else (1, 8, 32, 64)
    new_tokens = 16 if a.quick else 64
    agree_n, agree_tokens = (20, 8) if a.quick else (200, 32)
    torch_m, ct2_m, loads = _engines(a.model, a.threads, max(batches))
    speed = bench_engine_speed(torch_m, ct2_m, batches, new_tokens, repeats=1 if a.quick else 2)
    from siftkit.llm.ct2 import CT2ChatModel

    ct2_f32 = CT2ChatModel.from_pretrained(a.model, compute_type="float32", threads=a.threads, batch_size=32)
    agree = bench_greedy_agreement(torch_m, {"ct2 int8": ct2_m, "ct2 float32": ct2_f32}, agree_n, agree_tokens)
    del ct2_f32
    judges = bench_judges(torch_m, ct2_m)
    del torch_m, ct2_m
    rss = bench_rss(a.model, a.threads, max(batches), 16)
    by_b = {r["batch"]: r["ratio"] for r in speed}
    goal = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    goals = (f"goal ≥ 2.5× at batch 1: {goal(by_b.get(1, 0) >= 2.5)}; "
             f"≥ 2× at batch 32: {goal(by_b.get(32, 0) >= 2)}" if 32 in by_b else "quick run: goals not judged")
    body = f"""Machine load average when the run started: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min) on \
{os.cpu_count()} CPUs. Absolute times move with load; the ratios are what this page reports. Model: `{a.model}` \
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

## 5. ct2 engine (CTranslate2 int8) vs torch fp32 (issue 17)

Both engines in this process, {a.threads} thread(s) each (`torch.set_num_threads`, CTranslate2 `intra_threads`), \
each batch size one call of that many prompts (`batch_size={max(batches)}` for both engines), {new_tokens} new tokens \
greedy, the same prompts as section 1. The machine's 2 cores are shared with other jobs, so the engines run \
interleaved: for each batch size, torch then ct2, then ct2 then torch; each engine's best of the \
{1 if a.quick else 2} runs is kept, so a burst of outside load hits both alike. Loads: torch \
{loads['torch_load_s']:.1f} s, ct2 {loads['ct2_load_s']:.1f} s (its conversion into the cache took \
{loads['ct2_convert_s']:.1f} s once, when first made).

### Speed ({goals})

{_md(speed)}

### Peak memory

Peak resident set size of a child process that loads one engine and generates one batch of {max(batches)} prompts \
(16 new tokens); it includes Python, torch and transformers, which the ct2 engine also imports (tokenizer, chat \
template).

{_md(rss)}

### Greedy agreement with torch fp32

{agree_n} distinct prompts (25 topics × 8 question forms), {agree_tokens} new tokens greedy (fewer than the 64 \
above, for time). `identical_text`: share of prompts whose whole generated text equals torch's; `first_token`: \
share whose most probable first token (`next_token_logprobs`) equals torch's; `shared_prefix`: mean share of \
torch's tokens generated before the first difference. The float32 row checks the conversion itself.

{_md(agree)}

### Judges: label agreement between engines on their quickstart data

LREF: the quickstart's zero-shot SmolLM2 judge (five grades read by scoring each grade's label words) on its 24 \
held-out synthetic pairs. Usefulness: the quickstart's baseline prompt with the log-probability read-out on the 9 \
fixture clicks. Accuracies are against the synthetic gold grade and the fixture's usefulness label; times are one run \
each (LREF torch first, usefulness ct2 first). The quickstart's \
fine-tuned LREF judges (SFT, DPO) train with torch and are not measured here; `convert_local_model` would move them \
to ct2 for evaluation.

{_md(judges)}
"""
    cmd = "python -m benchmarks.backends" + (" --quick" if a.quick else "") + f" --threads {a.threads}"
    out = write_markdown(a.out, "Backends benchmark (issues 3 and 17)", body, cmd)
    print(body)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
