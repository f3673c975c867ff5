"""The fine-tuning helper: a tiny Llama learns a toy mapping by SFT and DPO, LoRA and full; cache keys change."""

from __future__ import annotations

import copy

import pytest
import torch

from siftkit.core.errors import InputError
from siftkit.llm.base import GenerationParams
from siftkit.llm.cache import CachedChatModel, ResponseCache, cache_key, params_key
from siftkit.llm.finetune import FinetuneConfig, dpo, finetune, lora_targets, sft, unpatch

MAP = {"fox": " dog", "quick": " lazy", "search": " engine", "query": " score"}  # the toy mapping: prompt → answer
SFT_ROWS = [{"prompt": k, "completion": v} for k, v in MAP.items()] * 2
DPO_ROWS = [{"prompt": k, "chosen": v, "rejected": " no"} for k, v in MAP.items()] * 2
RUNS = {True: 3e-2, False: 3e-3}  # lora → learning rate (an adapter takes a larger rate)


def _cfg(lora: bool, **kw) -> FinetuneConfig:
    args = dict(steps=20, lr=RUNS[lora], batch_size=8, lora=lora, lora_r=8, logging_steps=1, device="cpu",
                max_length=64)
    return FinetuneConfig(**{**args, **kw})


def _scores(llm) -> torch.Tensor:
    """(prompts, answers) log p(answer | prompt) under ``llm``, raw prompts (no chat template)."""
    keys, vals = list(MAP), list(MAP.values())
    flat = llm.score([k for k in keys for _ in vals], [v for _ in keys for v in vals])
    return torch.tensor([s.logprob for s in flat]).view(len(keys), len(vals))  # (4, 4)


def _greedy(llm) -> list[str]:
    return [g.text for g in llm.generate(list(MAP), GenerationParams(max_new_tokens=3))]


def _losses(log) -> list[float]:
    return [h["loss"] for h in log if "loss" in h]


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_sft_learns_the_mapping(tiny_chat_model_copy, lora):
    llm = tiny_chat_model_copy
    before_scores, before_text = _scores(llm), _greedy(llm)
    assert (before_scores.argmax(1) != torch.arange(4)).any()  # the random model does not know the mapping
    log = finetune(llm, SFT_ROWS, _cfg(lora))
    losses = _losses(log)
    assert len(losses) == 20 and losses[-1] < 0.1 * losses[0]
    after = _scores(llm)
    assert torch.equal(after.argmax(1), torch.arange(4))  # every prompt now prefers its own answer
    assert (after.diagonal() > before_scores.diagonal() + 5).all()
    assert _greedy(llm) != before_text
    assert not hasattr(llm.model, "peft_config")  # merged back into a plain transformers model
    assert not [n for n, m in llm.model.named_modules() if "forward" in m.__dict__]  # TRL's patch removed


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_dpo_prefers_chosen_over_rejected(tiny_chat_model_copy, lora):
    llm = tiny_chat_model_copy
    prompts = list(MAP)

    def margins():
        ch = llm.score(prompts, list(MAP.values()))
        rj = llm.score(prompts, [" no"] * 4)
        return torch.tensor([c.logprob - r.logprob for c, r in zip(ch, rj)])  # (4,)

    before, before_text = margins(), _greedy(llm)
    assert (before < 0).any()  # some prompts start out preferring " no"
    log = finetune(llm, DPO_ROWS, _cfg(lora), method="dpo")
    losses = _losses(log)
    assert losses[0] == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-3)  # π_θ = π_ref at step 1
    assert losses[-1] < 0.05
    after = margins()
    assert (after > 0).all() and (after > before + 1).all()
    assert _greedy(llm) != before_text


def test_full_dpo_reference_is_the_model_passed_in(tiny_chat_model_copy):
    """After an in-memory SFT, full-weight DPO must compare with that SFT model, not the folder on disk: its first
    loss is exactly log 2 only if π_ref equals the starting π_θ."""
    llm = tiny_chat_model_copy
    finetune(llm, SFT_ROWS, _cfg(False))
    log = finetune(llm, DPO_ROWS, _cfg(False, steps=2), method="dpo")
    assert _losses(log)[0] == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-4)


def test_cache_key_changes_after_training(tiny_chat_model_copy, tmp_path):
    llm = tiny_chat_model_copy
    cached = CachedChatModel(llm, ResponseCache(tmp_path / "c.sqlite"))
    params = GenerationParams(max_new_tokens=3)
    key_before = cache_key("generate", llm.fingerprint, llm.model_id, "fox", params_key(params))
    cached.generate(["fox"], params)
    assert cached.generate(["fox"], params)[0].cached  # stored once, answered from the cache
    finetune(cached, SFT_ROWS, _cfg(True, steps=3))  # trains the inner model
    key_after = cache_key("generate", llm.fingerprint, llm.model_id, "fox", params_key(params))
    assert key_after != key_before
    assert not cached.generate(["fox"], params)[0].cached  # the trained model answers anew
    assert cached.cache.stats()["misses"] == 2


def test_a_copy_of_a_trained_model_runs_its_own_weights(tiny_chat_model_copy):
    llm = tiny_chat_model_copy
    model, _ = sft(llm.model, llm.tokenizer, SFT_ROWS, _cfg(True, steps=2))
    twin = copy.deepcopy(model)
    x = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        before = model(x).logits.clone()
        twin.lm_head.weight.add_(1.0)
        assert not torch.allclose(twin(x).logits, before)
        assert torch.equal(model(x).logits, before)


def test_lora_targets_come_from_the_model(tiny_chat_model):
    assert lora_targets(tiny_chat_model.model) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj",
                                                   "v_proj"]
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=16))
    assert lora_targets(gpt2) == ["c_attn", "c_fc", "c_proj"]  # Conv1D layers, and no lm_head


def test_any_causal_lm_gpt2_with_conv1d_layers(tiny_chat_model):
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tiny_chat_model.tokenizer
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=len(tok), n_positions=64,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    before = {k: v.clone() for k, v in gpt2.state_dict().items()}
    model, log = sft(gpt2, tok, SFT_ROWS, _cfg(True, steps=5))
    assert type(model) is GPT2LMHeadModel and _losses(log)[-1] < _losses(log)[0]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.split(".")[-2] in ("c_attn", "c_fc", "c_proj") for k in changed)  # merged adapters


def test_unpatch_removes_instance_forwards():
    m = torch.nn.Sequential(torch.nn.Linear(2, 2))
    m[0].forward = lambda x: x
    unpatch(m)
    assert "forward" not in m[0].__dict__


def test_bad_settings_and_empty_sets_are_input_errors():
    with pytest.raises(InputError, match="lr"):
        FinetuneConfig(lr=0)
    with pytest.raises(InputError, match="device"):
        FinetuneConfig(device="tpu")
    with pytest.raises(InputError, match="no training rows"):
        sft(None, None, [], FinetuneConfig())
    with pytest.raises(InputError, match="no preference pairs"):
        dpo(None, None, [], FinetuneConfig())
    with pytest.raises(InputError, match="method"):
        finetune(None, SFT_ROWS, FinetuneConfig(), method="ppo")
