"""Issue 24 for ``siftkit bias run``: a run whose requests failed writes nothing, exits 1 and says how many failed."""

import typer
from typer.testing import CliRunner

from siftkit.core.errors import RequestsFailed
from siftkit.core.plugins import Registry, discover


def test_bias_run_against_an_unreachable_endpoint_keeps_the_output(tmp_path, monkeypatch):
    import siftkit.bias.runner as runner
    from siftkit.llm.openai_client import OpenAIChatModel

    def unreachable(name, asset_class, endpoint=None, *a, **k):  # a closed port, no retries: fails at once
        return lambda: OpenAIChatModel(endpoint, name, max_retries=0, backoff=0, timeout=2)

    monkeypatch.setattr(runner, "model_factory", unreachable)
    app = discover(Registry(app=typer.Typer(), serve=typer.Typer())).app
    out = tmp_path / "run"
    out.mkdir()
    (out / "responses.jsonl").write_text('{"keep": true}\n')
    res = CliRunner().invoke(app, ["bias", "run", "--model", "m", "--endpoint", "http://127.0.0.1:9/v1", "--pairs",
                                   "1", "--samples", "1", "--debias", "none", "--output", str(out), "--cache",
                                   str(tmp_path / "cache.sqlite")])
    assert res.exit_code == 1 and isinstance(res.exception, RequestsFailed), res.output
    e = res.exception
    assert e.failed == e.total >= 1 and f"{out} left as it was" in e.format()  # every request failed, all counted
    assert (out / "responses.jsonl").read_text() == '{"keep": true}\n' and not (out / "run.json").exists()
