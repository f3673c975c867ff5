"""`siftkit serve retrieval` registers lazily and checks its arguments before loading anything heavy."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from siftkit.core.errors import ConfigError, InputError
from siftkit.core.plugins import Registry


def _app():
    app, serve = typer.Typer(), typer.Typer()
    app.add_typer(serve, name="serve")
    from siftkit.retrieval import plugin

    plugin.register(Registry(app=app, serve=serve))
    return app


def test_help_lists_the_options():
    r = CliRunner().invoke(_app(), ["serve", "retrieval", "--help"])
    assert r.exit_code == 0
    for opt in ("--index", "--corpus", "--retriever", "--host", "--port", "--api-key"):
        assert opt in r.output


def test_needs_exactly_one_source(corpus_path, tmp_path):
    r = CliRunner().invoke(_app(), ["serve", "retrieval"])
    assert isinstance(r.exception, InputError)
    r = CliRunner().invoke(_app(), ["serve", "retrieval", "--corpus", str(corpus_path), "--index", str(tmp_path)])
    assert isinstance(r.exception, InputError)


def test_public_host_without_key_refused(corpus_path):
    r = CliRunner().invoke(_app(), ["serve", "retrieval", "--corpus", str(corpus_path), "--host", "0.0.0.0"],
                           env={"SIFTKIT_RETRIEVAL_API_KEY": ""})
    assert isinstance(r.exception, ConfigError)


def test_plugin_module_imports_no_engines():
    import subprocess
    import sys

    code = ("import sys, siftkit.retrieval.plugin, siftkit.retrieval; "
            "print(sorted(m for m in ('bm25s', 'faiss', 'fastapi', 'uvicorn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_smoke_serves_a_corpus(corpus_path, tmp_path):
    """`siftkit serve retrieval --corpus ... --save-index ...` answers /retrieve; the saved index serves the same."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def serve(*args):
        port = free_port()
        cmd = [sys.executable, "-c", "import sys; from siftkit.cli import main; sys.argv[0] = 'siftkit'; main()",
               "serve", "retrieval", "--port", str(port), *args]
        env = {**os.environ, "PYTHONPATH": os.getcwd()}
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), port

    def ask(proc, port):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/retrieve", json={"queries": ["honey bees"], "topk": 1})
                return r.json()
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("server did not start")

    results = []
    index = str(tmp_path / "idx")
    for args in (["--corpus", str(corpus_path), "--save-index", index], ["--index", index]):
        proc, port = serve(*args)
        try:
            results.append(ask(proc, port))
        finally:
            proc.terminate()
            proc.wait(10)
    assert results[0] == results[1]
    assert results[0]["result"][0][0]["id"] == "d8"
