"""Seeding helpers. Library code takes a seed or a generator explicitly; only entry points call :func:`seed_all`."""

from __future__ import annotations

import os
import random

import numpy as np


def rng(seed: int) -> np.random.Generator:
    """A NumPy generator for ``seed`` (preferred over global state)."""
    return np.random.default_rng(seed)


def torch_generator(seed: int):
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def derive_seed(seed: int, *names: str | int) -> int:
    """A stable 31-bit seed for a sub-task (e.g. ``derive_seed(0, "fold", 3)``), independent of hash randomisation."""
    import hashlib

    h = hashlib.sha256(("/".join(map(str, (seed, *names)))).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def seed_all(seed: int, deterministic_torch: bool = False) -> None:
    """Seed Python, NumPy and torch global generators. For CLI entry points and model initialisation only."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch

        torch.manual_seed(seed)
        if deterministic_torch:
            torch.use_deterministic_algorithms(True, warn_only=True)
    except ImportError:
        pass
