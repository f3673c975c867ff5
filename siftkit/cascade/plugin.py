"""CLI: ``siftkit cascade run`` (LCRON tables into a run directory) and the quickstart step ``cascade``.

Heavy modules (torch, pandas, matplotlib) load only when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

cascade_app = typer.Typer(no_args_is_help=True, help="LCRON cascade ranking (arXiv 2503.09492) and its baselines.")


def _methods(spec: str) -> list[str]:
    from siftkit.cascade.train import METHODS
    from siftkit.core.validate import check_choices

    if spec.strip() == "all":
        return list(METHODS)
    return check_choices([m.strip() for m in spec.split(",") if m.strip()], METHODS, "--methods")


@cascade_app.command("run")
def run_cmd(
    stages: Annotated[int, typer.Option("--stages", help="2 (DSSM → DIN) or 3 (DSSM → MLP → DIN).")] = 2,
    methods: Annotated[str, typer.Option("--methods", help="Comma list or all.")] = "all",
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds 0..K−1 per method.")] = 3,
    config: Annotated[str, typer.Option("--config", help="Simulator config: tiny, small, mid, main or full.")] = "main",
    ablations: Annotated[bool, typer.Option("--ablations", help="Also LCRON without L_e2e and without "
                                                                "L_single.")] = False,
    taus: Annotated[str, typer.Option("--taus", help="Comma list of LCRON τ values to sweep, e.g. "
                                                     "1,20,50,100,200,1000.")] = "",
    output: Annotated[Path, typer.Option("--output", help="Root folder for run directories.")] = Path("runs"),
    device: Annotated[str, typer.Option("--device", help="Torch device for training: cpu or cuda.")] = "cpu",
    recflow: Annotated[Path | None, typer.Option("--recflow", help="A RecFlow folder (all_stage/, request_id_dict/, "
                                                 "...): train on its days before 2024-02-04, test on that day, "
                                                 "instead of simulated data.")] = None,
    max_requests: Annotated[int | None, typer.Option("--max-requests", help="With --recflow: requests per "
                                                     "day.")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="With --recflow: allow reading RecFlow's "
                                               "pickle files (they can run code).")] = False,
) -> None:
    """Train and evaluate cascades on simulated RecFlow-shaped data; writes tables, plots and cells to a run dir.

    Example:
        siftkit cascade run --stages 2 --methods all --seeds 3 --config main
        siftkit cascade run --recflow /data/RecFlow --stages 2 --methods lcron,bce --seeds 1 --device cuda
    """
    import json

    from siftkit.cascade.simulator import PRESETS
    from siftkit.core.errors import InputError
    from siftkit.core.io import atomic_write_text
    from siftkit.core.report import write_report
    from siftkit.core.rundir import RunDir
    from siftkit.core.validate import check_float_list, check_output_dir, check_range, cut

    method_list = _methods(methods)  # every option is checked before data loads or a run directory is made
    check_range(seeds, "--seeds", lo=1)
    tau_list = check_float_list(taus, "--taus", lo=0, lo_open=True, allow_empty=True) or None
    if max_requests is not None:
        check_range(max_requests, "--max-requests", lo=1)
    check_output_dir(output)
    if config not in PRESETS and recflow is None:
        raise InputError(f"unknown config {cut(config)}; choose from {', '.join(PRESETS)}", field="--config")
    if stages not in (2, 3):
        raise InputError("--stages must be 2 or 3", field="--stages")
    import torch

    from siftkit.cascade.experiment import report_section, run_grid, table

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"{cut(device)} is not a torch device (cpu, cuda, cuda:1)", field="--device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda, but torch sees no GPU on this machine", field="--device")
    torch.set_num_threads(1)
    variants = ["full", "no_e2e", "no_single"] if ablations else None
    data = None
    if recflow is not None:
        from siftkit.cascade import recflow as rf

        split = rf.splits(recflow)
        if not split["train"] or not split["test"]:
            raise InputError(f"need training days and the test day {rf.TEST_DATE} under all_stage/", recflow)
        train_data, remaps = rf.load(recflow, split["train"], stages, max_requests=max_requests,
                                     trust_pickle=trust_pickle)
        test_data, _ = rf.load(recflow, split["test"], stages, max_requests=max_requests, remaps=remaps,
                                trust_pickle=trust_pickle)
        data, config = (train_data, test_data), "recflow"
    rd = RunDir.create("cascade", output, seeds=list(range(seeds)))  # after the input is read: bad input leaves none
    if recflow is not None:  # hash what was read: the loaded days' feather and pickle files
        for f in rf.files(recflow, split["train"] + split["test"]):
            rd.record_input(f)
    cells = run_grid(config, stages, method_list, list(range(seeds)), variants, tau_list, log=rd.log,
                     device=device, data=data)
    atomic_write_text(rd.path / "cells.json", json.dumps(cells))
    df = table(cells)
    show = [c for c in ("method", "variant", "tau", "seeds", "joint", "joint_std", "recall_dssm", "recall_mlp",
                        "recall_din", "ndcg_din", "ndcg_din_std") if c in df.columns]
    df = df[show]
    atomic_write_text(rd.path / "table.md", df.to_markdown(index=False, floatfmt=".4f"))
    sec = report_section(cells, f"LCRON, {stages}-stage cascade, config {config}")
    rd.write_metrics(sec.metrics)
    rd.write_manifest({"command": "siftkit cascade run", "stages": stages, "config": config})
    report = write_report(rd.path / "report.html", "siftkit cascade run", [sec], {"run": str(rd.path)})
    print(df.to_markdown(index=False, floatfmt=".4f"))
    print(f"report: {report}")


def quickstart_step(ctx):
    """All eight methods, two-stage, on the ``small`` simulated config (about a minute on 2 cores).

    Option ``cascade.config`` picks another simulator preset (tests use ``tiny``).
    """
    import torch

    from siftkit.cascade.experiment import report_section, run_grid

    torch.set_num_threads(1)
    config = ctx.options["config"]
    cells = run_grid(config, 2, _methods("all"), [ctx.seed])
    return report_section(cells, f"LCRON cascade ranking (simulated RecFlow, {config} config, one seed)")


def register(registry) -> None:
    """Add ``siftkit cascade ...`` and the quickstart step ``cascade``."""
    registry.app.add_typer(cascade_app, name="cascade")
    from siftkit.core.plugins import QuickstartOption

    def presets():
        from siftkit.cascade.simulator import PRESETS  # imports torch: only when the option is set

        return list(PRESETS)

    registry.add_quickstart_step("cascade", quickstart_step, order=60, options=[
        QuickstartOption("config", str, "small", "simulated RecFlow preset", choices=presets)])

