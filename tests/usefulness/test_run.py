"""Runner: read-outs over a scripted chat model, retries, the cache, and CLI smoke runs."""

import json
import re

from typer.testing import CliRunner

from siftkit.llm.base import Generation, GenerationParams, Score
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.usefulness import plugin
from siftkit.usefulness.config import UsefulnessConfig
from siftkit.usefulness.data import write_sessions_jsonl
from siftkit.usefulness.run import label_clicks, sample_sessions, stratified_rows

from .conftest import make_click


def ids_in(prompt):
    return re.findall(r'"id": "([^"]+)"', prompt[-1]["content"])


class Scripted:
    """Answers with ``reply(ids, max_new_tokens)``; ``score`` prefers label ``best[id]`` (default 2)."""

    model_id, fingerprint = "scripted", "scripted-v1"

    def __init__(self, reply=None, best=None):
        self.reply = reply or (lambda ids, n: json.dumps({i: 2 for i in ids}))
        self.best = best or {}
        self.prompts, self.budgets, self.scored = [], [], 0

    def generate(self, prompts, params=None):
        params = params or GenerationParams()
        out = []
        for p in prompts:
            self.prompts.append(p)
            self.budgets.append(params.max_new_tokens)
            text, reason = self.reply(ids_in(p), params.max_new_tokens)
            out.append(Generation(texts=[text], finish_reasons=[reason]))
        return out

    def score(self, prompts, continuations):
        self.scored += len(prompts)
        out = []
        for c in continuations:
            i, label = re.findall(r'"([^"]+)": (\d)$', c)[0]
            out.append(Score(logprob=0.0 if int(label) == self.best.get(i, 2) else -1.0 - int(label)))
        return out


def test_generate_session_mode_one_call_per_session(clicks):
    m = Scripted(reply=lambda ids, n: (json.dumps({i: 3 for i in ids}), "stop"))
    res = label_clicks(m, clicks, UsefulnessConfig(mode="session"))
    assert res.scores == {"c1": 3, "c2": 3, "c3": 3} and res.calls == 1 and len(m.prompts) == 1
    assert m.budgets == [16 + 12 * 3]


def test_truncated_output_is_retried_with_a_larger_budget(clicks):
    def reply(ids, n):  # cut off unless the budget is at least twice the first one
        full = json.dumps({i: 1 for i in ids})
        return (full, "stop") if n >= 2 * (16 + 12 * 3) else (full[:12], "length")

    m = Scripted(reply=reply)
    res = label_clicks(m, clicks, UsefulnessConfig(mode="session"))
    assert res.scores == {"c1": 1, "c2": 1, "c3": 1} and m.budgets == [52, 104]


def test_retries_give_up_and_report_missing(clicks):
    m = Scripted(reply=lambda ids, n: ('{"c1": 0, "c2": 9', "length"))
    res = label_clicks(m, clicks, UsefulnessConfig(mode="session", max_retries=1))
    assert res.scores == {"c1": 0} and res.invalid == {"c2": 9} and res.missing == ["c3"]
    assert len(m.budgets) == 2 and res.summary()["recovered_calls"] == 1


def test_baseline_mode_one_call_per_click(clicks):
    m = Scripted(reply=lambda ids, n: (f"Sure! {{\"{ids[0]}\": 0}}", "stop"))
    res = label_clicks(m, clicks, UsefulnessConfig(mode="baseline"))
    assert res.scores == {"c1": 0, "c2": 0, "c3": 0} and res.calls == 3


def test_logprob_readout_picks_the_most_likely_label(clicks):
    m = Scripted(best={"c1": 3, "c2": 0, "c3": 1})
    for mode in ("baseline", "session"):
        res = label_clicks(m, clicks, UsefulnessConfig(mode=mode, readout="logprob"))
        assert res.scores == {"c1": 3, "c2": 0, "c3": 1} and not res.missing
    assert m.scored == 2 * 3 * 4  # 4 labels per click, per mode


def test_cache_makes_a_rerun_query_nothing(tmp_path, clicks):
    inner = Scripted(reply=lambda ids, n: (json.dumps({i: 2 for i in ids}), "stop"))
    cache = ResponseCache(tmp_path / "c.sqlite")
    cfg = UsefulnessConfig(mode="baseline")
    first = label_clicks(CachedChatModel(inner, cache), clicks, cfg)
    again = label_clicks(CachedChatModel(inner, cache), clicks, cfg)
    assert first.scores == again.scores and len(inner.prompts) == 3 and cache.stats()["hits"] == 3


def test_samples_are_stratified_and_seeded():
    clicks = [make_click(i, usefulness=u, query_relevance=q, task_id=f"t{i % 7}")
              for i, (u, q) in enumerate([(u, q) for u in range(4) for q in range(4)] * 5)]
    rows = stratified_rows(clicks, per_group=3, seed=0)
    assert len(rows) == 4 * 3 and rows == stratified_rows(clicks, per_group=3, seed=0)
    sess = sample_sessions(clicks, n=2, seed=0)
    assert len({c.session for c in sess}) == 2


def test_cli_label_and_eval(tmp_path, clicks, monkeypatch):
    import siftkit.usefulness.run as run

    monkeypatch.setattr(run, "make_model", lambda *a, **k: CachedChatModel(
        Scripted(reply=lambda ids, n: (json.dumps({i: 2 for i in ids}), "stop"))))
    data = tmp_path / "s.jsonl"
    write_sessions_jsonl(data, clicks)
    out = tmp_path / "labels.json"
    r = CliRunner().invoke(plugin.app, ["label", "--input", str(data), "--output", str(out), "--mode", "session"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text()) == {"c1": 2, "c2": 2, "c3": 2}
    assert json.loads(out.with_suffix(".meta.json").read_text())["summary"]["valid"] == 3
    metrics = tmp_path / "m.json"
    r = CliRunner().invoke(plugin.app, ["eval", "--input", str(data), "--labels", str(out), "--resamples", "50",
                                        "--output", str(metrics)])
    assert r.exit_code == 0, r.output
    assert json.loads(metrics.read_text())[0]["accuracy"] == 1 / 3  # gold 2, 0, 3


def test_cli_published(shared_data, tmp_path):
    out = tmp_path / "pub.md"
    r = CliRunner().invoke(plugin.app, ["published", "--resamples", "20", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "9 OK, 0 FAIL, 2 n/a" in r.output and "| Llama-3.3-70B | session |" in out.read_text()


def test_quickstart_step_on_fixture_sessions(tmp_path, monkeypatch):
    import siftkit.usefulness.run as run
    from siftkit.core.report import StepContext

    monkeypatch.setattr(run, "make_model", lambda *a, **k: CachedChatModel(Scripted(best={})))
    sec = plugin.quickstart_step(StepContext(run_dir=tmp_path))
    assert sec.status == "ok" and sec.metrics["valid"] == 9 and sec.metrics["missing"] == 0
    assert sec.metrics["accuracy"] == 2 / 9  # every label 2; two fixture clicks (s2-4, s3-1) have gold 2
    assert json.loads((tmp_path / "usefulness" / "labels.json").read_text())["s2-4"] == 2


def test_planned_requests_are_what_label_clicks_sends(tmp_path, clicks):
    from siftkit.usefulness.run import plan_requests

    cfg = UsefulnessConfig(mode="baseline")
    inner = Scripted(reply=lambda ids, n: (json.dumps({i: 1 for i in ids}), "stop"))
    model = CachedChatModel(inner, ResponseCache(tmp_path / "c.sqlite"))
    for params, prompts in plan_requests(clicks, cfg).items():  # what run_batch would send, filling the cache
        model.generate(prompts, params)
    sent = len(inner.prompts)
    assert sent == 3 and label_clicks(model, clicks, cfg).scores == {"c1": 1, "c2": 1, "c3": 1}
    assert len(inner.prompts) == sent  # every answer came from the cache


def test_through_a_stub_openai_server(tmp_path, clicks):
    """End to end over HTTP: a canned server replies with fenced, truncated and out-of-range JSON."""
    from siftkit.llm.openai_client import OpenAIChatModel
    from siftkit.llm.server import create_app, start_background

    canned = {"c1": '```json\n{"c1": 3}\n```', "c2": '{"c2": 7}', "c3": 'Scores: {"c3": 1, "c4'}
    stub = Scripted(reply=lambda ids, n: (canned[ids[0]], "stop"))
    url, stop = start_background(create_app({"stub": stub}))
    try:
        model = CachedChatModel(OpenAIChatModel(url, "stub", max_in_flight=4), ResponseCache(tmp_path / "c.sqlite"))
        res = label_clicks(model, clicks, UsefulnessConfig(mode="baseline"))
        again = label_clicks(model, clicks, UsefulnessConfig(mode="baseline"))
    finally:
        stop()
    assert res.scores == {"c1": 3, "c3": 1} and res.invalid == {"c2": 7} and res.recovered_calls == 1
    assert again.scores == res.scores and len(stub.prompts) == 3  # the rerun came from the cache
