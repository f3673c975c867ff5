"""CLI: ``siftkit serve llm`` — a local chat model behind an OpenAI-compatible API (see :mod:`siftkit.llm.server`).

Heavy modules (torch, transformers, fastapi, uvicorn) load only when the command runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Optional

import typer


@dataclass
class ServeLLMConfig:
    """Settings of ``siftkit serve llm``.

    Attributes:
        model: ``"smollm2"`` (the embedded SmolLM2-135M-Instruct), a model folder, or a ``.gguf`` file.
        name: the name clients put in the ``model`` field (default: ``model`` as given); the model's own
            ``model_id`` is served too.
        host: bind address [ours: loopback]; any other address needs an API key.
        port: TCP port.
        api_key_env: name of the environment variable holding the API key; clients then send
            ``Authorization: Bearer <key>``. The key is read from the environment, never from the command line,
            so it stays out of shell history and process lists.
        engine: ``torch`` (transformers, fp32) or ``ct2`` (CTranslate2, see docs/core/ct2.md).
        compute_type: the ``ct2`` engine's quantisation (``int8``, ``float32``, ...).
    """

    model: str = "smollm2"
    name: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: Optional[str] = None
    engine: str = "torch"
    compute_type: str = "int8"

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}")


_D = ServeLLMConfig()


def serve_llm(
    model: Annotated[str, typer.Option("--model", help='"smollm2", a model folder or a .gguf file.')] = _D.model,
    name: Annotated[Optional[str], typer.Option("--name", help="Served model name (default: --model).")] = _D.name,
    host: Annotated[str, typer.Option("--host", help="Bind address; non-loopback needs --api-key-env.")] = _D.host,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = _D.port,
    api_key_env: Annotated[Optional[str], typer.Option(
        "--api-key-env", help="Environment variable that holds the API key clients must send.")] = _D.api_key_env,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2 (CTranslate2).")] = _D.engine,
    compute_type: Annotated[str, typer.Option("--compute-type", help="ct2 quantisation: int8, float32, ...")]
    = _D.compute_type,
) -> None:
    """Serve a local chat model at /v1/chat/completions, /v1/completions (echo + logprobs) and /v1/models.

    Example:
        siftkit serve llm --model smollm2 --port 8000 --engine ct2
    """
    from siftkit.core.errors import InputError
    from siftkit.llm.factory import check_engine

    check_engine(engine, compute_type)

    try:
        config = ServeLLMConfig(model=model, name=name, host=host, port=port, api_key_env=api_key_env,
                                engine=engine, compute_type=compute_type)
    except ValueError as e:
        raise InputError(str(e), field="port") from None
    api_key = None
    if config.api_key_env:
        api_key = os.environ.get(config.api_key_env) or None
        if api_key is None:
            raise InputError(f"environment variable {config.api_key_env} is unset or empty", field="api-key-env")

    from siftkit.llm.server import check_bind, serve

    try:
        check_bind(config.host, api_key)  # before the slow model load
    except ValueError as e:
        raise InputError(str(e), field="host") from None
    from siftkit.llm.factory import make_local_model

    llm = make_local_model(config.model, config.engine, threads=None, compute_type=config.compute_type)
    serve({config.name or config.model: llm, llm.model_id: llm}, config.host, config.port, api_key)


def register(registry) -> None:
    """Add ``siftkit serve llm`` and the embedded-LLM quickstart step."""
    registry.serve.command("llm")(serve_llm)

    def _step(ctx):
        from siftkit.llm.quickstart import quickstart_step

        return quickstart_step(ctx)

    registry.add_quickstart_step("llm", _step, order=5)
