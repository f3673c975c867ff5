"""Regression tests for each failure listed in issue 24 (the input contract end to end).

The command-line cases run in one batch through the contract driver of ``test_contract`` (every case through
``main()`` in one driver process, model loads and run directories stopped): each must exit 2 with one ``siftkit:``
line naming the problem and leave its working folder (pre-existing output included) as it was.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siftkit.core.errors import InputError, RequestsFailed
from tests.core.test_contract import DEMO, FIXTURE_SESSIONS, Case, run_all

QA = "".join(json.dumps({"idx": i, "question": f"who is {i}", "answer": "x"}) + "\n" for i in range(2))
PAIRS = "".join(json.dumps({"query": "red shoe", "title": f"red shoe {i}", "label": "Exact"}) + "\n" for i in range(2))

# (name, argv with {w} = the case's folder, the text the one line must contain); each case's folder holds
# qa.jsonl, pairs.jsonl, out.json (pre-existing output) and runs/ (a run-directory root)
CLI_CASES = [
    ("search-agent eval --system unknown", ["search-agent", "eval", "--data", "{w}/qa.jsonl", "--system", "oracle",
                                            "--output", "{w}/out.json"], "--system: 'oracle' is not one of"),
    ("search-agent eval --system rag without a retriever", ["search-agent", "eval", "--data", "{w}/qa.jsonl",
                                                           "--system", "rag", "--output", "{w}/out.json"],
     "needs a retriever"),
    ("search-agent eval --hits 0", ["search-agent", "eval", "--data", "{w}/qa.jsonl", "--hits", "0"],
     "--hits: must be >= 1, got 0"),
    ("search-agent eval --max-new-tokens 0", ["search-agent", "eval", "--data", "{w}/qa.jsonl", "--max-new-tokens",
                                              "0"], "--max-new-tokens: must be >= 1, got 0"),
    ("search-agent eval --corpus bad, before the model", ["search-agent", "eval", "--data", "{w}/qa.jsonl",
                                                          "--corpus", "{w}/bom_empty.jsonl"], "file is empty"),
    ("search-agent eval --output a directory", ["search-agent", "eval", "--data", "{w}/qa.jsonl", "--output",
                                                "{w}/runs"], "--output is a directory"),
    ("search-agent train --algo unknown", ["search-agent", "train", "--algo", "dqn", "--output", "{w}/runs"],
     "--algo: 'dqn' is not one of grpo, ppo"),
    ("search-agent train --sft-trajs -1", ["search-agent", "train", "--sft-trajs", "-1", "--output", "{w}/runs"],
     "sft_trajs: must be >= 0"),
    ("check --kind unknown", ["check", str(DEMO / "queries.jsonl"), "--kind", "movie"],
     "--kind: 'movie' is not one of"),
    ("cascade run --taus abc", ["cascade", "run", "--taus", "abc", "--output", "{w}/runs"],
     "--taus: 'abc' is not a number"),
    ("cascade run --seeds 0", ["cascade", "run", "--seeds", "0", "--output", "{w}/runs"],
     "--seeds: must be >= 1, got 0"),
    ("cascade run --methods ''", ["cascade", "run", "--methods", "", "--output", "{w}/runs"],
     "--methods: needs at least one of"),
    ("cascade run --seeds abc (a click usage error)", ["cascade", "run", "--seeds", "abc"],
     "cascade run: --seeds: invalid value 'abc'"),
    ("relevance synth --n-pairs -5", ["relevance", "synth", "--output", "{w}/synth", "--n-pairs", "-5"],
     "--n-pairs: must be >= 1, got -5"),
    ("relevance synth --noise-rate 2", ["relevance", "synth", "--output", "{w}/synth", "--noise-rate", "2"],
     "--noise-rate: must be in [0, 1], got 2.0"),
    ("relevance synth --output an existing file", ["relevance", "synth", "--output", "{w}/out.json"],
     "--output is a file; give a folder"),
    ("relevance dpo reads --train before the model", ["relevance", "dpo", "--train", "{w}/bad.jsonl", "--model",
                                                      "smollm2", "--output", "{w}/dpo"], "not valid UTF-8"),
    ("relevance eval --scale unknown, before the model", ["relevance", "eval", "--input", "{w}/pairs.jsonl",
                                                          "--scale", "ten"], "--scale: 'ten' is not one of"),
    ("quickstart --only unknown", ["quickstart", "--only", "nosuchstep", "--output", "{w}/runs", "--skip-doctor"],
     "'nosuchstep'"),
    ("usefulness eval --labels matching no id", ["usefulness", "eval", "--input", str(FIXTURE_SESSIONS),
                                                 "--labels", "{w}/labels_other.json", "--output", "{w}/out.json"],
     "no id in common with"),
    ("eval --output a directory (no stray .tmp)", ["eval", "--qrels", str(DEMO / "qrels.txt"), "--run",
                                                   str(DEMO / "run_good.trec"), "--output", "{w}/runs"],
     "--output is a directory"),
    ("eval with a 5 MB qrels value", ["eval", "--qrels", "{w}/huge.qrels", "--run", str(DEMO / "run_good.trec")],
     'field "label" must be integer'),
    ("serve retrieval --corpus non-UTF-8", ["serve", "retrieval", "--corpus", "{w}/bad.jsonl"],
     "not valid UTF-8 (byte 0xff at column 9)"),
    ("serve retrieval --retriever unknown", ["serve", "retrieval", "--corpus", str(DEMO / "corpus.jsonl"),
                                             "--retriever", "splade"], "--retriever: 'splade' is not one of"),
    ("a missing option (click usage error)", ["relevance", "judge", "--output", "{w}/out.json"],
     "relevance judge: --input: Missing option '--input'"),
    ("usefulness label --endpoint without http://", ["usefulness", "label", "--input", str(FIXTURE_SESSIONS),
                                                     "--output", "{w}/out.json", "--endpoint", "localhost:8000"],
     "--endpoint: 'localhost:8000' is not an http:// or https:// URL"),
    ("usefulness label --device unknown, before the model", ["usefulness", "label", "--input", str(FIXTURE_SESSIONS),
                                                             "--output", "{w}/out.json", "--device", "gpu"],
     "--device: 'gpu' is not a device"),
    ("bias run --endpoint not a URL", ["bias", "run", "--model", "m", "--endpoint", "zzz", "--output", "{w}/runs"],
     "--endpoint: 'zzz' is not an http"),
    ("search-agent eval --retriever-url not a URL, before the model", ["search-agent", "eval", "--data",
                                                                       "{w}/qa.jsonl", "--retriever-url", "x:y"],
     "--retriever-url: 'x:y' is not"),
    ("relevance sft --teacher-endpoint not a URL", ["relevance", "sft", "--train", "{w}/pairs.jsonl", "--output",
                                                    "{w}/sft", "--cot", "--teacher", "llm", "--teacher-endpoint",
                                                    "ftp://h"], "--teacher-endpoint: 'ftp://h' is not an http"),
    ("an unknown option (click usage error)", ["check", str(DEMO / "queries.jsonl"), "--kindd", "item"],
     "check: No such option: --kindd"),
]


def make_case(root: Path, i: int, name: str, argv: list[str], needle: str) -> Case:
    w = root / str(i)
    w.mkdir(parents=True)
    (w / "qa.jsonl").write_text(QA)
    (w / "pairs.jsonl").write_text(PAIRS)
    (w / "out.json").write_text('{"keep": true}\n')
    (w / "runs").mkdir()
    (w / "bad.jsonl").write_bytes(b'{"id": "\xff"}\n')
    (w / "bom_empty.jsonl").write_bytes(b"\xef\xbb\xbf\n\n")
    (w / "labels_other.json").write_text(json.dumps({"no-such-id": 1}))
    (w / "huge.qrels").write_text("q1 0 d1 " + "7" * 5_000_000 + "x\n")
    return Case(name, name, [a.replace("{w}", str(w)) for a in argv], w, names=needle)


def test_each_listed_cli_failure_is_one_line_exit_2_and_leaves_everything(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cases = [make_case(tmp_path / "cases", i, *c) for i, c in enumerate(CLI_CASES)]
    bad = run_all(cases, home)
    assert not bad, "\n".join(bad)


def test_usefulness_label_against_an_unreachable_endpoint_keeps_the_labels_file(tmp_path, monkeypatch):
    """All requests fail: exit 1, how many failed is said, the existing labels file is untouched."""
    from typer.testing import CliRunner

    import siftkit.usefulness.run as run
    from siftkit.llm.cache import CachedChatModel, ResponseCache
    from siftkit.llm.openai_client import OpenAIChatModel
    from siftkit.usefulness.plugin import app

    def unreachable(model, endpoint=None, *a, **k):  # a closed port, no retries: fails in milliseconds
        return CachedChatModel(OpenAIChatModel(endpoint, model, max_retries=0, backoff=0, timeout=2),
                               ResponseCache(None, enabled=False))

    monkeypatch.setattr(run, "make_model", unreachable)
    out = tmp_path / "labels.json"
    out.write_text('{"s1-1": 2}\n')
    res = CliRunner().invoke(app, ["label", "--input", str(FIXTURE_SESSIONS), "--output", str(out), "--endpoint",
                                   "http://127.0.0.1:9/v1", "--model", "m", "--mode", "baseline"])
    assert res.exit_code == 1 and isinstance(res.exception, RequestsFailed), res.output
    line = res.exception.format()
    n_clicks = sum(1 for x in FIXTURE_SESSIONS.read_text().splitlines() if x.strip())  # baseline: a call per click
    assert line.startswith(f"siftkit: {n_clicks} of {n_clicks} request(s) failed after retries; nothing was written "
                           f"({out} left as it was)")
    assert out.read_text() == '{"s1-1": 2}\n' and not out.with_suffix(".meta.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.json"]  # no .tmp left


def test_failed_teacher_requests_never_become_training_rationales():
    from siftkit.llm.base import Generation
    from siftkit.relevance.lref import llm_rationales

    class Teacher:  # the endpoint gave up on the second prompt
        def generate(self, prompts, params=None):
            return [Generation(["fine"], ["stop"]), Generation([""], ["error"]), Generation(["ok"], ["length"])]

    rows = [("red shoe", "red shoe", "Exact", None)] * 3
    with pytest.raises(RequestsFailed) as e:
        llm_rationales(Teacher(), "EE", rows)
    assert e.value.format().startswith("siftkit: 1 of 3 teacher rationale(s) failed after retries")
    assert e.value.exit_code == 1


def test_main_prints_requests_failed_as_one_line_exit_1(tmp_path):
    import subprocess
    import sys

    code = ("import siftkit.cli as c, typer\n"
            "from siftkit.core.errors import RequestsFailed\n"
            "@c.app.command('boom')\n"
            "def boom():\n    raise RequestsFailed(2, 5, detail='out.json left as it was', cached=False)\n"
            "import sys; sys.argv = ['siftkit', 'boom']; c.main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "siftkit: 2 of 5 request(s) failed after retries; nothing was written (out.json left as it was); without a "
        "cache a rerun sends them all again"], res.stderr


@pytest.mark.parametrize("content, needle", [
    (b"", "file is empty"),
    (b"\xef\xbb\xbf   \n", "file is empty"),
    (b'{"id": "d1", "contents": "ok"}\n{"id": "d2", "contents": "\xe9t\xe9"}\n', "d.jsonl:2: not valid UTF-8"),
    (b'{"id": "d1", "contents": "trunc', "invalid JSON"),
])
def test_corpus_reader_holds_the_core_checks(tmp_path, content, needle):
    from siftkit.retrieval.corpus import Corpus

    p = tmp_path / "d.jsonl"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        Corpus.from_jsonl(p)
    assert needle in e.value.format()


def test_bom_prefixed_corpus_and_qa_files_read(tmp_path):
    from siftkit.retrieval.corpus import Corpus
    from siftkit.search_agent.data import load_qa

    c = tmp_path / "c.jsonl"
    c.write_bytes(b"\xef\xbb\xbf" + (DEMO / "corpus.jsonl").read_bytes())
    assert Corpus.from_jsonl(c).ids[:2] == ["d1", "d2"]
    q = tmp_path / "bamboogle.jsonl"
    q.write_bytes(b"\xef\xbb\xbf" + QA.encode())
    assert [r["question"] for r in load_qa(q)] == ["who is 0", "who is 1"]


@pytest.mark.parametrize("content, needle", [
    (b"\xff\n", "qa.jsonl:1: not valid UTF-8"),
    (b"\n", "file is empty"),
    (b'{"idx": 1, "question": "q", "answer": "a"}\n{"idx": 2, "quest', "truncated JSON"),
    (b'{"reward_model": {}, "question": "q"}\n', "qa.jsonl:1: malformed QA record (KeyError"),
])
def test_qa_reader_holds_the_core_checks(tmp_path, content, needle):
    from siftkit.search_agent.data import load_qa

    p = tmp_path / "qa.jsonl"
    p.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_qa(p)
    assert needle in e.value.format()


def test_demo_corpus_passes_check_kind_item():
    from siftkit.core.io import read_records

    items = read_records(DEMO / "corpus.jsonl", "item")
    assert len(items) == 12 and items[0].docno == "d1" and items[0].text.startswith('"Espresso"')


def test_huge_qrels_value_is_cut(tmp_path):
    from siftkit.core.io import read_qrels

    p = tmp_path / "q.txt"
    p.write_text("q1 0 d1 " + "7" * 5_000_000 + "x\n")
    with pytest.raises(InputError) as e:
        read_qrels(p)
    assert len(e.value.format()) < len(str(p)) + 200


@pytest.mark.parametrize("make", [
    lambda: __import__("siftkit.search_agent.config", fromlist=["x"]).SearchR1Config(algo="dqn"),
    lambda: __import__("siftkit.search_agent.rollout", fromlist=["x"]).RolloutConfig(topk=0),
    lambda: __import__("siftkit.search_agent.demo", fromlist=["x"]).SyntheticRunConfig(algo="dqn"),
    lambda: __import__("siftkit.cascade.loss", fromlist=["x"]).LcronConfig(tau=0),
    lambda: __import__("siftkit.cascade.simulator", fromlist=["x"]).SimConfig(n_stages=4),
    lambda: __import__("siftkit.cascade.train", fromlist=["x"]).TrainConfig(method="nope"),
    lambda: __import__("siftkit.relevance.config", fromlist=["x"]).LrefConfig(beta=0),
    lambda: __import__("siftkit.usefulness.config", fromlist=["x"]).UsefulnessConfig(mode="nope"),
    lambda: __import__("siftkit.retrieval.server", fromlist=["x"]).ServerConfig(topk=0),
    lambda: __import__("siftkit.llm.plugin", fromlist=["x"]).ServeLLMConfig(port=70000),
    lambda: __import__("siftkit.llm.finetune", fromlist=["x"]).FinetuneConfig(steps=0),
])
def test_every_config_class_raises_input_error(make):
    with pytest.raises(InputError):
        make()
