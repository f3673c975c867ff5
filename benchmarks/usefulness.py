"""LLM usefulness labelling: the published-output check and the SmolLM2 ablation, into one results page.

    python -m benchmarks.usefulness all            # cells (resumable) + benchmarks/results/usefulness.md
    python -m benchmarks.usefulness cells --device cuda --batch-size 64
    python -m benchmarks.usefulness report

Needs ../shared/data/usefulness (read in place, never copied). The ablation labels a fixed sample with the embedded
SmolLM2-135M-Instruct, reading each label from label log-probabilities (``readout=logprob``):

* rows: 100 clicks, 25 per divergence group (seed 0), baseline prompt, per feature preset and with each feature
  group switched off;
* sessions: the clicks of 20 random task sessions (seed 0), baseline vs session prompt, all features; sessions
  longer than ``max_prompt_tokens`` are split by query.

Each cell stores its predictions; metrics are computed by ``report`` from them (so a cell computed on another
machine is scored here).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment

EXPERIMENT = "usefulness_ablation"
ALL_GROUPS = ("task", "query", "document", "behaviour")
VARIANTS = {  # name -> (sample, mode, features, groups)
    "rows|baseline|all": ("rows", "baseline", "all", ALL_GROUPS),
    "rows|baseline|relevance": ("rows", "baseline", "relevance", ALL_GROUPS),
    "rows|baseline|satisfaction": ("rows", "baseline", "satisfaction", ALL_GROUPS),
    "rows|baseline|behaviour": ("rows", "baseline", "behaviour", ALL_GROUPS),
    "rows|baseline|relevance+satisfaction": ("rows", "baseline", "relevance+satisfaction", ALL_GROUPS),
    "rows|baseline|content": ("rows", "baseline", "content", ALL_GROUPS),
    **{f"rows|baseline|all-minus-{g}": ("rows", "baseline", "all", tuple(x for x in ALL_GROUPS if x != g))
       for g in ALL_GROUPS},
    "sessions|baseline|all": ("sessions", "baseline", "all", ALL_GROUPS),
    "sessions|session|all": ("sessions", "session", "all", ALL_GROUPS),
    # greedy JSON generation instead of log-probabilities: how often a 135M model writes a usable answer
    # (no retries on truncation: they would triple the CPU time, and a 135M model rarely finishes the object anyway)
    "rows|baseline|all|generate": ("rows", "baseline", "all", ALL_GROUPS, {"readout": "generate", "max_retries": 0}),
}
PER_GROUP, N_SESSIONS, SEED = 25, 20, 0


def _samples(clicks):
    from siftkit.usefulness.run import sample_sessions, stratified_rows

    return {"rows": stratified_rows(clicks, PER_GROUP, SEED), "sessions": sample_sessions(clicks, N_SESSIONS, SEED)}


def run_cells(device: str, batch_size: int, root: Path, threads: int) -> dict:
    import platform
    import time

    import torch

    from siftkit.core.assets import shared_data_dir
    from siftkit.usefulness.config import UsefulnessConfig
    from siftkit.usefulness.data import load_thuir
    from siftkit.usefulness.run import label_clicks, make_model

    shared = shared_data_dir()
    if shared is None:
        raise SystemExit("needs ../shared/data (or $SIFTKIT_SHARED)")
    samples = _samples(load_thuir(shared))
    model = make_model("smollm2", device=device, threads=threads, batch_size=batch_size)

    def cell(params):
        sample, mode, features, groups, *extra = VARIANTS[params["variant"]]
        options = {"readout": "logprob", **(extra or [{}])[0]}
        cfg = UsefulnessConfig(mode=mode, features=features, groups=groups, **options)
        t0 = time.perf_counter()
        res = label_clicks(model, samples[sample], cfg)
        return {**res.summary(), "label_seconds": round(time.perf_counter() - t0, 2), "device": device,
                "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor(),
                "model": model.model_id, "predictions": res.scores}

    return run_experiment(Experiment(EXPERIMENT, {"variant": list(VARIANTS)}, cell, root=root))


def ablation_markdown(root: Path = CELLS, n_resamples: int = 1000) -> str:
    from siftkit.core.assets import shared_data_dir
    from siftkit.usefulness.data import GROUPS, load_thuir
    from siftkit.usefulness.evaluate import _fmt, evaluate_labels

    clicks = load_thuir(shared_data_dir())
    samples = _samples(clicks)
    cells = {c["params"]["variant"]: c for c in load_cells(EXPERIMENT, root)}
    head = ["sample", "prompt", "features", "groups off", "read-out", "valid/invalid/missing", "Spearman ρ [CI]",
            "accuracy [CI]", "κ", "QWK", *GROUPS, "labels 0/1/2/3", "device, s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for name, (sample, mode, features, groups, *extra) in VARIANTS.items():
        readout = (extra or [{}])[0].get("readout", "logprob")
        if name not in cells:
            lines.append("| " + " | ".join([sample, mode, features, "", readout, "not run"] + [""] * 10) + " |")
            continue
        m = cells[name]["metrics"]
        r = evaluate_labels(samples[sample], m["predictions"], cluster="query" if sample == "rows" else "session",
                            n_resamples=n_resamples, ci=("spearman", "accuracy"))
        off = ",".join(g for g in ALL_GROUPS if g not in groups) or "—"
        dist = "/".join(str(m["label_distribution"][str(k)]) for k in range(4))
        lines.append("| " + " | ".join([
            sample, mode, features, off, readout, f"{m['valid']}/{m['invalid']}/{m['missing']}",
            f"{_fmt(r.get('spearman'))} [{_fmt(r.get('spearman_lo'))}, {_fmt(r.get('spearman_hi'))}]",
            f"{_fmt(r.get('accuracy'))} [{_fmt(r.get('accuracy_lo'))}, {_fmt(r.get('accuracy_hi'))}]",
            _fmt(r.get("kappa")), _fmt(r.get("qwk")), *(_fmt(r.get(f"acc_{g}")) for g in GROUPS), dist,
            f"{m['device']}, {m['label_seconds']:.0f}"]) + " |")
    return "\n".join(lines)


def _provenance(root: Path) -> str:
    cells = load_cells(EXPERIMENT, root)
    if not cells:
        return ""
    by_device: dict[str, list[float]] = {}
    for c in cells:
        by_device.setdefault(c["metrics"].get("device_name") or c["metrics"]["device"], []).append(
            c["metrics"]["label_seconds"])
    where = "; ".join(f"{len(v)} on {d} ({sum(v):.0f} s of labelling)" for d, v in sorted(by_device.items()))
    sess = [c["metrics"] for c in cells if c["params"]["variant"] == "sessions|session|all"]
    split = (f" The {N_SESSIONS} sessions hold {sess[0]['ids']} clicks and took {sess[0]['calls']} session calls "
             f"(longer sessions split by query)." if sess else "")
    return (f"They were computed by `python -m benchmarks.usefulness cells --device DEVICE` (the GPU cells on an "
            f"NVIDIA H100 lent to the project, `--batch-size 64`): {where}.{split}")


def write_report(root: Path = CELLS, n_resamples: int = 1000) -> Path:
    from siftkit.core.assets import shared_data_dir
    from siftkit.core.io import atomic_write_text
    from siftkit.usefulness.evaluate import groups_markdown, published_markdown, published_table

    pub = published_table(shared_data_dir(), n_resamples=n_resamples)
    n_ok = int((pub["status"] == "OK").sum())
    n_known = int((pub["status"] != "n/a").sum())
    text = f"""# LLM usefulness labelling (Dewan, Liu, Shah, SIGIR 2025)

Produced by `python -m benchmarks.usefulness all` (the published table also by `siftkit usefulness published`).
Data: `../shared/data/usefulness` (THUIR KDD'19, 3,046 clicks; read in place). Gold = the users' own usefulness
0–3. CIs: 95% percentile bootstrap, {n_resamples} resamples of whole queries (published table, row sample) or whole
task sessions (session sample).

## Published outputs scored with siftkit.metrics

Known-answer check against the spec's table (`siftkit/usefulness/reproduction.yaml`): **{n_ok} of {n_known} OK**
(ours rounded to 3 decimals equals every value the spec gives). "invalid" is the policy for out-of-range scores
and, in brackets, how many there were. The two GPT session files do not align with the CSV ids (spec §5.4) and are
shown for completeness only. For Llama-3.2-3B baseline the spec's ρ 0.198 excludes the 89 out-of-range scores while
its accuracy 0.298 keeps them (they count as misses); both policies are listed.

{published_markdown(pub)}

Accuracy per relevance/usefulness divergence group (HR ⇔ query relevance ≥ 2, HU ⇔ usefulness ≥ 2):

{groups_markdown(pub)}

## Ablation with SmolLM2-135M-Instruct (labels from label log-probabilities)

Rows: a fixed sample of {4 * PER_GROUP} clicks, {PER_GROUP} per divergence group (seed {SEED}), baseline prompt.
Sessions: all clicks of {N_SESSIONS} random task sessions (seed {SEED}); baseline (one click per call) vs session
prompt (one session per call, split by query above 6,000 tokens). Each label is
`argmax_l log p('{{"<id>": ' + l | prompt)` over l in 0–3, built left to right in session prompts; so every id gets a
valid label and the numbers measure preference, not format-following. This is a wiring check (spec §7.3: expect ρ
near 0 for a 135M model); real numbers need an endpoint (`siftkit usefulness label --endpoint ...`). The
`generate` row instead parses the model's greedy JSON answer (no retries); ids it left out or scored
outside 0–3 are counted in "valid/invalid/missing" and left out of the metrics.

{ablation_markdown(root, n_resamples)}

Cells: `benchmarks/results/cells/{EXPERIMENT}/` (one JSON per row above, holding the predictions; metrics are
recomputed from them here). {_provenance(root)} On two CPU cores the same cells take hours (one forward pass of a
≈1.2k-token prompt costs seconds and every label needs four); the command is the same with `--device cpu`.
"""
    out = RESULTS / "usefulness.md"
    atomic_write_text(out, text)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["cells", "report", "all"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cells-root", type=Path, default=CELLS)
    ap.add_argument("--resamples", type=int, default=1000)
    a = ap.parse_args(argv)
    if a.what in ("cells", "all"):
        print(json.dumps(run_cells(a.device, a.batch_size, a.cells_root, a.threads)))
    if a.what in ("report", "all"):
        print(write_report(a.cells_root, a.resamples))


if __name__ == "__main__":
    main()
