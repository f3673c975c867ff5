"""Fixtures for the LREF tests: a tiny random Llama (built once) loaded fresh per test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "tiny-llama")


@pytest.fixture
def tiny_llm(tiny_llama_path):
    from siftkit.llm.local import LocalChatModel

    return LocalChatModel.from_pretrained(tiny_llama_path, batch_size=4)
