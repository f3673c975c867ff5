"""Suite-wide settings: offline, few threads, and a count of tests skipped for missing ../shared data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    pass

MISSING_SHARED = "needs ../shared/data"


@pytest.fixture(scope="session")
def shared_data():
    """The ../shared/data folder; tests that need it skip cleanly without it."""
    from siftkit.core.assets import shared_data_dir

    d = shared_data_dir()
    if d is None:
        pytest.skip(f"{MISSING_SHARED} (not found)")
    return d


def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get("skipped", [])
    n = sum(1 for r in skipped if MISSING_SHARED in str(getattr(r, "longrepr", "")))
    terminalreporter.write_line(f"siftkit: {n} test(s) skipped for missing ../shared data")
