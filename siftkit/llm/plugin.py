"""CLI: ``siftkit serve llm`` — a local chat model behind an OpenAI-compatible API (see :mod:`siftkit.llm.server`).

Heavy modules (torch, transformers, fastapi, uvicorn) load only when the command runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Optional

import typer

from siftkit.llm.factory import INFERENCE_ENGINE


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
            so it stays out of shell history and process lists. A blank key is refused.
        max_prompt_tokens: a longer prompt (chat template included) is answered 400 before the model runs
            [ours: a 750 KB prompt held the only worker for over a minute].
        request_timeout: seconds until a request is answered 504, waiting for the model included [ours].
        engine: ``ct2`` (CTranslate2, the default, see docs/core/ct2.md) or ``torch`` (transformers, fp32).
        compute_type: the ``ct2`` engine's quantisation (``int8``, ``float32``, ...).
    """

    model: str = "smollm2"
    name: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key_env: Optional[str] = None
    max_prompt_tokens: int = 8192
    request_timeout: float = 300.0
    engine: str = INFERENCE_ENGINE
    compute_type: str = "int8"

    def __post_init__(self):
        from siftkit.core.validate import check_range

        check_range(self.port, "--port", lo=0, hi=65535)
        check_range(self.max_prompt_tokens, "--max-prompt-tokens", lo=1)
        check_range(self.request_timeout, "--request-timeout", lo=0, lo_open=True)


_D = ServeLLMConfig()


def serve_llm(
    model: Annotated[str, typer.Option("--model", help='"smollm2", a model folder or a .gguf file.')] = _D.model,
    name: Annotated[Optional[str], typer.Option("--name", help="Served model name (default: --model).")] = _D.name,
    host: Annotated[str, typer.Option("--host", help="Bind address; non-loopback needs --api-key-env.")] = _D.host,
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = _D.port,
    api_key_env: Annotated[Optional[str], typer.Option(
        "--api-key-env", help="Environment variable that holds the API key clients must send.")] = _D.api_key_env,
    max_prompt_tokens: Annotated[int, typer.Option(
        "--max-prompt-tokens", help="Longer prompts are refused with 400.")] = _D.max_prompt_tokens,
    request_timeout: Annotated[float, typer.Option(
        "--request-timeout", help="Seconds until a request is answered 504.")] = _D.request_timeout,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: ct2 (CTranslate2) | torch.")] = _D.engine,
    compute_type: Annotated[str, typer.Option("--compute-type", help="ct2 quantisation: int8, float32, ...")]
    = _D.compute_type,
) -> None:
    """Serve a local chat model at /v1/chat/completions and /v1/completions (streaming, logprobs, echo) and /v1/models.

    Example:
        siftkit serve llm --model smollm2 --port 8000 --engine ct2
    """
    from siftkit.core.errors import InputError
    from siftkit.core.serving import check_api_key, check_bind
    from siftkit.llm.factory import check_engine

    check_engine(engine, compute_type)
    config = ServeLLMConfig(model=model, name=name, host=host, port=port, api_key_env=api_key_env,
                            max_prompt_tokens=max_prompt_tokens, request_timeout=request_timeout,
                            engine=engine, compute_type=compute_type)
    api_key = None
    if config.api_key_env:
        api_key = os.environ.get(config.api_key_env) or None
        if api_key is None:
            raise InputError(f"environment variable {config.api_key_env} is unset or empty", field="--api-key-env")
        check_api_key(api_key, field="--api-key-env")
    check_bind(config.host, api_key)  # before the slow model load

    from siftkit.llm.factory import make_local_model
    from siftkit.llm.server import serve

    llm = make_local_model(config.model, config.engine, threads=None, compute_type=config.compute_type)
    serve({config.name or config.model: llm, llm.model_id: llm}, config.host, config.port, api_key,
          max_prompt_tokens=config.max_prompt_tokens, request_timeout=config.request_timeout)


def register(registry) -> None:
    """Add ``siftkit serve llm`` and the embedded-LLM quickstart step."""
    registry.serve.command("llm")(serve_llm)

    def _step(ctx):
        from siftkit.llm.quickstart import quickstart_step

        return quickstart_step(ctx)

    registry.add_quickstart_step("llm", _step, order=5)
