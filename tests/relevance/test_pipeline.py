"""End-to-end smoke run of the three stages on the tiny random Llama: every stage runs and changes the weights."""

import torch

from siftkit.relevance.config import LrefConfig
from siftkit.relevance.data import synthetic_pairs
from siftkit.relevance.pipeline import evaluate, load_base, stage1_select, stage2_multicot, stage3_dpo, \
    train_label_model


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(a, b):
    return sum(float((a[k] - b[k]).abs().sum()) for k in a)


def test_three_stages_run_and_train(tiny_llama_path):
    torch.set_num_threads(1)
    cfg = LrefConfig(base_model=str(tiny_llama_path), batch_size=2, dpo_batch_size=2, max_length=512,
                     stage1_steps=1, sft_steps=2, cot_steps=1, dpo_steps=1, im_sample=6, ci_sample=6, dpo_scan=6,
                     cot_max_new_tokens=4)
    d = synthetic_pairs(n_pairs=40, n_queries=12, seed=0)
    pool = d["train"][:8]
    res = stage1_select(cfg, d["train"], pool, seed=0)
    assert len(res["kept"]) == len(pool) and set(res["ms"]) <= {"Exact", "Significant", "Marginal", "Trivial",
                                                                   "Irrelevant"}
    assert res["stats"]["n"] == len(pool)

    base = _params(load_base(cfg).model)
    llm, log = train_label_model(cfg, pool, cfg.sft_steps, seed=0)
    assert _changed(base, _params(llm.model)) > 0 and log

    before = _params(llm.model)
    llm = stage2_multicot(cfg, llm, pool, seed=0)
    assert _changed(before, _params(llm.model)) > 0

    before = _params(llm.model)
    cfg_all = LrefConfig(**{**cfg.to_dict(), "beam_k": 5})  # the random model is wrong often: take any rank
    llm2, n_pairs = stage3_dpo(cfg_all, llm, pool, seed=0)
    if n_pairs:
        assert _changed(before, _params(llm2.model)) > 0

    rep = evaluate(llm2, d["test"][:4], "five", cot=True, cfg=cfg)
    assert rep["n"] == 4 and 0 <= rep["macro_f1"] <= 1
    rep = evaluate(llm2, d["test"][:4], "binary", cot=False, cfg=cfg)
    assert set(rep["per_class"]) == {"Relevant", "Not relevant"}
