"""Parallel data for self-distillation: Tatoeba (vendored), XTD10 (read from ../shared), user TSV/JSONL, the
spec's parallel-set builder, the split by English sentence, and the plain/punct/newline prompt styles.

A parallel pair is ``Pair(en, x, lang, image)``: the English text, its translation into ``lang`` and an optional
image (a path) shared by both sides (xVLM2Vec pairs both texts with the same image).

Example:
    >>> pairs = load_tatoeba(["de"])["de"]
    >>> len(pairs), pairs[0].lang
    (1000, 'de')
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from siftkit.core.errors import InputError
from siftkit.core.io import iter_jsonl, iter_text_lines

LANGS = ("de", "fr", "it", "es")
_TATOEBA_CODES = {"de": "deu", "fr": "fra", "it": "ita", "es": "spa"}
STYLES = ("plain", "punct", "newline")
TATOEBA_DIR = Path(__file__).resolve().parents[1] / "data" / "tatoeba"


@dataclass(frozen=True)
class Pair:
    """One parallel item: English ``en``, its translation ``x`` into ``lang``, an optional shared ``image``."""

    en: str
    x: str
    lang: str
    image: str | None = None


# ---------------------------------------------------------------------------------------------------------------------
# method: the split by English sentence, the prompt styles, the parallel-set builder
# ---------------------------------------------------------------------------------------------------------------------

def english_key(text: str) -> str:
    """The identity of an English sentence for the split [ours]: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def split_by_english(pairs: dict[str, list[Pair]], test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[dict[str, list[Pair]], dict[str, list[Pair]]]:
    """Split every language's pairs into (train, test) by English sentence, across all languages at once.

    Tatoeba repeats English lines across languages (de and fr share 228 of 1000), so a per-language split would put
    a test sentence's English side into another language's training pairs. Here each distinct English sentence
    (:func:`english_key`) goes to test with probability ``test_fraction`` — a seeded hash, so the assignment of a
    sentence does not depend on which languages are loaded [ours] — and every pair follows its English sentence.

    Returns:
        ``(train, test)``, each ``lang -> pairs`` in the original order.
    """
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}", field="test_fraction")

    def is_test(en: str) -> bool:
        h = hashlib.sha256(f"{seed}:{english_key(en)}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2 ** 64 < test_fraction

    train = {lang: [p for p in ps if not is_test(p.en)] for lang, ps in pairs.items()}
    test = {lang: [p for p in ps if is_test(p.en)] for lang, ps in pairs.items()}
    return train, test


def apply_style(text: str, style: str) -> str:
    """A prompt in one of the spec's three styles: ``plain`` (final punctuation stripped), ``punct`` (``?`` for a
    question, else ``.``) or ``newline`` (punct, then ``\\n``)."""
    if style not in STYLES:
        raise InputError(f'style "{style}": expected one of {", ".join(STYLES)}', field="style")
    t = text.rstrip()
    plain = t.rstrip(".?!;:。 ")
    if style == "plain":
        return plain
    end = "?" if t.endswith("?") else "."
    return plain + end + ("\n" if style == "newline" else "")


# The MMMEB instructions per language [ours: our translations of the two VLM2Vec instructions the spec quotes; the
# paper's own per-language strings are not in ../shared]. Run each in the three STYLES.
PROMPTS = {
    "i2t": {"en": "Find an image caption describing the given everyday image",
            "de": "Finde eine Bildunterschrift, die das gegebene Alltagsbild beschreibt",
            "fr": "Trouve une légende décrivant l'image du quotidien donnée",
            "it": "Trova una didascalia che descriva l'immagine quotidiana data",
            "es": "Encuentra un pie de foto que describa la imagen cotidiana dada"},
    "image": {"en": "Represent the given image", "de": "Repräsentiere das gegebene Bild",
              "fr": "Représente l'image donnée", "it": "Rappresenta l'immagine data",
              "es": "Representa la imagen dada"},
}


def prompt(kind: str, lang: str, style: str) -> str:
    """The ``kind`` (``i2t`` query or ``image`` target) instruction in ``lang``, in ``style``."""
    if kind not in PROMPTS or lang not in PROMPTS[kind]:
        raise InputError(f'no "{kind}" prompt for language "{lang}"', field="lang")
    return apply_style(PROMPTS[kind][lang], style)


# Localised markers of the packed translation "Question: <qry>. Answer: <pos>. ..." (xVLM2Vec's parser).
MARKERS = {"en": ("Question", "Answer"), "it": ("Domanda", "Risposta"), "es": ("Pregunta", "Respuesta"),
           "fr": ("Question", "Réponse"), "de": ("Frage", "Antwort")}
IMAGE_TAG = "<|image_1|>\n"


def pack_row(qry: str, answers: Sequence[str]) -> str:
    """The English text sent to the translator: ``Question: <qry>. Answer: <a1>. Answer: <a2>.`` (image tag
    stripped; it is re-attached after translation)."""
    parts = [f"Question: {qry.replace(IMAGE_TAG, '').strip()}."]
    parts += [f"Answer: {a.replace(IMAGE_TAG, '').strip()}." for a in answers]
    return " ".join(parts)


def parse_translation(text: str, lang: str, n_answers: int) -> list[str] | None:
    """Split a translated packed row on the localised markers → ``[qry, a1, ...]``, or ``None`` when the split
    count differs from the English row's (the row is then dropped)."""
    if lang not in MARKERS:
        raise InputError(f'language "{lang}": expected one of {", ".join(MARKERS)}', field="lang")
    q, a = MARKERS[lang]
    pieces = re.split(rf"\b(?:{re.escape(q)}|{re.escape(a)})\s*:", text)
    pieces = [p.strip() for p in pieces[1:]] if pieces and not pieces[0].strip() else None
    if pieces is None or len(pieces) != 1 + n_answers or not all(pieces):
        return None
    return [p.rstrip(".").strip() for p in pieces]


def match_ending(en: str, x: str) -> str:
    """Normalise the translation's trailing punctuation and newline to the English side's."""
    m = re.search(r"[.?!;:]*\s*$", en)
    return x.rstrip().rstrip(".?!;:").rstrip() + (m.group(0) if m else "")


@dataclass
class BuildResult:
    """The parallel set, and how many rows were dropped per (language, reason)."""

    pairs: list[Pair]
    drops: Counter
    rows: Counter


def build_parallel_set(rows: Iterable[dict], langs: Sequence[str], seed: int = 42) -> BuildResult:
    """The spec's parallel-set builder from translated rows.

    Each row is ``{"qry": ..., "pos": [...] or str, "neg": str (optional), "image": path or None,
    "translations": {lang: packed text}}`` (English ``qry``/``pos`` may start with the image tag); the packed text
    holds the question, the positives and the negative, in that order. Per language, a row gives the pairs
    (qry_en, qry_x) and (pos_en, pos_x), each with the row's image (the negative is translated, never paired). A row is dropped, and counted, when its translation is missing
    (``missing``), its marker split count mismatches (``split_count``), or the English side has an image tag that
    the translation lost (``image_tag``). Trailing punctuation/newlines follow the English side; the result is
    shuffled with ``seed``.
    """
    pairs, drops, seen = [], Counter(), Counter()
    for row in rows:
        positives = [row["pos"]] if isinstance(row["pos"], str) else list(row["pos"])
        answers = positives + ([row["neg"]] if row.get("neg") else [])
        english = [row["qry"], *answers]
        for lang in langs:
            seen[lang] += 1
            text = (row.get("translations") or {}).get(lang)
            if not text:
                drops[(lang, "missing")] += 1
                continue
            has_tag = text.lstrip().startswith(IMAGE_TAG.strip())
            body = text.lstrip()[len(IMAGE_TAG.strip()):] if has_tag else text
            parsed = parse_translation(body, lang, len(answers))
            if parsed is None:
                drops[(lang, "split_count")] += 1
                continue
            if any(IMAGE_TAG in e for e in english) and not has_tag:  # the tag is re-attached before the markers
                drops[(lang, "image_tag")] += 1
                continue
            for e, x in zip(english[:1 + len(positives)], parsed):
                tag = IMAGE_TAG if e.startswith(IMAGE_TAG) else ""
                pairs.append(Pair(e, tag + match_ending(e.replace(IMAGE_TAG, ""), x), lang, row.get("image")))
    random.Random(seed).shuffle(pairs)
    return BuildResult(pairs, drops, seen)


# ---------------------------------------------------------------------------------------------------------------------
# plumbing: readers
# ---------------------------------------------------------------------------------------------------------------------

def _read_lines(path: Path) -> list[str]:
    """The lines of a text file, read by lines (the it/es XTD10 files lack a final newline)."""
    return [line.rstrip("\r\n") for _, line in iter_text_lines(path)]


def check_langs(langs: Sequence[str]) -> list[str]:
    langs = list(langs)
    bad = [lang for lang in langs if lang not in LANGS]
    if bad or not langs:
        raise InputError(f'languages {",".join(bad) or "(none)"}: expected some of {", ".join(LANGS)}',
                         field="--langs")
    return langs


def load_tatoeba(langs: Sequence[str] = LANGS, root: str | Path | None = None) -> dict[str, list[Pair]]:
    """Tatoeba en↔``langs`` pairs (1000 per language; the vendored sample unless ``root`` is given)."""
    root = Path(root) if root is not None else TATOEBA_DIR
    out = {}
    for lang in check_langs(langs):
        code = _TATOEBA_CODES[lang]
        en = _read_lines(root / f"tatoeba.{code}-eng.eng")
        x = _read_lines(root / f"tatoeba.{code}-eng.{code}")
        if len(en) != len(x):
            raise InputError(f"{len(en)} English lines but {len(x)} {lang} lines", root / f"tatoeba.{code}-eng.{code}")
        out[lang] = [Pair(e, t, lang) for e, t in zip(en, x)]
    return out


def xtd10_dir() -> Path | None:
    """``../shared/data/xvlm2vec/xtd10`` when present (non-commercial licence: read there, never copied)."""
    from siftkit.core.assets import shared_data_dir

    d = shared_data_dir()
    return d / "xvlm2vec" / "xtd10" if d is not None and (d / "xvlm2vec" / "xtd10").is_dir() else None


def load_xtd10(langs: Sequence[str] = LANGS, root: str | Path | None = None) -> dict[str, list[Pair]]:
    """XTD10: 1000 COCO captions, line-aligned across en/de/fr/it/es → ``lang -> pairs`` (a test set only)."""
    root = Path(root) if root is not None else xtd10_dir()
    if root is None:
        raise InputError("XTD10 not found: expected ../shared/data/xvlm2vec/xtd10 (or $SIFTKIT_SHARED)",
                         field="--data")
    en = _read_lines(root / "test_1kcaptions_en.txt")
    out = {}
    for lang in check_langs(langs):
        x = _read_lines(root / f"test_1kcaptions_{lang}.txt")
        if len(x) != len(en):
            raise InputError(f"{len(x)} captions, but {len(en)} English ones", root / f"test_1kcaptions_{lang}.txt")
        out[lang] = [Pair(e.strip(), t.strip(), lang) for e, t in zip(en, x)]
    return out


def load_parallel(path: str | Path, default_lang: str = "x") -> dict[str, list[Pair]]:
    """User parallel data → ``lang -> pairs``.

    * ``.tsv``: ``en<TAB>x`` with optional third column ``lang`` and fourth ``image`` (no header);
    * ``.jsonl``: objects with ``en``, ``x`` and optional ``lang``, ``image``.

    Empty sides are an :class:`InputError` naming the line.
    """
    path = Path(path)
    out: dict[str, list[Pair]] = {}
    if path.suffix == ".jsonl":
        schema = {"en": ((str,), True), "x": ((str,), True), "lang": ((str,), False), "image": ((str,), False)}
        for i, obj in iter_jsonl(path, schema):
            _add(out, obj["en"], obj["x"], obj.get("lang") or default_lang, obj.get("image"), path, i)
    elif path.suffix in (".tsv", ".txt"):
        for i, line in iter_text_lines(path):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) < 2 or len(cols) > 4:
                raise InputError(f"expected 2 to 4 tab-separated columns (en, x, lang, image), got {len(cols)}",
                                 path, i)
            _add(out, cols[0], cols[1], cols[2] if len(cols) > 2 and cols[2] else default_lang,
                 cols[3] if len(cols) > 3 and cols[3] else None, path, i)
    else:
        raise InputError("expected a .tsv or .jsonl file of parallel pairs", path)
    if not out:
        raise InputError("no pairs", path)
    return out


def _add(out, en, x, lang, image, path, line) -> None:
    if not en.strip():
        raise InputError("empty English side", path, line, "en")
    if not x.strip():
        raise InputError("empty translation", path, line, "x")
    out.setdefault(lang, []).append(Pair(en.strip(), x.strip(), lang, image))
