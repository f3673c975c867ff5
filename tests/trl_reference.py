"""An independent reference for TRL-trained objectives (SFT, DPO): hook a trainer's first batch, and score one
unpadded sequence at a time in float64. Used by the equivalence tests of the methods that train through
:mod:`siftkit.llm.finetune` (tests/relevance, tests/catalog)."""

from __future__ import annotations

import torch


def capture_first_batch(monkeypatch, trainer_cls, reference) -> dict:
    """Replace ``trainer_cls.train`` by a hook computing, on one batch holding every row, the trainer's loss and
    adapter gradient and then ``reference(peft_model)`` and its gradient (before the adapter is merged away)."""
    got: dict = {}

    def hook(self, *args, **kwargs):
        model = self.model
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_" in name:
                    p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
        model.train()
        batch = next(iter(self.get_train_dataloader()))
        batch = {k: v for k, v in batch.items()}
        loss = self.compute_loss(model, batch)
        model.zero_grad()
        loss.backward()
        got["loss"] = loss.detach()
        got["grads"] = adapter_grads(model)
        got["batch_rows"] = batch["input_ids"].shape[0]
        model.zero_grad()
        ref = reference(model)
        ref.backward()
        got["ref"] = ref.detach()
        got["ref_grads"] = adapter_grads(model)

    monkeypatch.setattr(trainer_cls, "train", hook)
    return got


def completion_ids(tok, prompt: str, completion_text: str) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) for ``prompt + completion + EOS``; the prompt's tokens must be a prefix."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    full = tok(prompt + completion_text + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert full[:len(p)] == p
    return p, full[len(p):]


def seq_logps(model, p: list[int], c: list[int]) -> torch.Tensor:
    """(len(c),) log π(c_t | p, c_<t), one unpadded sequence."""
    ids = torch.tensor([p + c])
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].double()  # (L, V)
    out = []
    for j, t in enumerate(c):
        pos = len(p) + j  # the position of token t; predicted from pos − 1
        out.append(torch.log_softmax(logits[pos - 1], -1)[t])
    return torch.stack(out)


def adapter_grads(model) -> dict:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_grads_close(a: dict, b: dict):
    assert a.keys() == b.keys() and a
    nonzero = 0
    for n in a:
        # relative to each tensor's norm: TRL's path keeps some float32 steps (seen: ~5e-7), the reference does not
        assert (a[n] - b[n]).norm() <= 1e-5 * b[n].norm() + 1e-12, n
        nonzero += int(a[n].abs().sum() > 0)
    assert nonzero > 0


def sft_reference(tok, rows):
    """The SFT objective of prompt-completion ``rows``: token-mean NLL over every completion token (+ EOS)."""

    def reference(m):
        total, count = 0.0, 0
        for r in rows:
            p, c = completion_ids(tok, r["prompt"], r["completion"])
            total, count = total - seq_logps(m, p, c).sum(), count + len(c)
        return total / count

    return reference
