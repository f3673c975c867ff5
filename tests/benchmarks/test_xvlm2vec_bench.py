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


# --- the runner port: grid, hubness diagnostics, page and claims on hand-made cells ------------------------------

import numpy as np  # noqa: E402

from benchmarks.claims import verdicts  # noqa: E402
from benchmarks.claims.spec import load_claims  # noqa: E402

CFG = bench.XvlmBench()


def test_grid_and_profiles():
    g = bench.grid(CFG)
    assert len(g) == len({tuple(sorted(p.items())) for p in g})
    conds = [p["condition"] for p in g]
    assert conds.count("student") == conds.count("student_captions") == len(CFG.seeds)
    assert {"teacher", "e5", "throughput", "student_spec_lr"} <= set(conds) and conds[-1] == "e5"  # costliest last
    cpu, gpu = bench.BENCHMARK.load_config("cpu"), bench.BENCHMARK.load_config("gpu")
    assert bench.experiment(cpu) == "xvlm2vec_cpu" and bench.experiment(gpu) == "xvlm2vec_gpu"
    assert gpu.pairs_per_lang == 0 and gpu.epochs == 3 and cpu.pairs_per_lang == 400
    assert conds.count("student_spec_lr") == len(CFG.seeds)
    parts = {p.experiment: p for p in bench.BENCHMARK.parts}
    image, more, speed = parts["xvlm2vec_image"], parts["xvlm2vec_more"], parts["xvlm2vec_speed"]
    assert image.grid(gpu) == [] and len(image.grid(cpu)) == 1 + len(cpu.image_seeds)
    assert more.grid(gpu) == [] and {p["condition"] for p in more.grid(cpu)} == set(bench.MORE)
    assert speed.grid(gpu) == [] and speed.grid(cpu) == [{"pairs_per_lang": 200, "repeats": 3}]


def test_hubness_by_hand():
    # x0, x1 both closest to en0 (a hub): 2 distinct top-1s of 3 queries
    E_en = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    E_x = np.array([[1.0, 0.0], [0.8, 0.6], [-0.8, 0.6]])
    h = bench._hubness(E_x, E_en)
    assert h["top1_distinct"] == pytest.approx(2 / 3)
    # a shared offset w = (1, 1)/√2 × 5 on the x side: x_i = e_i + 5w. Raw scores x_i·e_j = e_i·e_j + 3.54·(±1):
    # queries 0, 1 find their own (4.54 vs 3.54), queries 2, 3 go to e1, e0 → top-1s {0, 1}: 2 distinct of 4.
    # Removing each side's mean (5w on x, 0 on en) leaves x_i = e_i: P@1 1 both ways.
    E_en = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    h = bench._hubness(E_en + 5 * np.array([1.0, 1.0]) / np.sqrt(2), E_en)
    assert h["top1_distinct"] == pytest.approx(2 / 4) and h["x2en_centred"] == 1.0 and h["en2x_centred"] == 1.0


def _metrics(base: float, retention: float = 1.0, sets=("tatoeba", "xtd10", "xtd10_heldout", "xtd10_dev")):
    m = {}
    for s in sets:
        for lang in CFG.langs:
            m |= {f"{s}/{lang}/{k}": base for k in ("x2en", "en2x", "x2en_centred", "en2x_centred", "top1_distinct")}
            m |= {f"{s}/{lang}/n": 100, f"{s}/{lang}/mse_x": 0.4}
        m |= {f"{s}/en/en_retention_p1": retention, f"{s}/en/en_cosine": 0.99}
    return m


def _cells(student_gain: float, captions_gain: float, retention: float = 1.0) -> list[dict]:
    out = [{"params": {"condition": "teacher", "seed": 0}, "metrics": _metrics(0.2)},
           {"params": {"condition": "e5", "seed": 0}, "metrics": _metrics(0.9)},
           {"params": {"condition": "throughput", "seed": 0},
            "metrics": {"device_name": "cpu", "threads": 1, "pairs": 320, "batch": 32, "repeats": 2,
                        "ours_pairs_per_s": 12.0, "ours_pairs_per_s_all": [12.0, 12.0],
                        "ours_shuffled_pairs_per_s": 6.0, "ours_shuffled_pairs_per_s_all": [6.0, 4.0],
                        "st_train_pairs_per_s": 10.0, "st_with_labels_pairs_per_s": 8.0,
                        "st_with_labels_pairs_per_s_all": [8.0, 10.0], "ratio_ours_shuffled_vs_st_with_labels": 0.75,
                        "ratio_ours_vs_st_with_labels": 1.5, "ratio_ours_vs_st_train_only": 1.2}}]
    for s in CFG.seeds:
        out.append({"params": {"condition": "student_spec_lr", "seed": s},
                    "metrics": _metrics(0.2, sets=("tatoeba", "xtd10_dev")) | {"train_pairs": 1600, "steps": 50}})
        out.append({"params": {"condition": "student", "seed": s},
                    "metrics": _metrics(0.2 + student_gain + 0.01 * s, retention) | {"train_pairs": 1600,
                                                                                       "steps": 50}})
        out.append({"params": {"condition": "student_captions", "seed": s},
                    "metrics": _metrics(0.2 + captions_gain + 0.01 * s, sets=("tatoeba", "xtd10_heldout",
                                                                              "xtd10_dev"))})
    return [{"experiment": "xvlm2vec_cpu", "status": "fresh", **c} for c in out]


def test_every_claim_arm_names_grid_cells():
    conds = {p["condition"] for p in bench.grid(CFG)}
    arms = [arm for c in load_claims() if c.method == "xvlm2vec" for comp in c.comparisons
            for arm in (comp.a, comp.b) if arm is not None]
    assert len(arms) >= 30 and {a.experiment for a in arms} == {"xvlm2vec_cpu", "xvlm2vec_gpu"}
    for arm in arms:
        assert arm.where["condition"] in conds, arm.where


@pytest.mark.parametrize("captions_gain, verdict", [(0.1, "holds"), (-0.1, "contradicted")])
def test_claims_and_page_follow_the_cells(captions_gain, verdict):
    cells = _cells(-0.05, captions_gain)
    got = {v.claim.id: v.verdict for v in verdicts("xvlm2vec", load=lambda e: [c for c in cells
                                                                               if c["experiment"] == e])}
    assert got["student-beats-teacher-xtd10"] == "contradicted"
    assert got["student-beats-teacher-xtd10-captions"] == verdict
    assert got["multilingual-reference-stays-stronger"] == "holds"
    assert got["student-beats-teacher-tatoeba-gpu"] == "missing cells"  # no GPU cells on the CPU page
    page = bench.page(CFG, cells)
    assert "{" not in page.split("## Paper claims")[0]  # every template field filled
    # student mean 0.16 (seeds 0.15, 0.16, 0.17) vs teacher 0.2: -0.040, interval below the teacher
    assert "Student, Tatoeba-trained minus teacher, x→en P@1: de -0.040 (interval below the teacher)" in page
    assert "| 12.0 | 6.0 | 10.0 | 8.0 | 1.50 | 1.20 | 0.75 |" in page
    assert ("On cpu (wall clock, 320 pairs) ours / ST incl. labels is 1.50 (per repeat: 1.50, 1.20), meeting the goal "
            "of ≥ 1; with ST's batch composition (ours, shuffled) it is 0.75 (per repeat: 0.75, 0.40).") in page
    assert "within the stated tolerance of 2 points" in page and "OUTSIDE" not in page
    assert "Every cell of the grid is on this page." in page
    fewer = [c for c in cells if c["params"] != {"condition": "student_captions", "seed": 2}]
    assert "**Not computed for this page**" in bench.page(CFG, fewer) and "student_captions seed 2." in bench.page(
        CFG, fewer)


def test_retention_outside_tolerance_is_said():
    page = bench.page(CFG, _cells(0.1, 0.1, retention=0.97))
    assert "P@1 0.970 against the teacher's 1.000, OUTSIDE the stated tolerance of 2 points" in page


def test_image_section_from_cells_or_said_missing():
    from siftkit.multilingual.data import STYLES

    assert "Not run for this page" in bench._image_section(CFG, [])
    langs = ("en", *bench.LANGS)
    recs = []
    for vlm, seeds in (("teacher", [0]), ("student", [0, 1, 2])):
        for s in seeds:
            m = {f"{st}/{l}/{t}": 0.1 * (s + 1) for st in STYLES for l in langs for t in ("i2t", "t2i")}
            m |= {f"mse/{l}": 2.0 - s for l in bench.LANGS} | {"images": 13, "train_pairs": 104}
            recs.append({"experiment": "xvlm2vec_image", "status": "fresh", "params": {"vlm": vlm, "seed": s},
                         "metrics": m})
    text = bench._image_section(CFG, recs)
    assert "{" not in text and "The 13 AVVA JPEGs" in text and "self-distilled on 104" in text
    assert "| student | 3 | plain | 0.200 ± 0.248 |" in text  # 0.1, 0.2, 0.3: sd 0.1, t 4.303 / √3
    assert "| teacher | 2.000 | 2.000 |" in text
