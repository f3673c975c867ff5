import pytest
import torch

from siftkit.search_agent.rollout import (
    INVALID_MESSAGE, TEMPLATE, HFSampler, RolloutConfig, batch_tensors, cut_response, make_prompt, parse_action,
    render_information, rollout,
)
from siftkit.search_agent.synthetic import SHORT_TEMPLATE

from siftkit.search_agent.testing import ScriptedSampler, SpyRetriever


def test_template_is_upstream_verbatim():
    p = make_prompt("who wrote hamlet")
    assert p.endswith("Question: who wrote hamlet?\n")
    assert "as many times as your want" in p  # upstream typo kept
    assert make_prompt("  x?  ") == TEMPLATE.format(question="x?")


def test_cut_parse_and_render():
    assert cut_response("a <search> q </search> junk </answer>") == "a <search> q </search>"
    assert cut_response("<answer> x </answer> more") == "<answer> x </answer>"
    assert parse_action("<think>t</think><search>\n cap of x \n</search>") == ("search", "cap of x")
    assert parse_action("<answer> y </answer>") == ("answer", "y")
    assert parse_action("nothing") == (None, "")
    obs = render_information(['"Paris"\nParis is big.', '"Lyon"\nLyon too.'])
    assert obs == ('\n\n<information>Doc 1(Title: "Paris") Paris is big.\nDoc 2(Title: "Lyon") Lyon too.'
                   '</information>\n\n')


def _expected_mask(tokens):
    """1 outside every <information>…</information> span and invalid-action message, 0 inside (token by token)."""
    inv = set(INVALID_MESSAGE.split())
    out, inside = [], False
    for tok in tokens:
        if tok == "<information>":
            inside = True
        out.append(0 if inside else 1)
        if tok == "</information>":
            inside = False
    return out, inv


def test_scripted_rollout_transcript_and_token_by_token_mask(small_task):
    task, tok, bm25 = small_task
    row1 = next(r for r in task.heldout if r["hops"] == 1)
    row2 = next(r for r in task.heldout if r["hops"] == 2)
    e1, e2 = row1["entity"], row2["entity"]
    bridge = task.birthplace[e2]
    script = {
        row1["question"]: [f"<search> capital of {e1} </search>", f"<answer> {task.capital[e1]} </answer>"],
        row2["question"]: ["i do not know", f"<search> birthplace of {e2} </search>",
                           f"<search> capital of {bridge} </search>", f"<answer> {task.capital[bridge]} </answer>"],
    }
    spy = SpyRetriever(bm25)
    cfg = RolloutConfig(max_turns=4, max_new_tokens=16, template=SHORT_TEMPLATE)
    t1, t2 = rollout(ScriptedSampler(tok, script), tok, spy, [("a", row1["question"], row1["golds"]),
                                                               ("b", row2["question"], row2["golds"])], cfg)
    # transcript
    top = bm25.search([f"capital of {e1}"], k=3)[0]
    assert t1.response_text == (f"<search> capital of {e1} </search>" + render_information([h.contents for h in top])
                                + f"<answer> {task.capital[e1]} </answer>")
    assert t2.texts[1] == (INVALID_MESSAGE, False)
    assert t2.queries == [f"birthplace of {e2}", f"capital of {bridge}"] and t2.n_invalid == 1 and t2.n_turns == 4
    assert t1.n_search == 1 and t1.done and t2.done
    # retrieval: one batched call per turn with every pending query
    assert spy.calls[0] == [f"capital of {e1}"]
    assert spy.calls[1] == [f"birthplace of {e2}"] and spy.calls[2] == [f"capital of {bridge}"]
    # mask, token by token
    for t in (t1, t2):
        tokens = tok.convert_ids_to_tokens(t.response_ids)
        expected, inv = _expected_mask(tokens)
        if t is t2:  # the invalid-action message is environment text: masked too
            seg_lens = [len(ids) for ids, _ in t.segments]
            start = seg_lens[0]
            for j in range(start, start + seg_lens[1]):
                expected[j] = 0
        assert t.info_mask == expected
        assert sum(1 for x in t.info_mask if x == 0) > 0 and tokens.count("<information>") == t.n_search
    # the loss mask in training tensors is the same mask, shifted by one
    b = batch_tensors([t1, t2], tok.pad_token_id)
    P, R = len(t1.prompt), len(t1.response_ids)
    assert b["loss_mask"][0, P - 1:P - 1 + R].tolist() == [float(x) for x in t1.info_mask]
    assert b["loss_mask"][0, :P - 1].sum() == 0 and b["loss_mask"][0, P - 1 + R:].sum() == 0
    assert batch_tensors([t1], tok.pad_token_id, use_mask=False)["loss_mask"].sum() == R


def test_max_turns_then_final_turn_without_search(small_task):
    task, tok, bm25 = small_task
    row = task.heldout[0]
    script = {row["question"]: [f"<search> capital of {row['entity']} </search>"] * 10}
    spy = SpyRetriever(bm25)
    (t,) = rollout(ScriptedSampler(tok, script), tok, spy, [("a", row["question"], row["golds"])],
                   RolloutConfig(max_turns=2, template=SHORT_TEMPLATE))
    assert t.n_turns == 3 and t.n_search == 2 and len(spy.calls) == 2  # the 3rd search gets no observation
    assert t.segments[-1][1] is True and t.done


def test_rag_forced_query_is_masked(small_task):
    task, tok, bm25 = small_task
    row = task.heldout[0]
    script = {row["question"]: ["x", f"<answer> {row['golds'][0]} </answer>"]}
    (t,) = rollout(ScriptedSampler(tok, script), tok, bm25, [("a", row["question"], row["golds"])],
                   RolloutConfig(max_turns=0, template=SHORT_TEMPLATE), forced_first_query=True)
    assert [g for _, g in t.segments] == [False, False, True] and t.n_turns == 1


@pytest.mark.parametrize("temperature", [0.0])
def test_hf_sampler_batched_equals_one_at_a_time(small_task, temperature):
    from siftkit.search_agent.synthetic import tiny_policy

    task, tok, bm25 = small_task
    model = tiny_policy(len(tok), seed=3).eval()
    items = [(r["uid"], r["question"], r["golds"]) for r in task.heldout[:6]]
    cfg = RolloutConfig(max_turns=2, max_new_tokens=8, template=SHORT_TEMPLATE)
    batched = rollout(HFSampler(model, tok, temperature), tok, bm25, items, cfg)
    single = rollout(HFSampler(model, tok, temperature), tok, bm25, items,
                     RolloutConfig(**{**cfg.__dict__, "batch_size": 1}))
    assert [t.response_ids for t in batched] == [t.response_ids for t in single]


def test_hf_sampler_on_a_bpe_tiny_llama(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    s = HFSampler(model, tok, temperature=1.0, seed=0)
    out = s([[1, 2, 3], [4, 5, 6, 7, 8]], 5)
    assert len(out) == 2 and all(1 <= len(o) <= 5 for o in out)
    torch.testing.assert_close(torch.tensor(0.0), torch.tensor(0.0))
