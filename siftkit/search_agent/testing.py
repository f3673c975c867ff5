"""Test doubles for Search-R1 rollouts: a scripted sampler and a retriever that records its calls."""

from __future__ import annotations


class ScriptedSampler:
    """Answers each context with the next scripted turn of the question found in it.

    ``script[question]`` is a list of turn texts; the turn index is the number of completed turns in the context
    (observations and invalid messages counted through their closing markers).
    """

    def __init__(self, tokenizer, script: dict[str, list[str]]):
        self.tok, self.script, self.calls = tokenizer, script, []

    def __call__(self, contexts, max_new_tokens):
        self.calls.append(len(contexts))
        out = []
        for ids in contexts:
            text = self.tok.decode(ids)
            q = next(q for q in self.script if q.rstrip("?").strip() in text)
            turn = text.count("</information>") + text.count("Let me try again")
            out.append(self.tok.encode(self.script[q][turn], add_special_tokens=False))
        return out


class SpyRetriever:
    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def search(self, queries, k=3):
        self.calls.append(list(queries))
        return self.inner.search(queries, k)
