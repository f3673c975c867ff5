"""The package re-exports its public functions, and every docstring example runs."""

import doctest
import importlib

import pytest

import siftkit.metrics

MODULES = ["siftkit.metrics", *(f"siftkit.metrics.{m}" for m in ("ir", "agreement", "text", "concentration", "stats"))]


def test_reexports():
    for name in siftkit.metrics.__all__:
        assert callable(getattr(siftkit.metrics, name)), name


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
