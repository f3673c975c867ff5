"""Where siftkit keeps caches: ``$SIFTKIT_HOME`` or ``~/.cache/siftkit``.

Only the CLI and these helpers read the environment; library code takes paths as arguments.
"""

from __future__ import annotations

import os
from pathlib import Path


def siftkit_home() -> Path:
    """The cache root (converted models, response cache, indexes); created on first use."""
    root = Path(os.environ.get("SIFTKIT_HOME") or Path.home() / ".cache" / "siftkit")
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    """A sub-folder of :func:`siftkit_home`, created on first use."""
    p = siftkit_home().joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p
