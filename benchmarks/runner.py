"""One runner for every benchmark: a config with profiles, a cell function, a page.

    python -m benchmarks list
    python -m benchmarks run usefulness --profile gpu --workers 1 --only variant="rows|baseline|all"
    python -m benchmarks status usefulness --profile cpu
    python -m benchmarks page usefulness --profile cpu        # the results page from stored cells, nothing runs
    python -m benchmarks adopt usefulness --profile cpu       # stamp legacy cells git shows unchanged

A benchmark module ``benchmarks/<name>.py`` defines ``BENCHMARK = Benchmark(...)``; its settings live in
``benchmarks/config/<name>.yaml`` (or ``.toml``) as ``settings`` plus ``profiles`` (read by
:func:`siftkit.core.config.load_profile`). Cells run through :func:`benchmarks.cells.run_experiment` (worker
processes from ``concurrent.futures``, one progress bar, resume of missing and partial cells, stale cells refused).
The pattern is described in docs/benchmarks.md.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from benchmarks.cells import CELLS, RESULTS, Experiment, cell_key, mean_sd, md_table, write_markdown  # noqa: F401
from siftkit.core.config import load_profile, parse_override
from siftkit.core.errors import InputError

CONFIGS = Path(__file__).resolve().parent / "config"


class BenchConfig(BaseModel):
    """Fields every benchmark config has; a benchmark subclasses it with its own settings (each with a docstring).

    ``device``, ``workers``, ``threads`` and ``batch_size`` are *resources*: they change where and how fast a cell
    runs, not its result, so they stay out of the cells' stamp (a cell made on the GPU is current on the CPU).
    """

    model_config = ConfigDict(extra="forbid")

    page_fields: ClassVar[tuple[str, ...]] = ()
    """fields that only shape the page (e.g. bootstrap resamples); like resources, kept out of the stamp."""
    cell_fields: ClassVar[tuple[str, ...]] = ()
    """fields stamped per cell through :attr:`Benchmark.cell_settings` (e.g. a table of variants), kept out of the
    experiment-wide settings so that adding a variant leaves the other cells current."""

    device: str = "cpu"
    """torch device of the cells (``cpu``, ``cuda``)."""
    workers: int = 1
    """worker processes that run cells in parallel (0 = in this process)."""
    threads: int = 2
    """CPU threads per worker."""
    batch_size: int = 8
    """model batch size, where the cell has one."""


RESOURCES = frozenset(BenchConfig.model_fields)


@dataclass
class Part:
    """A further cell experiment of a benchmark: its own folder, grid, cell function, sources and inputs; run by
    the same ``run`` command with the same config, and handed to the same page (records carry ``experiment``)."""

    experiment: str
    grid: Callable[[Any], dict[str, Sequence[Any]] | list[dict[str, Any]]]
    cell: Callable[..., dict[str, Any]]
    sources: Sequence[str]
    inputs: Callable[[Any], dict[str, str | Path]] = field(default=lambda cfg: {})
    cell_settings: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None


@dataclass
class Benchmark:
    """A benchmark: what ``python -m benchmarks`` needs to run its cells and render its page.

    Attributes:
        name: the name on the command line, the config file stem and the page file (``results/<name>.md``).
        title: the page's title.
        config: the pydantic config model (a :class:`BenchConfig` subclass).
        grid: ``cfg -> {axis: values}`` or ``cfg -> [params, ...]``.
        cell: ``cell(cfg, params, partial) -> metrics`` (top-level function: it runs in worker processes).
        page: ``page(cfg, cells) -> markdown body``; ``cells`` come from :meth:`Experiment.load` (each with
            ``status``: ``fresh`` or ``unverified``; see :func:`flag`).
        sources: the code the cells depend on (files, folders, ``file.py::name,...``), hashed into each cell.
        inputs: ``cfg -> {name: path}`` of input files hashed into each cell (default: none).
        cell_settings: ``(cfg, params) -> dict`` of settings that belong to one cell (e.g. the definition of the
            variant named by ``params``), stamped into that cell only.
        experiment: the cells' folder under ``results/cells`` (default: ``name``), or ``cfg -> folder`` when
            profiles keep their cells apart (e.g. ``lref`` and ``lref_gpu``).
        legacy_at: the commit legacy cells' code is compared with (see :class:`Experiment`).
        legacy_files: the files diffed for legacy cells (default: the file part of ``sources``).
        config_file: the config file, when not ``benchmarks/config/<name>.yaml`` (tests keep theirs beside them).
        parts: further cell experiments (:class:`Part`) run and paged with this one, e.g. estimates computed from
            published outputs next to a model grid.
        claims_metrics: ``(cfg, records) -> records`` for ``python -m benchmarks claims``: the stored cells with
            the measures the page computes from them added to each record's ``metrics`` (for cells that store raw
            outputs, e.g. replies, and leave the measures to the page); ``None``: the records as stored.
    """

    name: str
    title: str
    config: type[BenchConfig]
    grid: Callable[[Any], dict[str, Sequence[Any]] | list[dict[str, Any]]]
    cell: Callable[..., dict[str, Any]]
    page: Callable[[Any, list[dict[str, Any]]], str]
    sources: Sequence[str]
    inputs: Callable[[Any], dict[str, str | Path]] = field(default=lambda cfg: {})
    cell_settings: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    experiment: str | Callable[[Any], str] = ""
    legacy_at: str = "HEAD"
    legacy_files: Sequence[str] = ()
    config_file: Path | None = None
    parts: Sequence[Part] = ()
    claims_metrics: Callable[[Any, list[dict[str, Any]]], list[dict[str, Any]]] | None = None

    def config_path(self) -> Path:
        if self.config_file is not None:
            return Path(self.config_file)
        for ext in ("yaml", "yml", "toml"):
            if (p := CONFIGS / f"{self.name}.{ext}").exists():
                return p
        raise InputError(f"no config file for benchmark {self.name}", CONFIGS / f"{self.name}.yaml")

    def load_config(self, profile: str, overrides: Sequence[str] = ()) -> BenchConfig:
        return load_profile(self.config, self.config_path(), profile, overrides)

    def experiment_for(self, cfg: BenchConfig, root: Path = CELLS) -> Experiment:
        """The main grid's :class:`Experiment` under this config (see :meth:`experiments_for` for all of them)."""
        folder = self.experiment(cfg) if callable(self.experiment) else self.experiment
        return _experiment(cfg, folder or self.name, self, root, legacy_files=list(self.legacy_files),
                           legacy_at=self.legacy_at)

    def experiments_for(self, cfg: BenchConfig, root: Path = CELLS) -> list[Experiment]:
        """The main grid, then each part's."""
        return [self.experiment_for(cfg, root)] + [_experiment(cfg, p.experiment, p, root) for p in self.parts]


def _experiment(cfg: BenchConfig, folder: str, spec: Benchmark | Part, root: Path, **legacy: Any) -> Experiment:
    skip = RESOURCES | set(cfg.page_fields) | set(cfg.cell_fields)
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in skip}
    per_cell = functools.partial(spec.cell_settings, cfg) if spec.cell_settings else None
    return Experiment(folder, spec.grid(cfg), functools.partial(spec.cell, cfg), root=root, sources=list(spec.sources),
                      inputs=dict(spec.inputs(cfg)), settings=settings, cell_settings=per_cell, **legacy)


def find(name: str) -> Benchmark:
    """``benchmarks.<name>``'s ``BENCHMARK``, or a dotted module path's (``tests.benchmarks.toy``)."""
    module = name if "." in name else f"benchmarks.{name}"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise InputError(f"no benchmark named {name!r} (see `python -m benchmarks list`)", field="NAME") from None
        raise
    if not isinstance(getattr(mod, "BENCHMARK", None), Benchmark):
        raise InputError(f"{module} defines no BENCHMARK (it is not on the runner yet)", field="NAME")
    return mod.BENCHMARK


def available() -> list[str]:
    """Benchmark modules on the runner (found by their ``BENCHMARK = Benchmark(`` line, without importing)."""
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*.py") if re.search(r"^BENCHMARK = Benchmark\(", p.read_text(), re.M))


def not_ported() -> list[str]:
    """Benchmark modules with their own command line, not yet on the runner (helpers such as ``*_page`` excluded:
    a module counts when it has a ``__main__`` block)."""
    here = Path(__file__).resolve().parent
    skip = {"__init__", "__main__", "cells", "runner", "stamp"} | set(available())
    return sorted(p.stem for p in here.glob("*.py")
                  if p.stem not in skip and re.search(r'^if __name__ == "__main__":', p.read_text(), re.M))


def only_filter(exps: Experiment | Sequence[Experiment], only: Sequence[str]) -> Callable[[dict], bool] | None:
    """``key=value`` selectors (all must hold; values compared as text) checked against the grids' axes; a cell
    without one of the keys does not match."""
    if not only:
        return None
    exps = [exps] if isinstance(exps, Experiment) else list(exps)
    axes = {k for e in exps for c in e.cells() for k in c}
    wanted = []
    for ov in only:
        key, value = parse_override(ov)
        if key not in axes:
            raise InputError(f'"{key}" is not an axis of {", ".join(e.name for e in exps)} '
                             f'(axes: {", ".join(sorted(axes))})', field="--only")
        wanted.append((key, str(value)))
    return lambda params: all(k in params and str(params[k]) == v for k, v in wanted)


def flag(cell: dict[str, Any]) -> str:
    """A marker for a table row built from a cell that is not verified current (empty for a fresh cell)."""
    return {"fresh": "", "unverified": " ⚠"}.get(cell.get("status", "fresh"), " ✗stale")


def provenance(exps: Experiment | Sequence[Experiment], cells: list[dict[str, Any]]) -> str:
    """The page's closing section: per experiment, how many cells are current; every flagged cell with its reason."""
    exps = [exps] if isinstance(exps, Experiment) else list(exps)
    named = len(exps) > 1  # flagged cells are named with their folder when the page reads several
    lines = ["## Cells"]
    for exp in exps:
        folders = exp.folders()
        counts: dict[str, int] = {}
        for c in cells:
            if c.get("experiment", exp.name) in folders or c.get("experiment") == exp.name:
                counts[c["status"]] = counts.get(c["status"], 0) + 1
        stamp = exp.stamp or {}
        lines += ["", ", ".join(f"`benchmarks/results/cells/{f}/`" for f in folders) + ": "
                  + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no cells")
                  + f". Current code hash `{stamp.get('code')}` over {', '.join(f'`{s}`' for s in exp.sources)}; "
                  f"inputs {', '.join(f'{k} `{v}`' for k, v in stamp.get('inputs', {}).items()) or 'none'}."]
    unverified = [c for c in cells if c["status"] == "unverified"]
    if unverified:
        lines += ["", "Rows marked ⚠ come from cells this code cannot vouch for (made before cells were stamped, "
                  "by code git cannot check, or computed from such cells); they are shown, not silently mixed in:",
                  ""]
        lines += [f"- ⚠ `{cell_name(c, named)}`: {'; '.join(c['status_reasons'])}" for c in unverified]
    stale = [c for c in cells if c["status"] == "stale"]
    if stale:
        lines += ["", "Rows marked ✗stale come from cells made by other code, data or settings than the current "
                  "ones (rendered on request, `--allow-stale`); what changed:", ""]
        lines += [f"- ✗ `{cell_name(c, named)}`: {'; '.join(c['status_reasons'])}" for c in stale]
    return "\n".join(lines)


def cell_name(cell: dict[str, Any], with_experiment: bool = False) -> str:
    key = cell_key(cell["params"])
    return f"{cell['experiment']}/{key}" if with_experiment and cell.get("experiment") else key


def render_page(bench: Benchmark, cfg: BenchConfig, profile: str, root: Path = CELLS, out: Path | None = None,
                allow_stale: bool = False) -> Path:
    """Write ``results/<name>.md`` from the stored cells (nothing runs); stale cells refused unless allowed."""
    exps = bench.experiments_for(cfg, root)
    cells = [c for e in exps for c in e.load(allow_stale=allow_stale)]
    body = bench.page(cfg, cells) + "\n\n" + provenance(exps, cells)
    extra = " --allow-stale" if allow_stale else ""
    command = (f"python -m benchmarks run {bench.name} --profile {profile}   # cells\n"
               f"python -m benchmarks page {bench.name} --profile {profile}{extra}  # this page")
    return write_markdown(out or RESULTS / f"{bench.name}.md", bench.title, body, command)
