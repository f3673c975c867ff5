"""Shared fixtures: a small synthetic task, its word tokenizer and BM25, and a scripted sampler."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_task():
    from siftkit.retrieval.bm25 import BM25Retriever
    from siftkit.search_agent.synthetic import SyntheticTask, task_tokenizer

    task = SyntheticTask.generate(seed=0, n_entities=30, n_values=10)
    return task, task_tokenizer(task), BM25Retriever(task.corpus(), stemmer=None)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "m")
