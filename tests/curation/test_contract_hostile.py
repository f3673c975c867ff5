"""A hostile user against ``siftkit curation``: clip folders with repeated ids, negative or NaN durations, a
features.npz that is not one, lacks an array or has the wrong number of rows; scores outside [0, 10]; a model file
that is not a checkpoint; an endpoint that is not a URL (issue 24). Each case runs through ``main()`` in the
contract driver and must be one ``siftkit:`` line naming the problem, exit 2, its folder unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.core.test_contract import Case, run_all


def clip_folder(d: Path, n: int = 6, rows: list[dict] | None = None, **arrays) -> Path:
    d.mkdir(parents=True)
    rows = rows or [{"id": f"c{i}", "audio_caption": "a dog barking", "video_caption": "a dog", "seconds": 3.0}
                    for i in range(n)]
    (d / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    feats = {"audio": np.zeros((n, 4, 8), np.float32), "video": np.zeros((n, 4, 8), np.float32), **arrays}
    np.savez(d / "features.npz", **feats)
    return d


def row(i, **over):
    return {"id": f"c{i}", "audio_caption": "a dog barking", "video_caption": "a dog", "seconds": 3.0, **over}


def make(w: Path) -> None:
    w.mkdir(parents=True)
    clip_folder(w / "good")
    clip_folder(w / "dup", rows=[row(0), row(1), row(0), row(3), row(4), row(5)])
    clip_folder(w / "negative", rows=[row(0), row(1, seconds=-3.0)] + [row(i) for i in range(2, 6)])
    (w / "nan").mkdir()
    (w / "nan" / "clips.jsonl").write_text(json.dumps(row(0)) + "\n" + json.dumps(row(1)).replace("3.0", "NaN") + "\n")
    np.savez(w / "nan" / "features.npz", audio=np.zeros((2, 4, 8)), video=np.zeros((2, 4, 8)))
    clip_folder(w / "rows", audio=np.zeros((5, 4, 8), np.float32))
    d = clip_folder(w / "keys")
    np.savez(d / "features.npz", x=np.zeros(3))
    d = clip_folder(w / "garbage")
    (d / "features.npz").write_text("not an archive\n")
    (w / "model").mkdir()
    (w / "model" / "model.pt").write_text("not a checkpoint\n")
    (w / "scores.jsonl").write_text(json.dumps({"id": "c0", "seconds": 3.0, "final": 11}) + "\n")
    (w / "out.jsonl").write_text("keep\n")
    (w / "na.wav").write_text("not audio\n")
    (w / "na.png").write_text("not an image\n")
    pair = {"id": "a", "audio": str(w / "na.wav"), "image": str(w / "na.png")}
    (w / "pairs.jsonl").write_text(json.dumps(pair) + "\n")
    (w / "pairs_dup.jsonl").write_text((json.dumps(pair) + "\n") * 2)
    (w / "out").mkdir()
    (w / "out" / "keep.txt").write_text("keep\n")


TRAIN = ["--output", "{w}/out", "--epochs", "1", "--hidden", "8", "--dim", "8", "--heads", "2"]
CASES = [
    ("score: an id twice", ["curation", "score", "--clips", "{w}/dup", "--output", "{w}/out.jsonl"],
     "dup/clips.jsonl:3: id 'c0' already on line 1"),
    ("score: a negative duration", ["curation", "score", "--clips", "{w}/negative", "--output", "{w}/out.jsonl"],
     'negative/clips.jsonl:2: field "seconds" must be a finite number > 0, got -3.0'),
    ("score: a NaN duration", ["curation", "score", "--clips", "{w}/nan", "--output", "{w}/out.jsonl"],
     'nan/clips.jsonl:2: field "seconds" must be a finite number > 0, got nan'),
    ("score --endpoint not a URL", ["curation", "score", "--clips", "{w}/good", "--judge", "m", "--endpoint",
                                    "localhost:8000", "--output", "{w}/out.jsonl"],
     "--endpoint: 'localhost:8000' is not an http"),
    ("train: features with too few rows", ["curation", "train", "--clips", "{w}/rows", *TRAIN],
     'array "audio" has shape (5, 4, 8) (float32); want numbers with one row per clip of clips.jsonl (6)'),
    ("train: features without the arrays", ["curation", "train", "--clips", "{w}/keys", *TRAIN],
     'array "audio" missing (the file holds: x)'),
    ("train: features not an archive", ["curation", "train", "--clips", "{w}/garbage", *TRAIN],
     "garbage/features.npz: not a NumPy .npz archive"),
    ("eval: a model file that is not a checkpoint", ["curation", "eval", "--model", "{w}/model", "--clips",
                                                     "{w}/good", "--k", "2", "--n", "4"],
     "model.pt: not a model written by `siftkit curation train`"),
    ("select: a score above 10", ["curation", "select", "--scores", "{w}/scores.jsonl", "--fraction", "0.5",
                                  "--output", "{w}/out.jsonl"],
     'scores.jsonl:1: field "final" must be in [0, 10] (or null: unscored), got 11'),
    ("describe --pairs: not a sound file, before Whisper loads", ["curation", "describe", "--pairs",
                                                                   "{w}/pairs.jsonl", "--output", "{w}/out"],
     "na.wav: cannot read audio"),
    ("describe --pairs: an id twice", ["curation", "describe", "--pairs", "{w}/pairs_dup.jsonl", "--output",
                                       "{w}/out"], "pairs_dup.jsonl:2: id 'a' already on line 1"),
    ("describe: a huge --synthetic (745 GB before the bound)", ["curation", "describe", "--synthetic", "99999999999",
                                                                "--output", "{w}/out"],
     "--synthetic: must be in [0, 1e+06], got 99999999999"),
    ("train: a huge --hidden (12 TB before the bound)", ["curation", "train", "--clips", "{w}/good", "--output",
                                                         "{w}/out", "--hidden", "99999999999"],
     "--hidden: must be in [1, 16384]"),
    ("eval: a huge --k (hours before the bound)", ["curation", "eval", "--model", "{w}/model", "--clips", "{w}/good",
                                                   "--k", "99999999999", "--n", "4"], "--k: must be in [1, 100000]"),
]


def test_hostile_curation_inputs_are_one_line_exit_2_and_leave_everything(tmp_path):
    cases = []
    for i, (name, argv, needle) in enumerate(CASES):
        w = tmp_path / "cases" / str(i)
        make(w)
        cases.append(Case(name, name, [a.replace("{w}", str(w)) for a in argv], w, names=needle))
    home = tmp_path / "home"
    home.mkdir()
    bad = run_all(cases, home)
    assert not bad, "\n".join(bad)
