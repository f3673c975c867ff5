"""How packages add CLI commands, quickstart steps and asset checks without the core knowing them by name.

A package ``siftkit/<name>/`` that has a module ``plugin.py`` with a function ``register(registry)`` is found by
:func:`discover` (a scan of the ``siftkit`` package folder, plus the ``siftkit.plugins`` entry-point group for
third-party packages). ``register`` may:

* add a sub-command group: ``registry.app.add_typer(my_typer, name="cascade")``;
* add a server: ``registry.serve.command("llm")(my_serve_fn)`` → ``siftkit serve llm``;
* add a quickstart step with its options::

      registry.add_quickstart_step("recbench", fn, order=60, options=[
          QuickstartOption("queries", int, 20, "queries to rank")])

  ``fn(ctx)`` takes a :class:`siftkit.core.report.StepContext` whose ``options`` holds this step's own options
  only (defaults filled in, values typed), and returns a :class:`siftkit.core.report.Section`. The user sets
  them as ``siftkit quickstart --set recbench.queries=5``; an unknown step or key, or a bad value, is an
  :class:`~siftkit.core.errors.InputError` before anything runs;
* add an offline-asset or service check shown by ``siftkit doctor``:
  ``registry.add_asset_check("PostgreSQL server", "service", fn)`` where ``fn()`` returns an
  :class:`siftkit.core.assets.AssetStatus` or a pair ``(ok, detail)``.

A plug-in whose import or ``register`` fails is kept in ``registry.failed`` and reported in one line on stderr at
every CLI start (:meth:`Registry.report_failures`), never dropped silently.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .errors import InputError

CORE_STEPS = ("doctor", "metrics-demo")  # the quickstart steps of the CLI itself (no options)


@dataclass(frozen=True)
class QuickstartOption:
    """One option of a quickstart step, set as ``--set STEP.NAME=value``.

    Attributes:
        name: the key after the step name.
        type: ``int``, ``float``, ``bool`` (true/false, yes/no, 1/0) or ``str``; the text after ``=`` is converted
            with it, and a value it rejects is an InputError.
        default: used when the option is not set.
        help: one line shown in errors and docs.
        choices: allowed values, or a callable returning them (called only when the option is set, so a plug-in
            can list choices without importing heavy modules at CLI start).
    """

    name: str
    type: type
    default: Any
    help: str = ""
    choices: Sequence[Any] | Callable[[], Sequence[Any]] | None = None

    def coerce(self, raw: str, where: str) -> Any:
        """The text ``raw`` as a value of :attr:`type`; raises InputError naming ``where`` (``STEP.KEY``)."""
        text = raw.strip()
        try:
            if self.type is bool:
                if text.lower() not in ("true", "yes", "1", "false", "no", "0"):
                    raise ValueError(text)
                value = text.lower() in ("true", "yes", "1")
            else:
                value = self.type(text)
        except ValueError:
            raise InputError(f"{where}: expected {self.type.__name__}, got {text!r}", "--set", field=where) from None
        if self.choices is not None:
            allowed = list(self.choices() if callable(self.choices) else self.choices)
            if value not in allowed:
                raise InputError(f"{where}: {value!r} is not one of {', '.join(map(str, allowed))}", "--set",
                                 field=where)
        return value


@dataclass
class QuickstartStep:
    name: str
    fn: Callable[[Any], Any]
    order: int = 50
    options: tuple[QuickstartOption, ...] = ()

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options}


@dataclass
class AssetCheck:
    """A check registered by a plug-in: ``fn()`` returns an AssetStatus or ``(ok, detail)``."""

    name: str
    kind: str
    fn: Callable[[], Any]
    source: str


def _norm(step: str) -> str:
    return step.replace("_", "-")  # "search_r1" and "search-r1" name the same step


@dataclass
class Registry:
    app: Any  # typer.Typer, the root `siftkit` app
    serve: Any  # typer.Typer, the `siftkit serve` group
    steps: list[QuickstartStep] = field(default_factory=list)
    asset_checks: list[AssetCheck] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    current: str = "core"  # the plug-in whose register() runs now; names the source of its asset checks
    discovered: bool = False  # set by discover(): a second call on the same registry registers nothing twice

    def add_quickstart_step(self, name: str, fn: Callable[[Any], Any], order: int = 50,
                            options: Sequence[QuickstartOption | tuple] = ()) -> None:
        """Add a quickstart step; ``options`` are :class:`QuickstartOption` or ``(name, type, default[, help])``."""
        opts = tuple(o if isinstance(o, QuickstartOption) else QuickstartOption(*o) for o in options)
        if len({o.name for o in opts}) != len(opts):
            raise ValueError(f"quickstart step {name!r} declares an option twice")
        if name in CORE_STEPS or any(_norm(s.name) == _norm(name) for s in self.steps):
            raise ValueError(f"quickstart step {name!r} is already registered")
        self.steps.append(QuickstartStep(name, fn, order, opts))
        self.steps.sort(key=lambda s: (s.order, s.name))

    def add_asset_check(self, name: str, kind: str, fn: Callable[[], Any]) -> None:
        """Add a check to ``siftkit doctor``; its source is the plug-in being registered."""
        self.asset_checks.append(AssetCheck(name, kind, fn, self.current))

    # ------------------------------------------------------------------------------------------- quickstart
    def step_names(self) -> list[str]:
        return [*CORE_STEPS, *(s.name for s in self.steps)]

    def _step(self, name: str, path: str, ov: str = "") -> str:
        by_norm = {_norm(n): n for n in self.step_names()}
        if _norm(name) not in by_norm:
            why = next((f"; plug-in {p!r} failed to load: {e}" for p, e in self.failed.items()
                        if _norm(p) == _norm(name)), "")
            raise InputError(f"{ov + ': ' if ov else ''}unknown quickstart step {name!r} "
                             f"(steps: {', '.join(self.step_names())}){why}", path, field=name)
        return by_norm[_norm(name)]

    def select_steps(self, only: Sequence[str] | None) -> list[str]:
        """The step names to run, in order; ``--only`` names must all exist (InputError otherwise)."""
        if not only:
            return self.step_names()
        chosen = {self._step(n, "--only") for n in only}
        return [n for n in self.step_names() if n in chosen]

    def step_options(self, overrides: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Parse ``STEP.KEY=value`` overrides into each step's options (defaults filled in, values typed).

        Raises:
            InputError: not key=value, no step part, an unknown step or key, or a value of the wrong type.
        """
        from .config import parse_override

        steps = {s.name: s for s in self.steps}
        out: dict[str, dict[str, Any]] = {n: (steps[n].defaults() if n in steps else {}) for n in self.step_names()}
        for ov in overrides:
            key, _ = parse_override(ov)  # checks key=value
            raw = ov.split("=", 1)[1]
            if "." not in key:
                raise InputError(f"override {ov!r} names no step: write STEP.KEY=value "
                                 f"(steps: {', '.join(self.step_names())})", "--set", field=key)
            step_name, opt_name = key.split(".", 1)
            step_name = self._step(step_name, "--set", ov)
            declared = {o.name: o for o in steps[step_name].options} if step_name in steps else {}
            if opt_name not in declared:
                have = ", ".join(f"{o.name} ({o.type.__name__}, default {o.default!r})" for o in declared.values())
                raise InputError(f"{ov}: step {step_name!r} has no option {opt_name!r} "
                                 f"({'options: ' + have if have else 'it takes no options'})", "--set", field=key)
            out[step_name][opt_name] = declared[opt_name].coerce(raw, f"{step_name}.{opt_name}")
        return out

    # ------------------------------------------------------------------------------------------- failures
    def report_failures(self, file=None) -> None:
        """One line on stderr per plug-in that failed to load (called at every CLI start)."""
        for name, err in self.failed.items():
            msg = " ".join(str(err).split())
            print(f"siftkit: warning: plug-in {name!r} failed to load and is unavailable: {msg}",
                  file=file or sys.stderr)


def discover(registry: Registry) -> Registry:
    """Import every ``siftkit.<pkg>.plugin`` and every ``siftkit.plugins`` entry point and call ``register``.

    Once per registry: a second call returns it as it is (``main()`` may run many times in one process)."""
    import siftkit

    if registry.discovered:
        return registry
    registry.discovered = True

    names = sorted(m.name for m in pkgutil.iter_modules(siftkit.__path__) if m.ispkg)
    targets: list[tuple[str, Callable[[], Any]]] = []
    for name in names:
        spec = importlib.util.find_spec(f"siftkit.{name}.plugin")
        if spec is not None:
            targets.append((name, lambda n=name: importlib.import_module(f"siftkit.{n}.plugin")))
    for ep in importlib.metadata.entry_points(group="siftkit.plugins"):
        targets.append((ep.name, ep.load))
    for name, load in targets:
        registry.current = name
        try:
            mod = load()
            mod.register(registry)
            registry.loaded.append(name)
        except Exception as e:  # a broken plug-in must not take the whole CLI down; it is reported at every start
            registry.failed[name] = f"{type(e).__name__}: {e}"
        finally:
            registry.current = "core"
    return registry
