"""xVLM2Vec self-distillation at small scale, on the benchmark runner.

    nice -n 5 python -m benchmarks run xvlm2vec --profile cpu   # the cells (one per condition and seed; resumable)
    python -m benchmarks page xvlm2vec --profile cpu            # benchmarks/results/xvlm2vec.md from the stored cells

Settings: benchmarks/config/xvlm2vec.yaml (:class:`XvlmBench`); prose: benchmarks/templates/xvlm2vec.md; claims:
benchmarks/claims/xvlm2vec.yaml. One experiment per scale (``xvlm2vec_cpu``, ``xvlm2vec_gpu``), a cell per
``condition`` (and seed):

* ``teacher`` / ``e5`` / ``student``: MiniLM before training, multilingual-e5-small, and MiniLM self-distilled on
  Tatoeba (split by English sentence across the four languages), each evaluated on held-out Tatoeba, on all 1000
  XTD10 captions (1000-way caption retrieval, never trained on) and on the held-out half of XTD10;
* ``student_captions``: MiniLM self-distilled with the same recipe on XTD10 captions: the *training half* (split by
  English caption across the languages, so no held-out caption is trained on in any language) minus its development
  split, evaluated on the held-out half, the development split and held-out Tatoeba;
* ``student_spec_lr``: the Tatoeba student at the spec's lr 1e-5 (one seed), for the diagnosis;
* the diagnosis of the XTD10 drop reads every cell's ``xtd10_dev`` metrics: a development split carved out of XTD10's
  training half (the held-out half is never used to choose anything): P@1, the share of distinct top-1 targets
  (hubness) and P@1 after removing each side's mean;
* ``throughput``: pairs/s of our trainer against sentence-transformers' ``MSELoss`` on the same model, pairs, batch
  and device, in the same process (alternating repeats).

A part, ``xvlm2vec_image``: the tiny random VLM on the AVVA JPEGs, MMMEB i2t/t2i per language and prompt style.
"""

from __future__ import annotations

import functools
import json
import statistics
import time
from pathlib import Path

from benchmarks.runner import BenchConfig, Benchmark, Part, flag

TEMPLATE = Path(__file__).resolve().parent / "templates" / "xvlm2vec.md"
IMAGE_TEMPLATE = TEMPLATE.with_name("xvlm2vec_image.md")


class XvlmBench(BenchConfig):
    """Settings of the xVLM2Vec benchmark (defaults: the cpu profile's run)."""

    scale: str = "cpu"
    """which run the cells belong to (``cpu`` or ``gpu``): names the cell folder ``xvlm2vec_<scale>``."""
    model: str = "minilm"
    """the teacher = the student's initialisation (a siftkit.embed sentence-transformers name or folder)."""
    langs: list[str] = ["de", "fr", "it", "es"]
    """non-English languages (Tatoeba and XTD10)."""
    test_fraction: float = 0.2
    """share of distinct English Tatoeba sentences held out (across all languages)."""
    split_seed: int = 0
    """seed of the splits by English sentence / caption."""
    xtd_test_fraction: float = 0.5
    """share of distinct English XTD10 captions held out for the captions-trained condition."""
    dev_fraction: float = 0.25
    """share of XTD10's training half used as the development split of the diagnosis."""
    pairs_per_lang: int = 400
    """training pairs per language (the first ones of the training split; 0 = all)."""
    lr: float = 5e-5
    epochs: int = 1
    train_batch: int = 32
    """pairs per optimiser step."""
    seeds: list[int] = [0, 1, 2]
    """training seeds of the students."""
    throughput_pairs: int = 320
    """pairs of the throughput epoch (the first training pairs; 0 = all)."""
    throughput_repeats: int = 3
    image_seeds: list[int] = [0, 1, 2]
    image_lr: float = 1e-3
    image_batch: int = 16
    image_epochs: int = 3


def experiment(cfg: XvlmBench) -> str:
    return f"xvlm2vec_{cfg.scale}"


def grid(cfg: XvlmBench) -> list[dict]:
    """In cost order, so an interrupted run keeps the cheap cells."""
    cells = [{"condition": "teacher", "seed": 0}, {"condition": "throughput", "seed": 0}]
    cells += [{"condition": c, "seed": s} for c in ("student", "student_captions") for s in cfg.seeds]
    return cells + [{"condition": "student_spec_lr", "seed": s} for s in cfg.seeds] + [{"condition": "e5", "seed": 0}]


# ---------------------------------------------------------------------------------------------------------------------
# data and models
# ---------------------------------------------------------------------------------------------------------------------

@functools.cache
def _tatoeba(langs: tuple, test_fraction: float, seed: int):
    from siftkit.multilingual.data import load_tatoeba, split_by_english

    return split_by_english(load_tatoeba(langs), test_fraction, seed=seed)


@functools.cache
def _xtd10(langs: tuple, test_fraction: float, seed: int):
    """(all 1000 captions, training half, held-out half) per language, split by English caption."""
    from siftkit.multilingual.data import load_xtd10, split_by_english

    full = load_xtd10(langs)
    return (full, *split_by_english(full, test_fraction, seed=seed))


def _sets(cfg: XvlmBench):
    """((Tatoeba train, test), (XTD10 all, train, held-out)), and the development split of XTD10's training half:
    (train minus dev, dev), split by English caption with seed ``split_seed + 1``."""
    from siftkit.multilingual.data import split_by_english

    langs = tuple(cfg.langs)
    xtd = _xtd10(langs, cfg.xtd_test_fraction, cfg.split_seed)
    return (_tatoeba(langs, cfg.test_fraction, cfg.split_seed), xtd,
            split_by_english(xtd[1], cfg.dev_fraction, seed=cfg.split_seed + 1))


def _first(pairs: dict, n: int) -> list:
    return [p for ps in pairs.values() for p in (ps[:n] if n else ps)]


def _minilm(model: str, device: str):
    from siftkit.embed import SentenceTransformerEmbedder
    from siftkit.multilingual.encoder import KDEncoder

    emb = SentenceTransformerEmbedder(model, device=device)
    emb.model.float()  # a copy stored in fp16 trains and evaluates in fp32
    return KDEncoder(emb)


def _distill(cfg: XvlmBench, pairs: list, seed: int, lr: float | None = None):
    from siftkit.multilingual.train import DistillConfig, distill

    student = _minilm(cfg.model, cfg.device)
    teacher = student.frozen_copy()
    res = distill(student, pairs, DistillConfig(seed=seed, lr=lr or cfg.lr, epochs=cfg.epochs,
                                                batch_size=cfg.train_batch), teacher=teacher, progress=False)
    return student, teacher, {"steps": res.steps, "loss_first": res.losses[0], "loss_last": res.losses[-1],
                              "pairs_per_s": res.pairs_per_s, "train_pairs": len(pairs)}


def _flatten(rows: list[dict], prefix: str) -> dict:
    return {f"{prefix}{r['lang']}/{k}": v for r in rows for k, v in r.items()
            if k != "lang" and isinstance(v, (int, float))}


def _evaluate(student, teacher, sets: dict) -> dict:
    """``evaluate_pairs`` on each named test set (one memo per model, so a text is embedded once per cell), plus
    the hubness diagnostics of :func:`_hubness`."""
    from siftkit.multilingual.evaluate import evaluate_pairs, memoized

    student = memoized(student)
    teacher = memoized(teacher) if teacher is not None else None
    out = {}
    for name, test in sets.items():
        out |= _flatten(evaluate_pairs(student, test, teacher), f"{name}/")
        for lang, pairs in test.items():
            out |= {f"{name}/{lang}/{k}": v for k, v in _hubness(student([p.x for p in pairs]),
                                                                  student([p.en for p in pairs])).items()}
    return out


def _hubness(E_x, E_en) -> dict:
    """Diagnostics of x→en retrieval [ours]: the share of distinct English items among the top-1 answers (1.0 when
    every query gets its own; low when a few "hub" captions answer many queries), and x→en / en→x P@1 after
    subtracting each side's mean embedding and re-normalising (what is left when a shared language offset is
    removed)."""
    import numpy as np

    from siftkit.multilingual.evaluate import crosslingual_p_at_1

    top1 = (E_x @ E_en.T).argmax(axis=1)
    cx, ce = E_x - E_x.mean(0), E_en - E_en.mean(0)
    cx /= np.linalg.norm(cx, axis=1, keepdims=True)
    ce /= np.linalg.norm(ce, axis=1, keepdims=True)
    centred = crosslingual_p_at_1(cx, ce)
    return {"top1_distinct": len(set(top1.tolist())) / len(top1), "x2en_centred": centred["x2en"],
            "en2x_centred": centred["en2x"]}


# ---------------------------------------------------------------------------------------------------------------------
# the cell
# ---------------------------------------------------------------------------------------------------------------------

def cell(cfg: XvlmBench, params: dict) -> dict:
    import torch

    torch.set_num_threads(cfg.threads)
    cond = params["condition"]
    if cond == "throughput":
        return throughput(cfg)
    (tat_train, tat_test), (xtd_all, _, xtd_test), (xtd_train, xtd_dev) = _sets(cfg)
    sets = {"tatoeba": tat_test, "xtd10": xtd_all, "xtd10_heldout": xtd_test, "xtd10_dev": xtd_dev}
    out = {"device": cfg.device}
    if cond == "e5":
        from siftkit.embed import load_embedder

        emb = load_embedder("e5", num_threads=cfg.threads)
        return out | _evaluate(lambda t: emb.encode_queries(list(t)), None, sets)
    if cond == "teacher":
        teacher = _minilm(cfg.model, cfg.device)
        return out | _evaluate(teacher.encode, teacher.encode, sets)
    if cond == "student":
        student, teacher, info = _distill(cfg, _first(tat_train, cfg.pairs_per_lang), params["seed"])
    elif cond == "student_captions":  # trained on XTD10 captions: not evaluated on all 1000
        student, teacher, info = _distill(cfg, _first(xtd_train, cfg.pairs_per_lang), params["seed"])
        del sets["xtd10"]
    elif cond == "student_spec_lr":  # the diagnosis only: the development split and Tatoeba
        student, teacher, info = _distill(cfg, _first(tat_train, cfg.pairs_per_lang), params["seed"], lr=1e-5)
        sets = {"tatoeba": tat_test, "xtd10_dev": xtd_dev}
    else:
        raise ValueError(f"unknown condition {cond!r}")
    return out | info | _evaluate(student.encode, teacher.encode, sets)


# ---------------------------------------------------------------------------------------------------------------------
# throughput: our trainer vs sentence-transformers' MSELoss, same model, pairs, batch, device, process
# ---------------------------------------------------------------------------------------------------------------------

def _throughput_once(cfg: XvlmBench, pairs: list, rep: int = 0) -> dict:
    """Pairs/s of one epoch: ours (teacher targets computed once inside ``distill``; the spec's length-grouped
    batches, and, as a second row, plain shuffled batches) vs sentence-transformers' ``MSELoss`` on the (english,
    non_english) columns with the teacher labels computed first (its ``make_multilingual`` recipe), in a plain loop
    with the same clipping and the optimiser its Trainer uses by default here (fused AdamW, transformers' default for
    torch >= 2.8; the Trainer itself needs ``datasets``). Odd repeats run ST first, so neither side always goes first."""
    import torch
    from sentence_transformers.losses import MSELoss

    from siftkit.multilingual.train import DistillConfig, adamw, distill

    sync = torch.cuda.synchronize if cfg.device.startswith("cuda") else (lambda: None)
    B = cfg.train_batch
    out = {}

    def ours():
        for key, grouped in (("ours_pairs_per_s", True), ("ours_shuffled_pairs_per_s", False)):
            res = distill(_minilm(cfg.model, cfg.device), pairs,
                          DistillConfig(seed=0, lr=cfg.lr, batch_size=B, group_by_length=grouped), progress=False)
            out[key] = res.pairs_per_s

    if rep % 2 == 0:
        ours()
    st, st_teacher = _minilm(cfg.model, cfg.device).module, _minilm(cfg.model, cfg.device).module
    sync()
    t0 = time.perf_counter()
    labels = st_teacher.encode([p.en for p in pairs], batch_size=B, convert_to_tensor=True).clone()  # (n, d)
    sync()
    t_label = time.perf_counter() - t0
    loss_fn = MSELoss(st)
    opt = adamw([p for p in st.parameters() if p.requires_grad], cfg.lr, 0.0)
    st.train()
    t0 = time.perf_counter()
    for i in range(0, len(pairs), B):
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
    sync()
    t_train = time.perf_counter() - t0
    out["st_train_pairs_per_s"] = len(pairs) / t_train
    out["st_with_labels_pairs_per_s"] = len(pairs) / (t_train + t_label)
    if rep % 2 == 1:
        ours()
    return out


def throughput(cfg: XvlmBench) -> dict:
    """:func:`_throughput_once` ``throughput_repeats`` times after a warm-up (ours and theirs alternate); medians,
    every value, and the ratios of the medians."""
    import torch

    from siftkit.multilingual.train import DistillConfig, distill

    (tat_train, _), _, _ = _sets(cfg)
    pairs = _first(tat_train, 0)
    pairs = pairs[:cfg.throughput_pairs] if cfg.throughput_pairs else pairs
    distill(_minilm(cfg.model, cfg.device), pairs[:2 * cfg.train_batch], DistillConfig(seed=0), progress=False)
    runs = [_throughput_once(cfg, pairs, rep) for rep in range(cfg.throughput_repeats)]
    out = {"pairs": len(pairs), "batch": cfg.train_batch, "repeats": len(runs), "device": cfg.device,
           "device_name": torch.cuda.get_device_name(0) if cfg.device.startswith("cuda") else "cpu",
           "threads": cfg.threads}
    for k in runs[0]:
        out[k] = statistics.median(r[k] for r in runs)
        out[f"{k}_all"] = [r[k] for r in runs]
    out["ratio_ours_vs_st_with_labels"] = out["ours_pairs_per_s"] / out["st_with_labels_pairs_per_s"]
    out["ratio_ours_vs_st_train_only"] = out["ours_pairs_per_s"] / out["st_train_pairs_per_s"]
    out["ratio_ours_shuffled_vs_st_with_labels"] = out["ours_shuffled_pairs_per_s"] / out["st_with_labels_pairs_per_s"]
    return out


MORE = {"student_all": (0, 1), "student_all_3ep": (0, 3)}  # condition -> (pairs per language, 0 = all; epochs)


def more_cell(cfg: XvlmBench, params: dict) -> dict:
    """The Tatoeba student with more training (``MORE``: every training pair, 1 or 3 epochs; the rest of the recipe
    as the ``student`` cells), evaluated on held-out Tatoeba and the XTD10 development split."""
    import torch

    torch.set_num_threads(cfg.threads)
    pairs_per_lang, epochs = MORE[params["condition"]]
    run = cfg.model_copy(update={"pairs_per_lang": pairs_per_lang, "epochs": epochs})
    (tat_train, tat_test), _, (_, xtd_dev) = _sets(cfg)
    student, teacher, info = _distill(run, _first(tat_train, pairs_per_lang), params["seed"])
    return {"device": cfg.device, "epochs": epochs} | info | _evaluate(student.encode, teacher.encode,
                                                                      {"tatoeba": tat_test, "xtd10_dev": xtd_dev})


SPEC_LR = {"tatoeba_spec_lr": "tatoeba", "captions_spec_lr": "captions"}  # condition -> training data, lr 1e-5


def spec_lr_cell(cfg: XvlmBench, params: dict) -> dict:
    """A student at the spec's lr 1e-5 (the rest of the recipe as the ``student`` cells) for the XTD10 claims:
    trained on Tatoeba (evaluated on all 1000 XTD10 captions and the held-out half) or on XTD10's training half minus
    the development split (evaluated on the held-out half and the development split)."""
    import torch

    torch.set_num_threads(cfg.threads)
    (tat_train, _), (xtd_all, _, xtd_test), (xtd_train, xtd_dev) = _sets(cfg)
    if SPEC_LR[params["condition"]] == "tatoeba":
        train, sets = tat_train, {"xtd10": xtd_all, "xtd10_heldout": xtd_test}
    else:
        train, sets = xtd_train, {"xtd10_heldout": xtd_test, "xtd10_dev": xtd_dev}
    student, teacher, info = _distill(cfg, _first(train, cfg.pairs_per_lang), params["seed"], lr=1e-5)
    return {"device": cfg.device} | info | _evaluate(student.encode, teacher.encode, sets)


def speed_cell(cfg: XvlmBench, params: dict) -> dict:
    """:func:`_throughput_once` on the first ``params["pairs_per_lang"]`` training pairs of each language, timed by
    the process's CPU time instead of the wall clock (``time.perf_counter`` stands for ``time.process_time`` during the
    repeats) [ours]: on a machine shared with other jobs the wall clock counts the time the process waits for a core,
    the CPU time does not. ``params["repeats"]`` repeats (alternating which trainer goes first) after a warm-up;
    medians, every value and the ratios of the medians."""
    from unittest import mock

    import torch

    from siftkit.multilingual.train import DistillConfig, distill

    torch.set_num_threads(cfg.threads)
    (tat_train, _), _, _ = _sets(cfg)
    pairs = _first(tat_train, params["pairs_per_lang"])
    distill(_minilm(cfg.model, cfg.device), pairs[:2 * cfg.train_batch], DistillConfig(seed=0), progress=False)
    with mock.patch("time.perf_counter", time.process_time):
        runs = [_throughput_once(cfg, pairs, rep) for rep in range(params["repeats"])]
    out = {"pairs": len(pairs), "batch": cfg.train_batch, "repeats": len(runs), "clock": "process CPU time",
           "device_name": "cpu", "threads": cfg.threads}
    for k in runs[0]:
        out[k] = statistics.median(r[k] for r in runs)
        out[f"{k}_all"] = [r[k] for r in runs]
    for name, ours in (("ratio_ours_vs_st_with_labels", "ours_pairs_per_s"),
                       ("ratio_ours_shuffled_vs_st_with_labels", "ours_shuffled_pairs_per_s")):
        out[name] = out[ours] / out["st_with_labels_pairs_per_s"]
        out[name + "_per_repeat"] = [r[ours] / r["st_with_labels_pairs_per_s"] for r in runs]
    out["ratio_ours_vs_st_train_only"] = out["ours_pairs_per_s"] / out["st_train_pairs_per_s"]
    return out


# ---------------------------------------------------------------------------------------------------------------------
# image+text path: the tiny random VLM on real JPEGs (the AVVA images), MMMEB-format i2t / t2i per language and style
# ---------------------------------------------------------------------------------------------------------------------

LANGS = ("de", "fr", "it", "es")  # the languages of the class captions below
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


def image_cell(cfg: XvlmBench, params: dict) -> dict:
    """The tiny random VLM (teacher) and its self-distilled student on (caption_en, caption_x, image) pairs of the
    train templates: MMMEB i2t/t2i P@1 per language and prompt style, x→en caption retrieval with the image."""
    import tempfile

    import torch

    from siftkit.embed import make_tiny_vlm
    from siftkit.multilingual.data import STYLES, Pair
    from siftkit.multilingual.encoder import kd_encoder
    from siftkit.multilingual.evaluate import evaluate_mmmeb, read_mmmeb
    from siftkit.multilingual.train import DistillConfig, distill

    torch.set_num_threads(cfg.threads)
    images = avva_images()
    with tempfile.TemporaryDirectory() as tmp:
        student = kd_encoder(make_tiny_vlm(Path(tmp) / "vlm", seed=0))
        teacher = student.frozen_copy()
        out = {"images": len(images), "device": "cpu"}
        if params["vlm"] == "student":
            pairs = [Pair(_caption(te, CLASSES[c]["en"]), _caption(tx, CLASSES[c][lang]), lang, path)
                     for c, path in images for lang in LANGS
                     for te, tx in zip(TRAIN_TEMPLATES["en"], TRAIN_TEMPLATES[lang])]
            res = distill(student, pairs, DistillConfig(seed=params["seed"], lr=cfg.image_lr, batch_size=cfg.image_batch,
                                                          epochs=cfg.image_epochs), teacher=teacher,
                          progress=False)
            out |= {"train_pairs": len(pairs), "steps": res.steps, "loss_first": res.losses[0],
                    "loss_last": res.losses[-1]}
        model = teacher if params["vlm"] == "teacher" else student
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




# ---------------------------------------------------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------------------------------------------------

def _ci(xs: list[float]) -> tuple[str, float, float]:
    """``"mean ± h"`` with h the 95% t-interval half-width over seeds (no interval for one value); mean, h."""
    import math

    from scipy import stats

    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return f"{m:.3f}", m, float("nan")
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    h = float(stats.t.ppf(0.975, len(xs) - 1)) * sd / math.sqrt(len(xs))
    return f"{m:.3f} ± {h:.3f}", m, h


NAMES = {"teacher": "teacher (MiniLM)", "student": "student, Tatoeba-trained",
         "student_spec_lr": "student, Tatoeba-trained, lr 1e-5", "student_captions": "student, XTD10-train-captions",
         "e5": "multilingual-e5-small", "student_all": "student, every Tatoeba training pair, 1 epoch",
         "student_all_3ep": "student, every Tatoeba training pair, 3 epochs",
         "tatoeba_spec_lr": "student, Tatoeba-trained, lr 1e-5",
         "captions_spec_lr": "student, XTD10-train-captions, lr 1e-5"}


def _table(cfg: XvlmBench, recs: list[dict], prefix: str, conds: tuple) -> tuple[str, dict]:
    """Markdown rows of x→en / en→x P@1 per language, English retention, cosine and MSE; and the
    (condition, lang, what) → (mean, half-width) summary."""
    langs = cfg.langs
    lines = ["| model | seeds | " + " | ".join(f"{l} x→en | {l} en→x" for l in langs) + " | en retention P@1 | "
             "en cosine | mean x MSE×100 |", "|" + "---|" * (5 + 2 * len(langs))]
    summary = {}
    for cond in conds:
        rs = [r for r in recs if r["params"]["condition"] == cond and f"{prefix}{langs[0]}/x2en" in r["metrics"]]
        if not rs:
            continue

        def agg(k):
            xs = [r["metrics"][prefix + k] for r in rs if prefix + k in r["metrics"]]
            return _ci(xs) if xs else ("–", None, None)

        cells = []
        for lang in langs:
            for d in ("x2en", "en2x"):
                text, m, h = agg(f"{lang}/{d}")
                summary[(cond, lang, d)] = (m, h)
                cells.append(text)
        mse = [sum(r["metrics"][f"{prefix}{l}/mse_x"] for l in langs) / len(langs) for r in rs
               if f"{prefix}{langs[0]}/mse_x" in r["metrics"]]
        ret = agg("en/en_retention_p1")
        summary[(cond, "en", "ret")] = ret[1:]
        cells += [ret[0], agg("en/en_cosine")[0], _ci(mse)[0] if mse else "–"]
        flags = "".join(sorted({flag(r) for r in rs}))
        lines.append(f"| {NAMES[cond]}{flags} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines), summary


def _verdict(cfg: XvlmBench, summary: dict, student: str = "student") -> str:
    """Student minus teacher per language (is the seeds' 95% interval above / below the deterministic teacher?)
    and English retention against the stated tolerance."""
    from siftkit.multilingual.evaluate import RETENTION_TOLERANCE

    if (student, cfg.langs[0], "x2en") not in summary or ("teacher", cfg.langs[0], "x2en") not in summary:
        return "(cells missing)"
    out, ups, downs = [], [], []
    for lang in cfg.langs:
        (s, h), (t, _) = summary[(student, lang, "x2en")], summary[("teacher", lang, "x2en")]
        note = (" (one seed, no interval)" if h != h else "" if s - h > t else
                " (interval below the teacher)" if s + h < t else " (interval covers the teacher)")
        (ups if s > t else downs).append(lang)
        out.append(f"{lang} {s - t:+.3f}{note}")
    trend = ("higher than the teacher's in every language" if not downs else
             "lower than the teacher's in every language" if not ups else
             f"higher in {', '.join(ups)}, lower in {', '.join(downs)}")
    ret, teacher_ret = summary[(student, "en", "ret")][0], summary[("teacher", "en", "ret")][0]
    ok = ret >= teacher_ret - RETENTION_TOLERANCE
    return (f"{NAMES[student][0].upper() + NAMES[student][1:]} minus teacher, x→en P@1: " + ", ".join(out) + f"; the student's mean is "
            f"{trend}. English retention (student-English retrieving teacher-English among the distinct English "
            f"sentences): P@1 {ret:.3f} against the teacher's {teacher_ret:.3f}, "
            + ("within" if ok else "OUTSIDE") + f" the stated tolerance of {100 * RETENTION_TOLERANCE:.0f} points.")


def _hub_table(cfg: XvlmBench, recs: list[dict], prefix: str, conds: tuple) -> str:
    """Mean over languages of x→en P@1, the share of distinct top-1 answers and x→en with the means removed."""
    lines = ["| model | seeds | mean x→en | mean en→x | mean top-1 distinct | mean x→en, means removed | "
             "mean en→x, means removed |", "|---|---|---|---|---|---|---|"]
    for cond in conds:
        rs = [r for r in recs if r["params"]["condition"] == cond and f"{prefix}{cfg.langs[0]}/x2en" in r["metrics"]]
        if not rs:
            continue
        col = lambda k: _ci([sum(r["metrics"][f"{prefix}{l}/{k}"] for l in cfg.langs) / len(cfg.langs)  # noqa: E731
                             for r in rs])[0]
        lines.append(f"| {NAMES[cond]} | {len(rs)} | {col('x2en')} | {col('en2x')} | {col('top1_distinct')} | "
                     f"{col('x2en_centred')} | {col('en2x_centred')} |")
    return "\n".join(lines)


def _throughput_table(rs: list[dict]) -> str:
    """The throughput rows of ``rs`` (cells of ``throughput`` or of the ``xvlm2vec_speed`` part) and the verdicts."""
    if not rs:
        return "(cells missing)"
    lines = ["| device | threads | pairs | batch | repeats | ours pairs/s | ours, shuffled pairs/s | "
             "ST MSELoss steps (train only) pairs/s | ST incl. teacher labels pairs/s | ours / ST incl. labels | "
             "ours / ST train only | ours, shuffled / ST incl. labels |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        t = r["metrics"]
        lines.append(f"| {t['device_name']}{flag(r)} | {t['threads']} | {t['pairs']} | {t['batch']} | {t['repeats']} | "
                     f"{t['ours_pairs_per_s']:.1f} | {t['ours_shuffled_pairs_per_s']:.1f} | "
                     f"{t['st_train_pairs_per_s']:.1f} | "
                     f"{t['st_with_labels_pairs_per_s']:.1f} | {t['ratio_ours_vs_st_with_labels']:.2f} | "
                     f"{t['ratio_ours_vs_st_train_only']:.2f} | {t['ratio_ours_shuffled_vs_st_with_labels']:.2f} |")
    verdicts = [f"On {r['metrics']['device_name']} ({r['metrics'].get('clock', 'wall clock')}, {r['metrics']['pairs']} "
                f"pairs) ours / ST incl. labels is {r['metrics']['ratio_ours_vs_st_with_labels']:.2f}"
                + " (per repeat: " + ", ".join(f"{a / b:.2f}" for a, b in zip(
                    r["metrics"]["ours_pairs_per_s_all"], r["metrics"]["st_with_labels_pairs_per_s_all"])) + "), "
                + ("meeting" if r["metrics"]["ratio_ours_vs_st_with_labels"] >= 1 else "BELOW")
                + " the goal of ≥ 1; with ST's batch composition (ours, shuffled) it is "
                + f"{r['metrics']['ratio_ours_shuffled_vs_st_with_labels']:.2f} (per repeat: "
                + ", ".join(f"{a / b:.2f}" for a, b in zip(r["metrics"]["ours_shuffled_pairs_per_s_all"],
                                                           r["metrics"]["st_with_labels_pairs_per_s_all"])) + ")"
                for r in rs]
    return "\n".join(lines) + "\n\n" + "; ".join(verdicts) + "."


def _image_tables(recs: list[dict]) -> tuple[str, str, dict]:
    if not recs:
        return "(cells missing)", "(cells missing)", {}
    from siftkit.multilingual.data import STYLES

    langs = ("en", *LANGS)
    lines = ["| model | seeds | style | " + " | ".join(f"{l} i2t | {l} t2i" for l in langs) + " |",
             "|" + "---|" * (3 + 2 * len(langs))]
    mse = ["| model | " + " | ".join(f"{l} MSE×100" for l in LANGS) + " |", "|" + "---|" * (1 + len(LANGS))]
    for cond in ("teacher", "student"):
        rs = [r for r in recs if r["params"]["vlm"] == cond]
        if not rs:
            continue
        for style in STYLES:
            cells = [_ci([r["metrics"][f"{style}/{l}/{t}"] for r in rs])[0] for l in langs for t in ("i2t", "t2i")]
            lines.append(f"| {cond}{flag(rs[0])} | {len(rs)} | {style} | " + " | ".join(cells) + " |")
        mse.append(f"| {cond} | " + " | ".join(_ci([r["metrics"][f"mse/{l}"] for r in rs])[0] for l in LANGS)
                   + " |")
    st = next((r["metrics"] for r in recs if r["params"]["vlm"] == "student"), {})
    return "\n".join(mse), "\n".join(lines), {"images": recs[0]["metrics"]["images"],
                                              "train_pairs": st.get("train_pairs", "–")}


def _missing(cfg: XvlmBench, main: list[dict]) -> str:
    """One line naming the grid cells this page has no cell for (they are not silently dropped)."""
    have = {tuple(sorted(c["params"].items())) for c in main}
    gone = [p for p in grid(cfg) if tuple(sorted(p.items())) not in have]
    if not gone:
        return "Every cell of the grid is on this page."
    return ("**Not computed for this page** (missing cells: `python -m benchmarks run xvlm2vec "
            "--profile cpu` computes them): "
            + ", ".join(f"{p['condition']} seed {p['seed']}" for p in gone) + ".")


def _image_section(cfg: XvlmBench, cells: list[dict]) -> str:
    if not cells:
        return ("## Image+text path: the tiny random VLM on real JPEGs\n\nNot run for this page (the "
                "`xvlm2vec_image` cells are missing; `python -m benchmarks run xvlm2vec --profile cpu` computes them).")
    img_mse, img_p1, img = _image_tables(cells)
    return IMAGE_TEMPLATE.read_text().format(
        image_mse=img_mse, image_p1=img_p1, image_n=img.get("images", "–"), image_classes=len(CLASSES),
        image_pairs=img.get("train_pairs", "–"), image_lr=cfg.image_lr, image_batch=cfg.image_batch,
        image_epochs=cfg.image_epochs).rstrip()


def page(cfg: XvlmBench, cells: list[dict]) -> str:
    from benchmarks.claims import claims_section

    main = [c for c in cells if c["experiment"] == experiment(cfg)]
    image = [c for c in cells if c["experiment"] == "xvlm2vec_image"]
    more = [c for c in cells if c["experiment"] == "xvlm2vec_more"]
    more_conds = ("teacher", "student", "student_all", "student_all_3ep")
    spec = [c for c in cells if c["experiment"] == "xvlm2vec_spec_lr"]
    base = ("teacher", "student", "tatoeba_spec_lr", "e5")
    held = ("teacher", "student", "student_captions", "e5")
    half_rows = ("teacher", "student", "tatoeba_spec_lr", "student_captions", "captions_spec_lr", "e5")
    tat_rows = ("teacher", "student", "student_spec_lr", "student_captions", "e5")
    every = ("teacher", "student", "student_spec_lr", "student_captions", "e5")
    tat, tat_sum = _table(cfg, main, "tatoeba/", tat_rows)
    xtd, xtd_sum = _table(cfg, main + spec, "xtd10/", base)
    half, half_sum = _table(cfg, main + spec, "xtd10_heldout/", half_rows)
    also = lambda summary, conds: "".join(  # noqa: E731  the spec-lr verdicts, where their cells exist
        "\n\n" + _verdict(cfg, summary, c) for c in conds if (c, cfg.langs[0], "x2en") in summary)
    dev, dev_sum = _table(cfg, main, "xtd10_dev/", every)
    n = lambda prefix: ", ".join(  # noqa: E731
        str(int(next((c["metrics"][f"{prefix}{l}/n"] for c in main if f"{prefix}{l}/n" in c["metrics"]), 0)))
        for l in cfg.langs)
    students = [c for c in main if c["params"]["condition"] == "student"]
    return TEMPLATE.read_text().format(
        langs="/".join(cfg.langs), test_pct=round(100 * cfg.test_fraction), split_seed=cfg.split_seed,
        xtd_test_pct=round(100 * cfg.xtd_test_fraction), dev_pct=round(100 * cfg.dev_fraction),
        pairs_per_lang=cfg.pairs_per_lang or "all", train_pairs=students[0]["metrics"]["train_pairs"] if students
        else "–", steps=students[0]["metrics"]["steps"] if students else "–", lr=cfg.lr, batch=cfg.train_batch, epochs=cfg.epochs, seeds=len(cfg.seeds),
        device=cfg.device, threads=cfg.threads, throughput_pairs=cfg.throughput_pairs or "all",
        n_tatoeba=n("tatoeba/"), n_heldout=n("xtd10_heldout/"), n_dev=n("xtd10_dev/"),
        tatoeba=tat, tatoeba_verdict=_verdict(cfg, tat_sum),
        tatoeba_captions_verdict=_verdict(cfg, tat_sum, "student_captions"),
        tatoeba_spec_lr_verdict=_verdict(cfg, tat_sum, "student_spec_lr"),
        xtd10=xtd, xtd10_verdict=_verdict(cfg, xtd_sum) + also(xtd_sum, ("tatoeba_spec_lr",)),
        heldout=half, heldout_verdict=_verdict(cfg, half_sum) + also(half_sum, ("tatoeba_spec_lr",)),
        heldout_captions_verdict=_verdict(cfg, half_sum, "student_captions") + also(half_sum, ("captions_spec_lr",)),
        hubness=_hub_table(cfg, main, "xtd10/", base), hubness_tatoeba=_hub_table(cfg, main, "tatoeba/", every),
        dev=dev, dev_verdicts="\n\n".join(_verdict(cfg, dev_sum, c) for c in every[1:4]),
        hubness_dev=_hub_table(cfg, main, "xtd10_dev/", every),
        throughput=_throughput_table([c for c in main if c["params"]["condition"] == "throughput"]),
        speed=_throughput_table([c for c in cells if c["experiment"] == "xvlm2vec_speed"]),
        image=_image_section(cfg, image),
        more=_table(cfg, main + more, "tatoeba/", more_conds)[0] if more else "(cells missing)",
        more_dev=_table(cfg, main + more, "xtd10_dev/", more_conds)[0] if more else "(cells missing)",
        more_steps="; ".join(sorted({f"{NAMES[c['params']['condition']]}: {c['metrics']['train_pairs']} pairs, "
                                     f"{c['metrics']['steps']} steps" for c in more + students})) or "–",
        missing=_missing(cfg, main),
        claims=claims_section("xvlm2vec", load=lambda name: [c for c in cells if c["experiment"] == name]),
    ).rstrip()


def _shared(sub: str) -> Path:
    from siftkit.core.assets import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / sub).is_dir():
        raise FileNotFoundError(f"needs ../shared/data/{sub} (or $SIFTKIT_SHARED)")
    return root / sub


_METHOD = ["siftkit/multilingual/train.py", "siftkit/multilingual/encoder.py", "siftkit/multilingual/evaluate.py",
           "siftkit/multilingual/data.py::Pair,english_key,split_by_english,_read_lines,check_langs,load_tatoeba,"
           "xtd10_dir,load_xtd10", "siftkit/embed/embedder.py", "siftkit/embed/pooling.py",
           "siftkit/metrics/similarity.py"]

_TATOEBA = Path(__file__).resolve().parents[1] / "siftkit" / "data" / "tatoeba"


def _text_inputs(cfg) -> dict[str, Path]:
    """The text parts' data folders, hashed into their cells: vendored Tatoeba and XTD10's captions in ../shared."""
    return {"tatoeba": _TATOEBA, "xtd10": _shared("xvlm2vec/xtd10")}


BENCHMARK = Benchmark(
    name="xvlm2vec", title="xVLM2Vec self-distillation (small scale)",
    config=XvlmBench, grid=grid, cell=cell, page=page, experiment=experiment,
    sources=_METHOD + ["benchmarks/xvlm2vec.py::cell,_throughput_once,throughput,_tatoeba,_xtd10,_sets,_first,"
                       "_minilm,_distill,_flatten,_evaluate,_hubness"],
    inputs=_text_inputs,
    parts=[Part("xvlm2vec_speed",
                grid=lambda cfg: [{"pairs_per_lang": 200, "repeats": 3}] if cfg.device == "cpu" else [],
                cell=speed_cell,
                sources=_METHOD + ["benchmarks/xvlm2vec.py::speed_cell,_throughput_once,_tatoeba,_xtd10,_sets,_first,"
                                   "_minilm"],
                inputs=lambda cfg: {"tatoeba": _TATOEBA}),
           Part("xvlm2vec_more",
                grid=lambda cfg: ([{"condition": c, "seed": cfg.seeds[0]} for c in MORE] if cfg.scale == "cpu"
                                  else []),
                cell=more_cell,
                sources=_METHOD + ["benchmarks/xvlm2vec.py::more_cell,MORE,_tatoeba,_xtd10,_sets,_first,_minilm,"
                                   "_distill,_flatten,_evaluate,_hubness"],
                inputs=_text_inputs),
           Part("xvlm2vec_spec_lr",
                grid=lambda cfg: ([{"condition": c, "seed": s} for c in ("captions_spec_lr", "tatoeba_spec_lr")
                                   for s in cfg.seeds] if cfg.scale == "cpu" else []),
                cell=spec_lr_cell,
                sources=_METHOD + ["benchmarks/xvlm2vec.py::spec_lr_cell,SPEC_LR,_tatoeba,_xtd10,_sets,_first,"
                                   "_minilm,_distill,_flatten,_evaluate,_hubness"],
                inputs=_text_inputs),
           Part("xvlm2vec_image",
                grid=lambda cfg: ([{"vlm": "teacher", "seed": 0}]
                                  + [{"vlm": "student", "seed": s} for s in cfg.image_seeds]
                                  if cfg.scale == "cpu" else []),
                cell=image_cell,
                sources=_METHOD + ["siftkit/multilingual/data.py::PROMPTS,STYLES,apply_style,prompt",
                                   "siftkit/embed/image_text.py", "siftkit/llm/testing.py",
                                   "benchmarks/xvlm2vec.py::image_cell,mmmeb_files,avva_images,_caption,CLASSES,"
                                   "TRAIN_TEMPLATES,TEST_TEMPLATE,LANGS"],
                inputs=lambda cfg: {"avva": _shared("avva")})],
)
