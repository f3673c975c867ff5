"""Precision switches of LrefConfig: gradient checkpointing reaches the trainer; judge_autocast scores in bf16."""

import pytest
import torch

from siftkit.llm.testing import FakeChatModel
from siftkit.relevance.config import LrefConfig
from siftkit.relevance.pipeline import predict
from siftkit.relevance.train import _common_args

ROWS = [{"query": "oak desk", "title": "walnut desk"}, {"query": "blue rug", "title": "red lamp"}]
GRADES = {"Exact", "Significant", "Marginal", "Trivial", "Irrelevant"}


def test_gradient_checkpointing_reaches_the_trainer_args(tmp_path):
    assert _common_args(LrefConfig(), 3, 2, 0, str(tmp_path))["gradient_checkpointing"] is False
    on = LrefConfig(gradient_checkpointing=True)
    assert _common_args(on, 3, 2, 0, str(tmp_path))["gradient_checkpointing"] is True


def _spy(llm):
    """Record the dtype of the logits of every forward pass of the local model."""
    seen = []
    llm.model.register_forward_hook(lambda m, args, out: seen.append(out.logits.dtype))
    return seen


def test_judge_autocast_scores_under_bf16_and_returns_grades(tiny_llm):
    seen = _spy(tiny_llm)
    preds, _, _ = predict(tiny_llm, ROWS, cfg=LrefConfig(judge_autocast=True))
    assert seen and set(seen) == {torch.bfloat16} and set(preds) <= GRADES and len(preds) == 2
    assert not torch.is_autocast_enabled("cpu")  # the context is left
    seen.clear()
    predict(tiny_llm, ROWS, cfg=LrefConfig())
    assert seen and set(seen) == {torch.float32}


def test_judge_autocast_covers_cot_decoding(tiny_llm):
    seen = _spy(tiny_llm)
    preds, _, rats = predict(tiny_llm, ROWS, cot=True, cfg=LrefConfig(judge_autocast=True, cot_max_new_tokens=4))
    assert len(seen) > 2 and set(seen) == {torch.bfloat16}  # decoding steps and the scoring pass
    assert set(preds) <= GRADES and len(rats) == 2


def test_judge_autocast_warns_and_does_nothing_for_an_endpoint_model():
    fake = FakeChatModel()  # no torch device: nothing to autocast
    with pytest.warns(UserWarning, match="judge_autocast has no effect on FakeChatModel"):
        preds, _, _ = predict(fake, ROWS, cfg=LrefConfig(judge_autocast=True))
    assert len(preds) == 2 and set(preds) <= GRADES
