"""LREF's training objectives, as run through ``siftkit.relevance.train`` (TRL under the hood), against an
independent transcription of the formulas, value and gradient.

* Stage 2 SFT (label-only and Multi-CoT rows from :func:`sft_rows`): the mean token negative log-likelihood over
  the completion tokens of the batch (``"Label: g"`` or ``"<rationale>\\nLabel: g"``, plus the EOS TRL appends),
  prompt tokens and padding excluded.
* Stage 3 DPO + RPO (DPO paper Eq. 7; RPO NLL term as TRL's ``"sft"`` loss):
  ``mean_i −log σ(β [(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))])
  + α · (Σ_i Σ_{t ∈ y_w,i} −log π_θ(t)) / Σ_i |y_w,i|``, with ``π_ref`` the adapter-disabled model.

How: the trainer is built exactly as LREF builds it (``relevance.train.sft`` / ``dpo``); its ``train`` is replaced,
for this test only, by a hook that moves the fresh LoRA adapter away from zero (so π_θ ≠ π_ref), takes one batch
holding every row from the trainer's own data loader, and computes the trainer's loss and its gradient on the
adapter. The reference tokenises the raw rows itself (prompt, prompt + completion + EOS), runs the model one
sequence at a time without padding, and sums log-softmax values in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from siftkit.relevance.config import LrefConfig
from siftkit.relevance.lref import GRADES, completion
from siftkit.relevance.train import dpo, prompt_text, sft, sft_rows
from tests.trl_reference import assert_grads_close, capture_first_batch, completion_ids, seq_logps, sft_reference

RECORDS = [
    {"query": "red shoes", "title": "Red running shoes for men", "label": GRADES[0]},
    {"query": "oak table", "title": "Pine bookshelf, five shelves", "label": GRADES[-1]},
    {"query": "usb cable", "title": "USB-C charging cable 2 m", "label": GRADES[1 % len(GRADES)]},
]
RATIONALES = ["The title names the product asked for.", "A different item entirely.", "Close match; length differs."]


def _cfg(**kw) -> LrefConfig:
    return LrefConfig(**{"device": "cpu", "lora_r": 4, "lora_alpha": 8, "batch_size": 8, "dpo_batch_size": 8,
                         "max_length": 256, **kw})


@pytest.fixture
def model_tok(tiny_llama_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float64)
    return model, tok


@pytest.mark.parametrize("multi_cot", [False, True], ids=["label-only", "multi-cot"])
def test_sft_loss_is_the_token_mean_nll_over_completions_only(model_tok, monkeypatch, multi_cot):
    import trl

    model, tok = model_tok
    rows = sft_rows(tok, RECORDS, rationales=RATIONALES if multi_cot else None)
    assert rows[0]["completion"] == completion(RECORDS[0]["label"], RATIONALES[0] if multi_cot else "")

    got = capture_first_batch(monkeypatch, trl.SFTTrainer, sft_reference(tok, rows))
    sft(model, tok, rows, steps=1, cfg=_cfg())
    assert got["batch_rows"] == len(rows)
    assert got["loss"].item() == pytest.approx(got["ref"].item(), rel=1e-5)
    assert_grads_close(got["grads"], got["ref_grads"])


@pytest.mark.parametrize("beta, alpha", [(0.1, 0.65), (0.5, 0.0)])
def test_dpo_rpo_loss_equals_the_formula_with_the_adapter_disabled_reference(model_tok, monkeypatch, beta, alpha):
    import trl

    model, tok = model_tok
    prompts = [prompt_text(tok, [{"role": "user", "content": f"query {i}: grade it"}]) for i in range(3)]
    rows = [
        {"prompt": prompts[0], "chosen": completion(GRADES[0]), "rejected": completion(GRADES[-1])},
        {"prompt": prompts[1], "chosen": completion(GRADES[-1], "It is a different item."),
         "rejected": completion(GRADES[0])},  # chosen much longer than rejected
        {"prompt": prompts[2], "chosen": completion(GRADES[1]), "rejected": completion(GRADES[1])},  # a tie: Δ = 0
    ]
    terms = []

    def reference(m):
        dpo_terms, nll, n_tok = [], 0.0, 0
        for r in rows:
            logratio = {}
            for side in ("chosen", "rejected"):
                p, c = completion_ids(tok, r["prompt"], r[side])
                lp = seq_logps(m, p, c)
                with torch.no_grad(), m.disable_adapter():
                    ref_lp = seq_logps(m, p, c)
                logratio[side] = lp.sum() - ref_lp.sum()
                if side == "chosen":
                    nll, n_tok = nll - lp.sum(), n_tok + len(c)
            dpo_terms.append(-torch.nn.functional.logsigmoid(beta * (logratio["chosen"] - logratio["rejected"])))
        terms.extend(t.item() for t in dpo_terms)
        return torch.stack(dpo_terms).mean() + alpha * nll / n_tok

    got = capture_first_batch(monkeypatch, trl.DPOTrainer, reference)
    dpo(model, tok, rows, steps=1, cfg=_cfg(beta=beta, rpo_alpha=alpha))
    assert got["batch_rows"] == 2 * len(rows)
    assert terms[2] == pytest.approx(math.log(2), rel=1e-9)  # the tied pair
    assert len(set(round(t, 6) for t in terms)) == 3  # the adapter moved π_θ away from π_ref
    assert got["loss"].item() == pytest.approx(got["ref"].item(), rel=1e-5)
    assert_grads_close(got["grads"], got["ref_grads"])
