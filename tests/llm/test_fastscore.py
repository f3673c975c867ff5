"""The core shared-prefix scoring path: equal to plain score, and cached per (prompt, continuation) like score."""

from __future__ import annotations

import pytest

from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import CharChatModel, FakeChatModel

PROMPTS = [[{"role": "user", "content": "Is the passage relevant to the query?"}], "raw prompt text",
           [{"role": "user", "content": "Grade it."}], [{"role": "user", "content": "one"}]]
GROUPS = [["Label: yes", "Label: no", "Label: maybe not"],
          ["The answer is 7", "The answer is 10", "x"],
          [" 7", "7", " 10"],
          ["only one"]]


def _flat(groups):
    return [s for row in groups for s in row]


def test_score_groups_equals_plain_score(tiny_chat_model):
    groups = tiny_chat_model.score_groups(PROMPTS, GROUPS)
    plain = tiny_chat_model.score([p for p, g in zip(PROMPTS, GROUPS) for _ in g], _flat(GROUPS))
    assert [len(r) for r in groups] == [len(g) for g in GROUPS]
    for fast, ref in zip(_flat(groups), plain):
        assert fast.logprob == pytest.approx(ref.logprob, abs=1e-4)
        assert fast.token_logprobs == pytest.approx(ref.token_logprobs, abs=1e-4)


def test_score_groups_uses_one_prefix_pass_per_batch(tiny_chat_model_copy):
    calls = []
    tiny_chat_model_copy.model.register_forward_hook(lambda m, a, kw, out: calls.append(kw["input_ids"].shape),
                                                     with_kwargs=True)
    tiny_chat_model_copy.score_groups(PROMPTS[:1], [["Label: yes", "Label: no", "Label: maybe not"]])
    # the shared part "...Label:" once, then the 3 tails (at most 2 tokens beyond the first own token) together
    assert len(calls) == 2 and calls[0][0] == 1 and calls[1][0] == 3


def test_cache_does_not_bypass_shared_prefix_scoring(tmp_path, tiny_chat_model):
    path = tmp_path / "r.sqlite"
    llm = CachedChatModel(tiny_chat_model, ResponseCache(path), chunk_size=4)
    first = llm.score_groups(PROMPTS, GROUPS)
    assert llm.cache.stats()["stored"] == len(_flat(GROUPS)) and not any(s.cached for s in _flat(first))
    # the rows are score's rows: plain score after a fresh open answers from them, and vice versa
    plain = CachedChatModel(tiny_chat_model, ResponseCache(path)).score(
        [p for p, g in zip(PROMPTS, GROUPS) for _ in g], _flat(GROUPS))
    assert all(s.cached for s in plain) and [s.logprob for s in plain] == [s.logprob for s in _flat(first)]
    again = CachedChatModel(tiny_chat_model, ResponseCache(path)).score_groups(PROMPTS, GROUPS)
    assert all(s.cached for s in _flat(again)) and again == first


def test_cached_score_groups_sends_only_the_misses(tmp_path):
    inner = CharChatModel()  # no score_groups: the wrapper falls back to inner.score
    llm = CachedChatModel(inner, ResponseCache(tmp_path / "r.sqlite"))
    llm.score(["q"], ["ab"])
    out = llm.score_groups(["q", "r"], [["ab", "cd"], ["ab"]])
    assert len(inner.calls) == 1 + 2 and out[0][0].cached and not out[0][1].cached
    assert [[s.logprob for s in row] for row in out] == [[s.logprob for s in inner.score(["q", "q"], ["ab", "cd"])],
                                                         [inner.score(["r"], ["ab"])[0].logprob]]
    bypassed = llm.score_groups(["q"], [["ab"]], bypass=True)
    assert not bypassed[0][0].cached and llm.cache.stats()["bypassed"] == 1
    with pytest.raises(ValueError, match="continuation groups"):
        llm.score_groups(["q"], [])
    assert CachedChatModel(FakeChatModel()).score_groups([], []) == []
