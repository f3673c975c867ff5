import json

import pytest

from siftkit.core.errors import InputError
from siftkit.search_agent.data import load_qa, shared_files
from siftkit.search_agent.rollout import RolloutConfig, render_information, rollout
from siftkit.search_agent.synthetic import SHORT_TEMPLATE, SyntheticTask
from siftkit.search_agent.testing import ScriptedSampler


def test_loaders_on_written_files(tmp_path):
    from siftkit.core.io import write_parquet

    p = write_parquet(tmp_path / "s.parquet", [
        {"id": "test_0", "question": "who?", "golden_answers": ["A"], "data_source": "nq",
         "prompt": [{"role": "user", "content": "... Question: who?\n"}],
         "reward_model": {"style": "rule", "ground_truth": {"target": ["A", "a1"]}},
         "extra_info": {"split": "test", "index": 0}}])
    p2 = write_parquet(tmp_path / "d.parquet", [
        {"id": None, "data_source": "tq", "prompt": [{"role": "user", "content": "bare q"}],
         "reward_model": {"style": "rule", "ground_truth": "x<|answer_split|>y"},
         "extra_info": {"split": "dev", "index": "tq_1"}}])
    rows = load_qa(p) + load_qa(p2)
    assert rows[0] == {"uid": "nq-test-test_0", "question": "who?", "golds": ["A", "a1"], "data_source": "nq",
                       "split": "test"}
    assert rows[1]["golds"] == ["x", "y"] and rows[1]["data_source"] == "triviaqa" and rows[1]["question"] == "bare q"
    j = tmp_path / "2wiki_500.jsonl"
    j.write_text(json.dumps({"idx": 1, "question": "q", "answer": "b"}) + "\n")
    assert load_qa(j)[0] == {"uid": "2wikimultihopqa-1", "question": "q", "golds": ["b"],
                             "data_source": "2wikimultihopqa", "split": ""}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n')
    with pytest.raises(InputError, match="bad.jsonl:1"):
        load_qa(bad)


def test_shared_search_r1_files(shared_data):
    files = shared_files(shared_data / "search_r1")
    if not files:
        pytest.skip("needs ../shared/data/search_r1")
    nq = load_qa(files["nq_test"])
    assert len(nq) == 3610 and len({r["uid"] for r in nq}) == 3610
    dev = load_qa(files["deepresearcher_dev"])
    assert {r["data_source"] for r in dev} == {"nq", "triviaqa", "popqa", "hotpotqa", "2wikimultihopqa", "musique",
                                               "bamboogle"}
    assert len(load_qa(files["bamboogle"])) == 125


def test_rollout_through_the_retrieval_server_matches_in_process(small_task):
    from siftkit.retrieval.remote import RemoteRetriever
    from siftkit.retrieval.server import BackgroundServer, create_app

    task, tok, bm25 = small_task
    row = task.heldout[0]
    q = f"capital of {row['entity']}"
    script = {row["question"]: [f"<search> {q} </search>", f"<answer> {row['golds'][0]} </answer>"]}
    items = [("a", row["question"], row["golds"])]
    cfg = RolloutConfig(max_turns=2, template=SHORT_TEMPLATE)
    local = rollout(ScriptedSampler(tok, script), tok, bm25, items, cfg)[0]
    with BackgroundServer(create_app(bm25)) as srv, RemoteRetriever(srv.url) as remote:
        remote_t = rollout(ScriptedSampler(tok, script), tok, remote, items, cfg)[0]
        import httpx

        bare = httpx.post(srv.url + "/retrieve", json={"queries": [q], "topk": 3}).json()  # no return_scores
    assert remote_t.response_text == local.response_text and remote_t.info_mask == local.info_mask
    assert render_information([d["contents"] for d in bare["result"][0]]) in local.response_text


def test_synthetic_task_heldout_entities_never_in_training():
    task = SyntheticTask.generate(seed=1, n_entities=30, n_values=10)
    train_ents = {r["entity"] for r in task.train}
    assert not train_ents & {r["entity"] for r in task.heldout}
    assert {r["hops"] for r in task.heldout} == {1, 2}
    assert all(r["golds"] == [task.capital[task.birthplace[r["entity"]]]] for r in task.heldout if r["hops"] == 2)
    assert len(task.corpus()) == 60 and len({r["uid"] for r in task.train + task.heldout}) == 30 * 2


def test_template_matches_upstream_nq_prompts_byte_for_byte(shared_data):
    from siftkit.core.io import read_parquet
    from siftkit.search_agent.rollout import make_prompt

    path = shared_data / "search_r1" / "search_r1_nq_test" / "test.parquet"
    if not path.exists():
        pytest.skip("needs ../shared/data/search_r1")
    rows = read_parquet(path)
    assert all(make_prompt(r["question"]) == r["prompt"][0]["content"] for r in rows)
