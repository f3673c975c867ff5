"""What the method packages' CLI tests share: their commands registered on a throw-away app, and the real
``siftkit`` entry point run as a new process (so start-up, plug-in discovery and exit codes are the user's)."""

from __future__ import annotations

import subprocess
import sys

import typer

from siftkit.core.plugins import Registry, discover


def plugin_registry() -> tuple[Registry, typer.Typer]:
    """Every plug-in discovered on a fresh registry; returns it and its app (for ``CliRunner().invoke``)."""
    registry = discover(Registry(app=typer.Typer(), serve=typer.Typer()))
    return registry, registry.app


def cli(*args: str) -> subprocess.CompletedProcess:
    """``siftkit ARGS`` in a new Python process, output captured as text."""
    return subprocess.run([sys.executable, "-c", "from siftkit.cli import main; main()", *args],
                          capture_output=True, text=True)
