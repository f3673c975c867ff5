"""`siftkit serve llm` registers lazily, refuses unsafe binds before loading a model, and serves the tiny Llama."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from siftkit.core.errors import InputError
from siftkit.core.plugins import Registry


def _app():
    app, serve = typer.Typer(), typer.Typer()
    app.add_typer(serve, name="serve")
    from siftkit.llm import plugin

    plugin.register(Registry(app=app, serve=serve))
    return app


def test_help_lists_the_options():
    r = CliRunner().invoke(_app(), ["serve", "llm", "--help"])
    assert r.exit_code == 0
    for opt in ("--model", "--host", "--port", "--api-key-env", "--name"):
        assert opt in r.output


def test_public_host_without_key_refused():
    r = CliRunner().invoke(_app(), ["serve", "llm", "--model", "/does/not/exist", "--host", "0.0.0.0"])
    assert isinstance(r.exception, InputError)
    assert "API key" in str(r.exception)


def test_key_env_must_be_set():
    r = CliRunner().invoke(_app(), ["serve", "llm", "--api-key-env", "SIFTKIT_NO_SUCH_VAR"],
                           env={"SIFTKIT_NO_SUCH_VAR": ""})
    assert isinstance(r.exception, InputError)
    assert "SIFTKIT_NO_SUCH_VAR" in str(r.exception)


def test_plugin_module_imports_no_engines():
    import subprocess
    import sys

    code = ("import sys, siftkit.llm.plugin; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'torch', 'transformers', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_smoke_serves_tiny_llama(tiny_llama_path):
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-c", "import sys; from siftkit.cli import main; sys.argv[0] = 'siftkit'; main()",
           "serve", "llm", "--model", str(tiny_llama_path), "--name", "tiny", "--port", str(port),
           "--api-key-env", "SIFTKIT_TEST_LLM_KEY"]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "SIFTKIT_TEST_LLM_KEY": "k3y"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer k3y"}
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                models = httpx.get(f"{url}/v1/models", headers=auth).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert "tiny" in [m["id"] for m in models["data"]]
        body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0}
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 401
        r = httpx.post(f"{url}/v1/chat/completions", json=body, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["choices"][0]["message"]["content"], str)
    finally:
        proc.terminate()
        proc.wait(10)
