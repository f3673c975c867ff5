"""The next-token distribution call: local back-end, response cache, test doubles, and grade reading from it."""

from __future__ import annotations

import math

import pytest
import torch

from siftkit.llm.base import TokenDistribution
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import CharChatModel, FakeChatModel

PROMPTS = [[{"role": "user", "content": "Grade the passage from 0 to 10."}], "raw prompt text",
           [{"role": "user", "content": "x"}]]


def _direct_top(llm, prompt, k):
    """An independent, unbatched forward pass over one prompt: the top-k of the last position's log-softmax."""
    text, special = llm._prompt_text(prompt)
    ids = torch.tensor([llm.tokenizer(text, add_special_tokens=special)["input_ids"]])  # (1, T)
    with torch.no_grad():
        logp = torch.log_softmax(llm.model(input_ids=ids).logits[0, -1].float(), dim=-1)  # (V,)
    v, i = logp.topk(k)
    return i.tolist(), v.tolist()


def test_local_matches_an_unbatched_forward_pass(tiny_chat_model):
    dists = tiny_chat_model.next_token_logprobs(PROMPTS, top_k=8)  # one left-padded batch
    for prompt, dist in zip(PROMPTS, dists):
        ids, lps = _direct_top(tiny_chat_model, prompt, 8)
        assert [t for t, _ in dist.top] == [tiny_chat_model.tokenizer.decode([i]) for i in ids]
        assert [lp for _, lp in dist.top] == pytest.approx(lps, abs=1e-4)
        assert all(a >= b for (_, a), (_, b) in zip(dist.top, dist.top[1:]))  # most probable first


def test_local_full_vocabulary_is_a_distribution_and_agrees_with_score(tiny_chat_model):
    V = len(tiny_chat_model.tokenizer)
    dist = tiny_chat_model.next_token_logprobs(PROMPTS[:1], top_k=V + 50)[0]
    assert len(dist.top) == V
    assert sum(math.exp(lp) for _, lp in dist.top) == pytest.approx(1.0, abs=1e-4)
    for g in ["7", " 7", "10"]:  # single tokens of the tiny tokenizer
        assert dist.logprob(g) >= tiny_chat_model.score(PROMPTS[:1], [g])[0].logprob - 1e-4
    assert dist.top[0][1] == pytest.approx(tiny_chat_model.score(PROMPTS[:1], [dist.top[0][0]])[0].logprob, abs=1e-4)


def test_local_top1_is_the_greedy_first_token(tiny_chat_model):
    from siftkit.llm.base import GenerationParams

    gens = tiny_chat_model.generate(PROMPTS, GenerationParams(max_new_tokens=1))
    dists = tiny_chat_model.next_token_logprobs(PROMPTS, top_k=1)
    assert [g.text for g in gens] == [d.top[0][0] for d in dists]


def test_local_rejects_bad_arguments(tiny_chat_model):
    from siftkit.core.errors import InputError

    with pytest.raises(ValueError, match="top_k"):
        tiny_chat_model.next_token_logprobs(PROMPTS, top_k=0)
    with pytest.raises(InputError, match="empty prompt"):
        tiny_chat_model.next_token_logprobs([""], top_k=3)
    assert tiny_chat_model.next_token_logprobs([], top_k=3) == []


def test_fake_model_distribution_by_hand():
    d = FakeChatModel().next_token_logprobs(["aab", [{"role": "user", "content": "xyz"}]], top_k=2)
    assert d[0].top == [("a", math.log(2 / 3)), ("b", math.log(1 / 3))]  # reply "baa": a twice, b once
    assert d[1].top == [("z", math.log(1 / 3)), ("y", math.log(1 / 3))]  # ties: first occurrence in the reply
    assert FakeChatModel(error_on="bad").next_token_logprobs(["bad"])[0].top == []


def test_char_model_next_token_equals_score_of_each_token():
    m = CharChatModel()
    dist = m.next_token_logprobs(["Grade:"], top_k=len(m.VOCAB))[0]
    assert sum(math.exp(lp) for _, lp in dist.top) == pytest.approx(1.0)
    by_score = m.score(["Grade:"] * len(m.VOCAB), list(m.VOCAB))
    assert dict(dist.top) == pytest.approx({t: s.logprob for t, s in zip(m.VOCAB, by_score)})
    assert m.tokenize("a 7 10") == ["a", " 7", " 1", "0"]
    assert m.generate(["Grade:"])[0].text.startswith(dist.top[0][0])  # greedy starts with the argmax


def test_cache_answers_the_second_call_and_resumes_in_a_new_process(tmp_path, tiny_chat_model):
    path = tmp_path / "r.sqlite"
    llm = CachedChatModel(tiny_chat_model, ResponseCache(path))
    first = llm.next_token_logprobs(PROMPTS, top_k=5)
    again = CachedChatModel(tiny_chat_model, ResponseCache(path)).next_token_logprobs(PROMPTS, top_k=5)
    assert again == first and all(d.cached for d in again) and not any(d.cached for d in first)
    assert llm.cache.stats()["stored"] == 3


def test_a_run_killed_half_way_resumes(tmp_path):
    class DiesOnSecondChunk(FakeChatModel):
        def next_token_logprobs(self, prompts, top_k=20):
            if self.batches:
                raise KeyboardInterrupt("killed")
            return super().next_token_logprobs(prompts, top_k)

    path, prompts = tmp_path / "r.sqlite", ["ab", "cd", "ef", "gh"]
    with pytest.raises(KeyboardInterrupt):
        CachedChatModel(DiesOnSecondChunk(), ResponseCache(path), chunk_size=2).next_token_logprobs(prompts, 3)
    inner = FakeChatModel()
    out = CachedChatModel(inner, ResponseCache(path), chunk_size=2).next_token_logprobs(prompts, 3)
    assert [d.cached for d in out] == [True, True, False, False] and inner.batches == [2]  # the first chunk was kept
    assert out == FakeChatModel().next_token_logprobs(prompts, 3)


def test_cache_keys_on_top_k_and_rejects_malformed(tmp_path):
    inner = FakeChatModel(error_on="bad")
    llm = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"), chunk_size=2)
    llm.next_token_logprobs(["abc", "bad", "abc"], top_k=2)
    assert len(inner.calls) == 2 and llm.cache.stats()["rejected"] == 1  # deduplicated; the error is not stored
    llm.next_token_logprobs(["abc", "bad"], top_k=2)
    assert len(inner.calls) == 3  # only the failed prompt again
    llm.next_token_logprobs(["abc"], top_k=3)
    assert len(inner.calls) == 4  # another top_k is another key
    llm.generate(["abc"]), llm.score(["abc"], ["c"])
    assert len(inner.calls) == 6  # next-token rows never answer generate or score
    d = llm.next_token_logprobs(["abc"], top_k=3, bypass=True)[0]
    assert not d.cached and len(inner.calls) == 7


def test_cache_refuses_a_backend_without_the_call(tmp_path):
    class NoNextToken:
        model_id, fingerprint = "x", "x"

    with pytest.raises(AttributeError, match="no next_token_logprobs"):
        CachedChatModel(NoNextToken(), ResponseCache(tmp_path / "r.sqlite")).next_token_logprobs(["a"])


def test_distribution_logprob_lookup():
    d = TokenDistribution(top=[(" 7", -0.5), ("7", -1.0), ("8", -2.0)])
    assert d.logprob("7") == -0.5 and d.logprob("9") == float("-inf") and d.logprob("9", default=-99.0) == -99.0


# ---------------------------------------------------------------------------------------------------------------------
# reading a grade
# ---------------------------------------------------------------------------------------------------------------------

def test_expected_grade_by_hand():
    from siftkit.llm.grading import GRADES_0_4, expected_grade

    d = TokenDistribution(top=[("The", -0.1), ("3", math.log(0.2)), (" 3", math.log(0.1)), ("1", math.log(0.35)),
                               ("x3", -1.0), ("7", math.log(0.05))])
    r = expected_grade(d, GRADES_0_4)  # "7" is not a grade of the 0-4 scale, "x3" is not "3"
    assert r.mass == pytest.approx(0.2 + 0.1 + 0.35)
    assert r.probs == pytest.approx({"0": 0.0, "1": 0.35 / 0.65, "2": 0.0, "3": 0.3 / 0.65, "4": 0.0})
    assert r.expected == pytest.approx((1 * 0.35 + 3 * 0.3) / 0.65)
    assert r.argmax == "1"
    tie = expected_grade(TokenDistribution(top=[("2", -1.0), ("0", -1.0)]), GRADES_0_4)
    assert tie.argmax == "0" and tie.expected == pytest.approx(1.0)  # a tie goes to the earlier grade
    none = expected_grade(TokenDistribution(top=[("The", -0.1)]), GRADES_0_4)
    assert none.mass == 0.0 and none.argmax is None and math.isnan(none.expected)


def _assert_same_reading(a, b):
    assert a.probs == pytest.approx(b.probs, abs=1e-4)
    assert a.mass == pytest.approx(b.mass, abs=1e-4)
    assert a.expected == pytest.approx(b.expected, abs=1e-4) and a.argmax == b.argmax


def test_next_token_reading_equals_scoring_each_grade_tiny_llama(tiny_chat_model, tmp_path):
    from siftkit.llm.grading import GRADES_0_10, expected_grade, grade_by_score

    llm = CachedChatModel(tiny_chat_model, ResponseCache(tmp_path / "r.sqlite"))
    prompts = [PROMPTS[0], [{"role": "user", "content": "Rate 0-10 how relevant: oak desk / walnut desk"}]]
    V = len(tiny_chat_model.tokenizer)
    by_dist = [expected_grade(d, GRADES_0_10) for d in llm.next_token_logprobs(prompts, top_k=V)]
    by_score = grade_by_score(llm, prompts, GRADES_0_10, variants=("", " "))
    for a, b in zip(by_dist, by_score):
        _assert_same_reading(a, b)
        assert 0 < a.mass < 1 and a.probs[a.argmax] == max(a.probs.values())


def test_next_token_reading_equals_scoring_each_grade_char_model():
    from siftkit.llm.grading import GRADES_0_4, expected_grade, grade_by_score

    m = CharChatModel(spread=9.0)
    prompts = [f"Grade {i}:" for i in range(6)]
    by_dist = [expected_grade(d, GRADES_0_4) for d in m.next_token_logprobs(prompts, top_k=len(m.VOCAB))]
    for a, b in zip(by_dist, grade_by_score(m, prompts, GRADES_0_4)):
        _assert_same_reading(a, b)
    assert len({a.argmax for a in by_dist}) > 1  # the prompts really differ


# ---------------------------------------------------------------------------------------------------------------------
# a reply prefix (a chat ending in an assistant message) is continued, not closed
# ---------------------------------------------------------------------------------------------------------------------

def test_reply_prefix_is_continued_not_a_new_turn(tiny_chat_model):
    from siftkit.llm.base import continues_reply
    from siftkit.llm.ct2 import CT2ChatModel
    from siftkit.llm.openai_client import _reply_prefix

    turn = [{"role": "system", "content": "Rate 0-9."}, {"role": "user", "content": "oak desk / walnut desk"}]
    prefixed = turn + [{"role": "assistant", "content": "Score: "}]
    opened, _ = tiny_chat_model._prompt_text(turn)  # the template with the assistant turn opened
    text, special = tiny_chat_model._prompt_text(prefixed)
    assert text == opened + "Score: " and special is False  # the prefix goes on exactly where the reply starts
    assert continues_reply(prefixed) and not continues_reply(turn) and not continues_reply("Score: ")
    assert CT2ChatModel._prompt_text is type(tiny_chat_model)._prompt_text  # the ct2 engine renders it the same way
    # the first-token distribution is read after the prefix: it differs from the one after the opened turn
    after, before = tiny_chat_model.next_token_logprobs([prefixed, turn], top_k=5)
    assert after.top != before.top
    assert _reply_prefix(prefixed) == {"continue_final_message": True, "add_generation_prompt": False}
    assert _reply_prefix(turn) == {}
