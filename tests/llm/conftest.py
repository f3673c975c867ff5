"""Shared fixtures for the LLM layer tests: everything offline, on CPU, with a tiny random Llama."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in these tests may download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory):
    """A tiny random-init Llama folder (built once per session by :func:`siftkit.llm.testing.make_tiny_llama`)."""
    import torch

    from siftkit.llm.testing import make_tiny_llama

    torch.set_num_threads(min(2, torch.get_num_threads()))
    return make_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama")


@pytest.fixture
def llm_server():
    """Start ``siftkit.llm.server.create_app(models, api_key)`` (or any ASGI app) on a free loopback port.

    Call ``llm_server(models_or_app, api_key=None) -> base_url``; every server started is stopped at teardown.
    """
    from siftkit.llm.server import create_app, start_background

    stops = []

    def start(models_or_app, api_key: str | None = None) -> str:
        app = create_app(models_or_app, api_key) if isinstance(models_or_app, dict) else models_or_app
        url, stop = start_background(app)
        stops.append(stop)
        return url

    yield start
    for stop in stops:
        stop()


@pytest.fixture(scope="session")
def tiny_chat_model(tiny_llama_path):
    """A :class:`~siftkit.llm.local.LocalChatModel` over the tiny Llama, loaded once; do not train it in place."""
    from siftkit.llm.local import LocalChatModel

    return LocalChatModel.from_pretrained(tiny_llama_path, model_id="tiny-llama")


@pytest.fixture
def tiny_chat_model_copy(tiny_chat_model):
    """A deep copy of :func:`tiny_chat_model` that a test may train or wrap."""
    import copy

    return copy.deepcopy(tiny_chat_model)
