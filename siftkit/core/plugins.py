"""How packages add CLI commands and quickstart steps without the core knowing them by name.

A package ``siftkit/<name>/`` that has a module ``plugin.py`` with a function ``register(registry)`` is found by
:func:`discover` (a scan of the ``siftkit`` package folder, plus the ``siftkit.plugins`` entry-point group for
third-party packages). ``register`` may:

* add a sub-command group: ``registry.app.add_typer(my_typer, name="cascade")``;
* add a server: ``registry.serve.command("llm")(my_serve_fn)`` → ``siftkit serve llm``;
* add a quickstart step: ``registry.add_quickstart_step("cascade", fn, order=50)`` where ``fn(ctx)`` takes a
  :class:`siftkit.core.report.StepContext` and returns a :class:`siftkit.core.report.Section`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class QuickstartStep:
    name: str
    fn: Callable[[Any], Any]
    order: int = 50


@dataclass
class Registry:
    app: Any  # typer.Typer, the root `siftkit` app
    serve: Any  # typer.Typer, the `siftkit serve` group
    steps: list[QuickstartStep] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def add_quickstart_step(self, name: str, fn: Callable[[Any], Any], order: int = 50) -> None:
        self.steps.append(QuickstartStep(name, fn, order))
        self.steps.sort(key=lambda s: (s.order, s.name))


def discover(registry: Registry) -> Registry:
    """Import every ``siftkit.<pkg>.plugin`` and every ``siftkit.plugins`` entry point and call ``register``."""
    import siftkit

    names = sorted(m.name for m in pkgutil.iter_modules(siftkit.__path__) if m.ispkg)
    targets: list[tuple[str, Callable[[], Any]]] = []
    for name in names:
        spec = importlib.util.find_spec(f"siftkit.{name}.plugin")
        if spec is not None:
            targets.append((name, lambda n=name: importlib.import_module(f"siftkit.{n}.plugin")))
    for ep in importlib.metadata.entry_points(group="siftkit.plugins"):
        targets.append((ep.name, ep.load))
    for name, load in targets:
        try:
            mod = load()
            mod.register(registry)
            registry.loaded.append(name)
        except Exception as e:  # a broken plug-in must not take the whole CLI down; doctor reports it
            registry.failed[name] = f"{type(e).__name__}: {e}"
    return registry
