"""A tiny benchmark on the runner, for tests/benchmarks/test_runner.py: each cell sleeps, logs its call, and
returns a number computed from its params and a declared input file."""

from __future__ import annotations

import json
import os
import signal
import time
import warnings
from pathlib import Path

from benchmarks.runner import BenchConfig, Benchmark, Part, flag

HERE = Path(__file__).resolve().parent


class ToyConfig(BenchConfig):
    offset: float = 0.0
    """added to every cell's score."""
    seeds: list[int] = [0, 1]
    """the grid's seeds."""
    sleep: float = 0.0
    """seconds each cell sleeps (so a test can kill the grid half-way)."""
    log: str = ""
    """file each cell appends its key to (the test reads which cells ran)."""
    data: str = ""
    """an input file whose number is added to the score."""
    die_once: str = ""
    """a file: the first cell to find it missing creates it and kills its own process (a worker dying mid-cell)."""


def cell(cfg: ToyConfig, params: dict) -> dict:
    print(f"toy cell {params} says hello")  # console noise: must land in the cell's log, not the console
    warnings.warn("a library warning", UserWarning, stacklevel=1)
    time.sleep(cfg.sleep)
    if cfg.die_once and params["seed"] == 1 and not Path(cfg.die_once).exists():
        Path(cfg.die_once).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.log:
        with open(cfg.log, "a") as f:
            f.write(json.dumps(params) + "\n")
    base = float(Path(cfg.data).read_text()) if cfg.data else 0.0
    return {"score": {"a": 1.0, "b": 2.0}[params["method"]] * 10 + params["seed"] + cfg.offset + base}


def square_cell(cfg: ToyConfig, params: dict) -> dict:
    return {"square": params["x"] ** 2}


def page(cfg: ToyConfig, cells: list[dict]) -> str:
    rows = sorted((c["params"]["method"], c["params"]["seed"], c["metrics"]["score"], flag(c)) for c in cells
                  if c["experiment"] == "toy")
    squares = sorted((c["params"]["x"], c["metrics"]["square"]) for c in cells if c["experiment"] == "toy_squares")
    return "\n".join(["| method | seed | score |", "|---|---|---|"]
                     + [f"| {m}{f} | {s} | {v:.2f} |" for m, s, v, f in rows]
                     + ["", "squares: " + ", ".join(f"{x}²={y}" for x, y in squares)])


BENCHMARK = Benchmark(
    name="toy", title="Toy benchmark", config=ToyConfig,
    grid=lambda cfg: {"method": ["a", "b"], "seed": cfg.seeds}, cell=cell, page=page,
    sources=["tests/benchmarks/toy_bench.py::cell"],
    inputs=lambda cfg: {"data": cfg.data} if cfg.data else {},
    config_file=HERE / "toy_bench.yaml",
    parts=[Part("toy_squares", grid=lambda cfg: {"x": [2, 3]}, cell=square_cell,
                sources=["tests/benchmarks/toy_bench.py::square_cell"])],
)
