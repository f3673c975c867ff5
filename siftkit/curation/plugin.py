"""CLI: ``siftkit curation describe | score | select | train | eval`` and the quickstart step ``curation``.

A clip folder (written by ``describe``) holds ``clips.jsonl`` (``id``, ``audio_caption``, ``video_caption``,
``seconds`` and, for synthetic clips, the evaluation-only ``aligned`` label) and ``features.npz`` (frozen ``audio``
and ``video`` token features). Every option is checked (one ``siftkit:`` line, exit 2) before a model loads or an
output is made; heavy modules load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError
from siftkit.core.validate import check_input_file, check_output_dir, check_output_file, check_range, check_url

# [ours] upper bounds, so a mistyped size is one line instead of an allocation of hundreds of GB or days of work
MAX_CLIPS = 1_000_000
MAX_WIDTH = 16_384  # --hidden, --dim
MAX_EPOCHS = 10_000
MAX_DRAWS = 100_000  # eval --k

app = typer.Typer(no_args_is_help=True, help="AVVA: LLM-scored audio-video alignment to curate contrastive training "
                  "data (Vosoughi et al., 2025).")
JUDGES = ("proxy", "smollm2")
MODES = ("expected", "generate")


def _clips(folder: Path, field: str = "--clips") -> Path:
    if not folder.is_dir():
        raise InputError("not a clip folder (written by `siftkit curation describe`)", folder, field=field)
    check_input_file(folder / "clips.jsonl", field)
    check_input_file(folder / "features.npz", field)
    return folder


def _check_rows(path: Path, schema: dict, what: str) -> list[dict]:
    """The rows of a clips/scores JSONL: typed by ``schema``, ids unique (a repeated clip would be trained on or
    counted twice), ``seconds`` a finite number > 0 (hours kept are summed from it), ``final`` (scores) in [0, 10]
    or NaN/null."""
    import math

    from siftkit.core.io import iter_jsonl

    rows, seen = [], {}
    for line, r in iter_jsonl(path, schema):
        if r["id"] in seen:
            raise InputError(f"id {r['id']!r:.80} already on line {seen[r['id']]}", path, line, "id")
        seen[r["id"]] = line
        sec = r["seconds"]
        if not (math.isfinite(sec) and sec > 0):
            raise InputError(f'field "seconds" must be a finite number > 0, got {sec}', path, line, "seconds")
        f = r.get("final")  # scores: NaN or null = unscored; any other value is a score in [0, 10]
        if f is not None and f == f and not 0 <= f <= 10:
            raise InputError(f'field "final" must be in [0, 10] (or null: unscored), got {f}', path, line, "final")
        rows.append(r)
    if not rows:
        raise InputError(f"no {what}", path)
    return rows


def _read_clips(folder: Path) -> list[dict]:
    schema = {"id": ((str,), True), "audio_caption": ((str,), True), "video_caption": ((str,), True),
              "seconds": ((float, int), True)}
    return _check_rows(folder / "clips.jsonl", schema, "clips")


def _features(folder: Path, n: int, field: str = "--clips"):
    """``features.npz`` of a clip folder: arrays ``audio`` and ``video`` of numbers, one row per clip of
    clips.jsonl, checked before any training or model load."""
    import numpy as np

    path = folder / "features.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            feats = {k: z[k] for k in ("audio", "video") if k in z.files}
            keys = list(z.files)
    except Exception:  # numpy raises several types (and speaks of pickles) for a file that is not an .npz
        raise InputError("not a NumPy .npz archive of arrays (written by `siftkit curation describe`)", path,
                         field=field) from None
    for k in ("audio", "video"):
        if k not in feats:
            raise InputError(f'array "{k}" missing (the file holds: {", ".join(keys) or "nothing"})', path,
                             field=k)
        a = feats[k]
        if a.ndim < 2 or a.shape[0] != n or not np.issubdtype(a.dtype, np.number):
            raise InputError(f'array "{k}" has shape {a.shape} ({a.dtype}); want numbers with one row per clip of '
                             f"clips.jsonl ({n})", path, field=k)
        if not np.isfinite(a).all():
            raise InputError(f'array "{k}" holds NaN or infinite values', path, field=k)
    return feats


def _write_clips(out: Path, rows: list[dict], audio, video) -> None:
    import io

    import numpy as np

    from siftkit.core.io import atomic_write_bytes, write_jsonl

    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, audio=audio, video=video)
    atomic_write_bytes(out / "features.npz", buf.getvalue())
    write_jsonl(out / "clips.jsonl", rows)


def synthetic_rows(s) -> list[dict]:
    from siftkit.curation.synthetic import SECONDS

    return [{"id": f"syn{i:05d}", "audio_caption": a, "video_caption": v, "seconds": SECONDS, "aligned": bool(al)}
            for i, (a, v, al) in enumerate(zip(s.audio_caption, s.video_caption, s.aligned))]


@app.command()
def describe(
    output: Annotated[Path, typer.Option("--output", help="Clip folder to write (clips.jsonl, features.npz).")],
    synthetic: Annotated[int, typer.Option("--synthetic", help="Generate this many synthetic clips.")] = 0,
    rho: Annotated[float, typer.Option("--rho", help="Share of misaligned synthetic pairs.")] = 0.3,
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="JSONL of {\"id\", \"audio\", \"image\"} file "
                                                                  "paths: real clips, the audio cut into 3-s windows, "
                                                                  "the image as a static video).")] = None,
    max_clips: Annotated[int, typer.Option("--max-clips", help="At most this many random 3-s windows per source "
                                                               "(paper: 20).")] = 20,
    whisper: Annotated[str, typer.Option("--whisper", help="Whisper model for speech (tiny.en, base) or none.")]
    = "tiny.en",
    seed: Annotated[int, typer.Option("--seed")] = 0,
):
    """Caption the audio and the visual side of each clip from the signals; store the frozen stand-in features.

    Example: ``siftkit curation describe --synthetic 500 --rho 0.3 --output runs/avva/train``
    """
    check_range(synthetic, "--synthetic", lo=0, hi=MAX_CLIPS)
    check_range(rho, "--rho", lo=0, hi=1)
    check_range(max_clips, "--max-clips", lo=1, hi=MAX_CLIPS)
    if bool(synthetic) == bool(pairs):
        raise InputError("give exactly one of --synthetic N and --pairs FILE", field="--synthetic")
    if whisper not in ("none", "tiny.en", "base"):
        raise InputError(f"--whisper must be tiny.en, base or none, got {whisper!r}", field="--whisper")
    rows_in = []
    if pairs:
        from siftkit.core.io import iter_jsonl

        numbered = list(iter_jsonl(check_input_file(pairs, "--pairs"), {"id": ((str,), True), "audio": ((str,), True),
                                                                       "image": ((str,), True)}))
        rows_in = [r for _, r in numbered]
        seen: dict[str, int] = {}
        for i, r in numbered:
            if r["id"] in seen:  # its clips would repeat ids that score/train/eval refuse
                raise InputError(f"id {r['id']!r:.80} already on line {seen[r['id']]}", pairs, i, field="id")
            seen[r["id"]] = i
        for i, r in numbered:
            for k in ("audio", "image"):
                if not Path(r[k]).is_file():
                    raise InputError(f"{k}: file not found: {r[k]}", pairs, i, field=k)
            # headers read now (no decoding): a file that is not audio / an image stops here, before Whisper loads
            from siftkit.core.media import probe

            if probe(r["audio"]).kind == "image":
                raise InputError(f"audio: {r['audio']!r:.80} is an image, not a sound file", pairs, i, field="audio")
            if probe(r["image"]).kind != "image":
                raise InputError(f"image: {r['image']!r:.80} is not an image", pairs, i, field="image")
    check_output_dir(output)
    import numpy as np

    if synthetic:
        from siftkit.curation.synthetic import generate

        s = generate(synthetic, rho, seed)
        _write_clips(output, synthetic_rows(s), s.audio, s.video)
        print(json.dumps({"clips": len(s), **s.describer_error()}))
        return
    from siftkit.core.media import SAMPLE_RATE, clip_starts, load_audio, load_image, segment
    from siftkit.curation.describe import (SignalAudioDescriber, SignalImageDescriber, WhisperSpeechDescriber,
                                           audio_tokens, image_tokens)

    ad = SignalAudioDescriber() if whisper == "none" else WhisperSpeechDescriber(whisper)
    vd = SignalImageDescriber()
    rows, A, V = [], [], []
    for r in rows_in:
        wav = load_audio(r["audio"])
        im = load_image(r["image"])
        vcap, vtok = vd.describe(np.asarray(im.resize((64, 64)))).caption, image_tokens(np.asarray(im))
        starts = clip_starts(len(wav) / SAMPLE_RATE, 3.0, max_clips, seed)
        for start, x in zip(starts, segment(wav, SAMPLE_RATE, 3.0, max_clips, seed)):
            rows.append({"id": f"{r['id']}@{start:g}", "source": r["id"], "start": start,
                         "audio_caption": ad.describe(x, SAMPLE_RATE).caption, "video_caption": vcap,
                         "seconds": min(3.0, len(wav) / SAMPLE_RATE - start)})
            A.append(audio_tokens(x, SAMPLE_RATE))
            V.append(vtok)
    _write_clips(output, rows, np.stack(A), np.stack(V))
    print(json.dumps({"clips": len(rows)}))


@app.command()
def score(
    clips: Annotated[Path, typer.Option("--clips", help="Clip folder from `describe`.")],
    output: Annotated[Path, typer.Option("--output", help="scores.jsonl to write.")],
    judge: Annotated[str, typer.Option("--judge", help="proxy (caption overlap, no model), smollm2, or a served "
                                                       "model name with --endpoint.")] = "proxy",
    mode: Annotated[str, typer.Option("--mode", help="expected (grade distribution, one pass per criterion) | "
                                                     "generate (JSON reply).")] = "expected",
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Local engine: torch | ct2.")] = "ct2",
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit home).")] = None,
):
    """Five criteria scores in [0, 10] and their equal-weight mean per clip (LLM calls cached: a rerun resumes).

    Example: ``siftkit curation score --clips runs/avva/train --judge smollm2 --output runs/avva/scores.jsonl``
    """
    if mode not in MODES:
        raise InputError(f"--mode must be one of {MODES}, got {mode!r}", field="--mode")
    if judge not in JUDGES and not endpoint:
        raise InputError(f"--judge must be one of {JUDGES} (or a served model with --endpoint), got {judge!r}",
                         field="--judge")
    if engine not in ("torch", "ct2"):
        raise InputError(f"--engine must be torch or ct2, got {engine!r}", field="--engine")
    if endpoint:
        check_url(endpoint, "--endpoint")
    rows = _read_clips(_clips(clips))
    check_output_file(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    from siftkit.core.io import write_jsonl
    from siftkit.curation.judge import caption_overlap_scores, score_expected, score_generated

    pairs = [(r["audio_caption"], r["video_caption"]) for r in rows]
    if judge == "proxy" and not endpoint:
        res = [caption_overlap_scores(a, v) for a, v in pairs]
    else:
        from siftkit.core.paths import cache_dir
        from siftkit.llm.factory import make_chat_model

        cache = cache or cache_dir("cache") / "responses.sqlite"
        model = make_chat_model(judge, endpoint=endpoint, engine=engine, cache=cache)
        fn = score_expected if mode == "expected" else score_generated
        res = fn(lambda: model, pairs, cache, progress=True)
    write_jsonl(output, [{"id": r["id"], "seconds": r["seconds"], **s.scores, "final": s.final,
                          "missing": s.missing, "raw": s.raw, **({"aligned": r["aligned"]} if "aligned" in r else {})}
                         for r, s in zip(rows, res)])
    import numpy as np

    f = np.array([s.final for s in res])
    print(json.dumps({"clips": len(res), "mean": float(np.nanmean(f)) if len(f) else None,
                      "unscored": int(np.isnan(f).sum())}))


@app.command()
def select(
    scores: Annotated[Path, typer.Option("--scores", help="scores.jsonl from `score`.")],
    output: Annotated[Path, typer.Option("--output", help="selected.jsonl (the kept ids) to write.")],
    theta: Annotated[Optional[float], typer.Option("--theta", help="Keep final >= theta (0-10).")] = None,
    fraction: Annotated[Optional[float], typer.Option("--fraction", help="Keep this share (0-1], highest first.")]
    = None,
):
    """Keep clips by threshold or retained fraction; print the hours kept at each threshold of the paper's curve.

    Example: ``siftkit curation select --scores runs/avva/scores.jsonl --fraction 0.7 --output runs/avva/keep.jsonl``
    """
    if (theta is None) == (fraction is None):
        raise InputError("give exactly one of --theta and --fraction", field="--theta")
    if theta is not None:
        check_range(theta, "--theta", lo=0, hi=10)
    if fraction is not None:
        check_range(fraction, "--fraction", lo=0, hi=1, lo_open=True)
    rows = _check_rows(check_input_file(scores, "--scores"), {"id": ((str,), True), "final": ((float, int), False),
                                                             "seconds": ((float, int), True)}, "scores")
    check_output_file(output)
    import numpy as np

    from siftkit.core.io import write_jsonl
    from siftkit.curation.judge import hours_by_threshold, select as keep, threshold_for_fraction

    f = np.array([np.nan if r.get("final") is None else float(r["final"]) for r in rows])
    th = theta if theta is not None else threshold_for_fraction(f, fraction)
    mask = keep(f, th)
    write_jsonl(output, [{"id": r["id"], "final": r.get("final")} for r, m in zip(rows, mask) if m])
    curve = hours_by_threshold(f, [r["seconds"] for r in rows], [0.0, 6.2, 7.2, 7.6, 8.0, 8.6, 9.0, 10.0, th])
    print(json.dumps({"theta": th, "kept": int(mask.sum()), "of": len(rows), "curve": curve}))


@app.command("train")
def train_cmd(
    clips: Annotated[Path, typer.Option("--clips", help="Clip folder from `describe`.")],
    output: Annotated[Path, typer.Option("--output", help="Folder for model.pt and history.json.")],
    selected: Annotated[Optional[Path], typer.Option("--selected", help="selected.jsonl from `select` (default: "
                                                                        "all clips).")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = 15,
    hidden: Annotated[int, typer.Option("--hidden", help="Aligner hidden size (paper 1024).")] = 1024,
    dim: Annotated[int, typer.Option("--dim", help="Embedding size (paper 768).")] = 768,
    heads: Annotated[int, typer.Option("--heads", help="Cross-attention heads (paper 8).")] = 8,
    lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate (paper 1e-4).")] = 1e-4,
    seed: Annotated[int, typer.Option("--seed")] = 0,
):
    """Train the dual-encoder heads with symmetric InfoNCE (tau 0.07), keeping the best-validation epoch.

    Example: ``siftkit curation train --clips runs/avva/train --selected runs/avva/keep.jsonl --output runs/avva/m``
    """
    for v, name, hi in ((epochs, "--epochs", MAX_EPOCHS), (hidden, "--hidden", MAX_WIDTH), (dim, "--dim", MAX_WIDTH),
                        (heads, "--heads", MAX_WIDTH)):
        check_range(v, name, lo=1, hi=hi)
    check_range(lr, "--lr", lo=0, lo_open=True)
    if dim % heads:
        raise InputError(f"--dim ({dim}) must be divisible by --heads ({heads})", field="--dim")
    rows = _read_clips(_clips(clips))
    keep_ids = None
    if selected is not None:
        from siftkit.core.io import read_jsonl

        keep_ids = {r["id"] for r in read_jsonl(check_input_file(selected, "--selected"), {"id": ((str,), True)})}
    check_output_dir(output)
    feats = _features(clips, len(rows))
    import numpy as np
    import torch

    from siftkit.core.io import atomic_output, atomic_write_text
    from siftkit.curation.pipeline import TrainConfig, fit
    from siftkit.curation.synthetic import AVSet

    idx = np.array([i for i, r in enumerate(rows) if keep_ids is None or r["id"] in keep_ids])
    if len(idx) < 4:
        raise InputError(f"only {len(idx)} clips selected; need at least 4", selected or clips, field="--selected")
    z = np.zeros(len(idx), int)
    s = AVSet(feats["audio"][idx], feats["video"][idx], [], [], z, z, z, z, np.ones(len(idx), bool))
    cfg = TrainConfig(epochs=epochs, hidden=hidden, dim=dim, heads=heads, lr=lr)
    res = fit(s, cfg, seed)
    output.mkdir(parents=True, exist_ok=True)
    with atomic_output(output / "model.pt") as tmp:
        torch.save({"state_dict": res.model.state_dict(), "config": cfg.__dict__,
                    "d_audio": int(s.audio.shape[-1]), "d_video": int(s.video.shape[-1])}, tmp)
    atomic_write_text(output / "history.json", json.dumps({"best_epoch": res.best_epoch, "history": res.history,
                                                           "clips": len(idx)}, indent=1))
    print(json.dumps({"clips": len(idx), "best_epoch": res.best_epoch}))


@app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Option("--model", help="Folder from `train`.")],
    clips: Annotated[Path, typer.Option("--clips", help="Clip folder (the test set).")],
    k: Annotated[int, typer.Option("--k", help="Repetitions (paper 100).")] = 100,
    n: Annotated[int, typer.Option("--n", help="Clips per draw (paper 100).")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    output: Annotated[Optional[Path], typer.Option("--output", help="metrics.json to write.")] = None,
):
    """K x N retrieval: top-1/3/10 (%) for audio->video and video->audio, mean and std over the draws.

    Example: ``siftkit curation eval --model runs/avva/m --clips runs/avva/test --k 100 --n 100``
    """
    check_range(k, "--k", lo=1, hi=MAX_DRAWS)
    check_range(n, "--n", lo=2)
    check_input_file(model / "model.pt", "--model")
    rows = _read_clips(_clips(clips))
    if n > len(rows):
        raise InputError(f"--n {n} exceeds the {len(rows)} clips", field="--n")
    if output:
        check_output_file(output)
    import numpy as np
    import torch

    from siftkit.core.io import atomic_write_text
    from siftkit.curation.evaluate import kxn_eval
    from siftkit.curation.model import DualEncoder, embed

    feats = _features(clips, len(rows))
    try:  # [ours] a file that is not a checkpoint of `train` is bad input, not a crash
        ck = torch.load(model / "model.pt", weights_only=False)
        c = ck["config"]
        m = DualEncoder(ck["d_audio"], ck["d_video"], c["hidden"], c["dim"], c["heads"], c["dropout"])
        m.load_state_dict(ck["state_dict"])
    except Exception as e:
        raise InputError(f"not a model written by `siftkit curation train` ({type(e).__name__}: {str(e)[:80]})",
                         model / "model.pt", field="--model") from None
    for side, d in (("audio", ck["d_audio"]), ("video", ck["d_video"])):
        if feats[side].shape[-1] != d:
            raise InputError(f'array "{side}" has {feats[side].shape[-1]} features per token; the model was trained '
                             f"on {d}", clips / "features.npz", field=side)
    res = kxn_eval(*embed(m, feats["audio"], feats["video"]), k=k, n=n, seed=seed)
    text = json.dumps(res, indent=1)
    if output:
        atomic_write_text(output, text)
    print(text)


def quickstart_step(ctx):
    """Synthetic world: describers on the signals, proxy judge, curated vs random vs all at 70%, K x N retrieval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from siftkit.core.report import Section
    from siftkit.curation.pipeline import TrainConfig, proxy_scores, run
    from siftkit.curation.synthetic import generate
    from siftkit.metrics import roc_auc

    o = ctx.options
    train_set = generate(int(o["clips"]), float(o["rho"]), ctx.seed)
    test_set = generate(int(o["test_clips"]), 0.0, ctx.seed + 10_000)
    scores = proxy_scores(train_set)
    auc = roc_auc(train_set.aligned.astype(int), scores)
    cfg = TrainConfig(epochs=int(o["epochs"]), lr=1e-3, hidden=64, dim=32, heads=4)
    rows = []
    for sub in ("curated", "random", "all"):
        r = run(train_set, test_set, sub, 0.7, ctx.seed, cfg, k=10, n=min(100, len(test_set)), scores=scores)
        rows.append({"subset": sub, "kept": r["kept"], "misaligned_in_kept": round(r["kept_misaligned_share"], 3),
                     **{m: round(r[m], 2) for m in ("a2v@1", "a2v@3", "a2v@10", "v2a@1", "v2a@3", "v2a@10")}})
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([scores[train_set.aligned], scores[~train_set.aligned]], bins=20, label=["aligned", "misaligned"])
    ax.set_xlabel("proxy judge final score")
    ax.legend()
    err = train_set.describer_error()
    text = (f"{len(train_set)} synthetic clips, {float(o['rho']):.0%} misaligned; captions from the describers run on "
            f"the signals (audio error {err['audio_describer_error']:.1%}, video {err['video_describer_error']:.1%}); "
            f"proxy judge ROC-AUC {auc:.3f}. Small heads, {int(o['epochs'])} epochs: a wiring check; the benchmark is "
            "benchmarks/results/avva.md.")
    return Section("AVVA curation (synthetic)", text=text, tables=[("curated vs random vs all (keep 70%)", table)],
                   figures=[("judge scores", fig)], metrics={"judge_auc": auc, **err,
                                                             **{f"{r['subset']}/a2v@1": r["a2v@1"] for r in rows}})


def register(registry) -> None:
    """Add ``siftkit curation ...`` and the quickstart step ``curation``."""
    from siftkit.core.plugins import QuickstartOption

    registry.app.add_typer(app, name="curation")
    registry.add_quickstart_step("curation", quickstart_step, order=80, options=[
        QuickstartOption("clips", int, 300, "synthetic training clips"),
        QuickstartOption("test_clips", int, 120, "clean synthetic test clips"),
        QuickstartOption("rho", float, 0.3, "share of misaligned training pairs"),
        QuickstartOption("epochs", int, 5, "training epochs per subset")])
