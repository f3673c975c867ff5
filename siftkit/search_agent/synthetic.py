"""A synthetic retrieval-needed QA task, its corpus, a word-level tokenizer and a tiny from-scratch policy.

Facts no model can know (search_r1 spec §8A [ours]): invented entity names, ``capital[e] = v`` over invented values
and ``birthplace[e] = e'``. One passage per fact in wiki-18 format (``"Title"\\ntext``). Questions:

* 1-hop: ``what is the capital of E?`` → ``capital[E]``;
* 2-hop: ``what is the capital of the birthplace of E?`` → ``capital[birthplace[E]]``.

Entities are split; held-out questions are about entities that appear in no training question. The warm start
trains on trajectories of a *format-keeping noisy policy* (searches with ``p_search``, names the right entity with
``p_entity``, copies from the passages with ``p_copy``; spec §8A), so the tag format is known but the skill is not.

Example:
    >>> task = SyntheticTask.generate(seed=0)
    >>> task.corpus()[0], task.train[0]
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from siftkit.retrieval.corpus import Corpus
from siftkit.search_agent.rollout import INVALID_MESSAGE, TAGS, TEMPLATE, Trajectory, render_information

SHORT_TEMPLATE = "Question: {question}\n"
"""[ours] The tiny from-scratch policy's prompt: Search-R1's 108-token instruction carries no information for a
model that has never read English and doubles the CPU cost of every sequence; the SmolLM2 run uses the real one."""

_SYL = ["ba", "do", "ki", "lu", "me", "no", "pa", "ri", "so", "tu", "va", "xe", "zo", "gri", "bla", "tor", "vin",
        "qua", "mek", "dru"]


@dataclass
class SyntheticTask:
    """Entities, facts and questions.

    ``train``/``heldout`` rows are ``{"uid", "question", "golds", "hops", "entity"}``.
    """

    entities: list[str]
    values: list[str]
    capital: dict[str, str]
    birthplace: dict[str, str]
    train: list[dict] = field(default_factory=list)
    heldout: list[dict] = field(default_factory=list)

    @classmethod
    def generate(cls, seed: int = 0, n_entities: int = 300, n_values: int = 40, heldout_frac: float = 1 / 3,
                 two_hop: bool = True) -> "SyntheticTask":
        """Draw names and facts; held-out entities are ``heldout_frac`` of all and never asked about in training."""
        rng = random.Random(seed)
        names: set[str] = set()
        while len(names) < n_entities + n_values:
            names.add("".join(rng.choice(_SYL) for _ in range(rng.choice([2, 3]))))
        names_l = sorted(names)
        rng.shuffle(names_l)
        ents, vals = names_l[:n_entities], names_l[n_entities:]
        capital = {e: rng.choice(vals) for e in ents}
        birthplace = {e: rng.choice([x for x in ents if x != e]) for e in ents}
        n_held = int(round(n_entities * heldout_frac))
        task = cls(ents, vals, capital, birthplace)
        for split, es in (("heldout", ents[:n_held]), ("train", ents[n_held:])):
            rows = getattr(task, split)
            for e in es:
                rows.append({"uid": f"{split}-1hop-{e}", "question": f"what is the capital of {e}?",
                             "golds": [capital[e]], "hops": 1, "entity": e})
                if two_hop:
                    rows.append({"uid": f"{split}-2hop-{e}", "question": f"what is the capital of the birthplace "
                                 f"of {e}?", "golds": [capital[birthplace[e]]], "hops": 2, "entity": e})
        return task

    def corpus(self) -> Corpus:
        """One wiki-18-format passage per fact."""
        recs = []
        for i, e in enumerate(self.entities):
            recs.append({"id": f"c{i}", "contents": f'"{e}"\nthe capital of {e} is {self.capital[e]} .'})
            recs.append({"id": f"b{i}", "contents": f'"{e}"\nthe birthplace of {e} is {self.birthplace[e]} .'})
        return Corpus.from_records(recs)

    def words(self) -> list[str]:
        return self.entities + self.values


# ---------------------------------------------------------------------------------------------------------------------
# word-level tokenizer and tiny policy
# ---------------------------------------------------------------------------------------------------------------------

def word_tokenizer(texts: list[str]):
    """A ``PreTrainedTokenizerFast`` with one id per word / punctuation run seen in ``texts``; tags are single tokens.

    Decoding joins tokens with spaces, and re-encoding a decoded text gives the same ids, so the rollout's
    decode → cut → re-tokenise step (spec §2) is lossless for this tokenizer.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for tag in TAGS:
        vocab.setdefault(tag, len(vocab))
    for text in texts:
        for piece in text.split():
            if piece in TAGS:
                continue
            for w, _ in pre.pre_tokenize_str(piece):
                vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre
    tok.add_tokens([AddedToken(t, single_word=False, normalized=False) for t in TAGS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]")


def task_tokenizer(task: SyntheticTask):
    """The word tokenizer over everything the task can show: template, questions, passages, messages."""
    texts = [TEMPLATE, INVALID_MESSAGE, render_information(task.corpus().contents[:3])]
    texts += [r["question"] for r in task.train + task.heldout] + list(task.corpus().contents)
    texts += [f"capital of birthplace of {w} ?" for w in task.words()]
    return word_tokenizer(texts)


def tiny_policy(vocab_size: int, d: int = 64, n_layers: int = 2, n_heads: int = 4, max_len: int = 1024,
                seed: int = 0):
    """A from-scratch ``LlamaForCausalLM`` (spec §8A: d = 64, 2 layers)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)  # weight init only; everything else uses explicit generators
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=d, intermediate_size=4 * d, num_hidden_layers=n_layers,
                      num_attention_heads=n_heads, num_key_value_heads=n_heads, max_position_embeddings=max_len,
                      pad_token_id=0, bos_token_id=2, eos_token_id=2, tie_word_embeddings=True)
    return LlamaForCausalLM(cfg)


# ---------------------------------------------------------------------------------------------------------------------
# warm start: trajectories of a format-keeping noisy policy (spec §8A)
# ---------------------------------------------------------------------------------------------------------------------

def _fact_from(hits, entity: str, relation: str) -> str | None:
    """Read ``relation`` of ``entity`` off retrieved passages (the value after ``is``), if one is there."""
    for h in hits:
        words = h.contents.split("\n", 1)[-1].split()
        if words[:4] == ["the", relation, "of", entity] and len(words) >= 6:
            return words[5]
    return None


def noisy_trajectories(task: SyntheticTask, rows: list[dict], tokenizer, retriever, rng: random.Random,
                       p_search: float = 0.5, p_entity: float = 0.7, p_copy: float = 0.5, topk: int = 3,
                       template: str = SHORT_TEMPLATE) -> list[Trajectory]:
    """Scripted trajectories (no ``<think>``: it is never parsed [ours, shorter sequences]) with their info masks."""
    from siftkit.search_agent.rollout import prompt_ids

    out = []
    for row in rows:
        t = Trajectory(row["uid"], row["question"], row["golds"], prompt_ids(tokenizer, row["question"], template))

        def say(text: str, gen: bool = True):
            t.segments.append((tokenizer.encode(text, add_special_tokens=False), gen))
            t.texts.append((text, gen))

        def search(q: str):
            say(f"<search> {q} </search>")
            t.queries.append(q)
            hits = retriever.search([q], k=topk)[0]
            say(render_information([h.contents for h in hits]), gen=False)
            return hits

        e = row["entity"]
        if rng.random() < p_search:
            target = e if rng.random() < p_entity else rng.choice(task.entities)
            if row["hops"] == 2:
                hits = search(f"birthplace of {target}")
                bridge = _fact_from(hits, target, "birthplace") if rng.random() < p_copy else None
                target = bridge or rng.choice(task.entities)
            hits = search(f"capital of {target}")
            ans = _fact_from(hits, target, "capital") if rng.random() < p_copy else None
            say(f"<answer> {ans or rng.choice(task.values)} </answer>")
        else:
            say(f"<answer> {rng.choice(task.values)} </answer>")
        out.append(t)
    return out
