"""benchmarks/xvlm2vec.py pieces that need no model: the seed interval, the AVVA image list and the MMMEB files of
the image+text check (gold first, per-language prompts and styles)."""

from __future__ import annotations

import json

import pytest

from benchmarks import xvlm2vec as bench


def test_t_interval_over_seeds():
    text, m, h = bench._ci([1.0, 2.0, 3.0])  # sd 1, t(0.975, 2) = 4.3027 → h = 4.3027 / √3
    assert m == 2.0 and h == pytest.approx(2.48417, abs=1e-4) and text == "2.000 ± 2.484"
    text, m, h = bench._ci([0.5])
    assert text == "0.500" and h != h  # one value: no interval


def test_avva_mmmeb_files(shared_data, tmp_path):
    images = bench.avva_images()
    assert len(images) == 13 and {c for c, _ in images} == set(bench.CLASSES)
    files = bench.mmmeb_files(tmp_path, "punct")
    assert set(files) == {(lang, task) for lang in ("en", "de", "fr", "it", "es") for task in ("i2t", "t2i")}
    i2t = [json.loads(x) for x in files[("de", "i2t")].read_text().splitlines()]
    assert len(i2t) == 13 and i2t[0]["qry_text"].endswith("beschreibt.")
    cls = next(c for c, p in images if p == i2t[0]["qry_img_path"])
    assert i2t[0]["tgt_text"][0] == f"Auf dem Bild: {bench.CLASSES[cls]['de']}."
    assert len(set(i2t[0]["tgt_text"])) == len(bench.CLASSES)
    t2i = [json.loads(x) for x in files[("fr", "t2i")].read_text().splitlines()]
    assert len(t2i) == len(bench.CLASSES) and all(len(set(r["tgt_img_path"])) == len(bench.CLASSES) for r in t2i)
