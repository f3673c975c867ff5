"""The fine-tuned variant's objective, as run by ``siftkit.catalog.finetune.train`` (LoRA SFT through TRL), against
an independent transcription: the token-mean negative log-likelihood of the human descriptions (+ the EOS TRL
appends), prompt tokens and padding excluded, value and adapter gradient (see ``tests/trl_reference.py``).

Edge case: ``max_length`` is set so that the longest kept row is exactly one token under it before TRL appends the
EOS; a truncated completion would make the trainer's loss differ from the reference's full-description NLL.
"""

from __future__ import annotations

import pytest

from siftkit.catalog.demo import load_demo
from siftkit.catalog.finetune import CatalogSFTConfig, train, training_rows
from tests.trl_reference import assert_grads_close, capture_first_batch, sft_reference


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "catalog-eq-tiny-llama")


def test_catalog_sft_loss_is_the_description_nll(tmp_path, tiny, monkeypatch):
    import trl
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    assets = load_demo(tmp_path / "demo").assets()
    rows = training_rows(tok, assets, ["clinic"], max_rows=4)
    longest = max(len(tok(r["prompt"] + r["completion"]).input_ids) for r in rows)
    rows = training_rows(tok, assets, ["clinic"], max_rows=4, max_length=longest + 1)
    assert len(rows) == 4 and len({r["completion"] for r in rows}) > 1
    got = capture_first_batch(monkeypatch, trl.SFTTrainer, sft_reference(tok, rows))
    train(str(tiny), rows, CatalogSFTConfig(steps=1, batch_size=len(rows), lora_r=4, max_length=longest + 1),
          threads=2)
    assert got["batch_rows"] == len(rows)
    assert got["loss"].item() == pytest.approx(got["ref"].item(), rel=1e-5)
    assert_grads_close(got["grads"], got["ref_grads"])
