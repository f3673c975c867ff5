"""Evaluation of a (student) embedder: cross-lingual retrieval P@1 per language in both directions, MSE to the
teacher, English retention, and the MMMEB jsonl format.

All retrieval metrics use :func:`siftkit.metrics.top_k_accuracy` on cosine similarities of L2-normalised
embeddings: a candidate tied with the gold is not ranked below it (ties resolved in expectation), so constant
embeddings give 1/N, not 1. "P@k" follows the MMMEB code: hit@k (is the gold among the top ``k``).

* cross-lingual: ``x2en`` ranks the N English sides for each translation (gold: its own English sentence), ``en2x``
  the other way; N is the test set of that language.
* ``mse_x``/``mse_en``: 100 × MSE(S(x), T(en)) and 100 × MSE(S(en), T(en)) on normalised embeddings (the scale of
  sentence-transformers' MSEEvaluator).
* English retention [spec, issue 22]: student-English against teacher-English — P@1 of S(en) retrieving T(en)
  among the distinct English sentences, and the mean cosine of S(en)·T(en). The student "retains" English when that
  P@1 is within ``RETENTION_TOLERANCE`` (2 points) of the teacher's own (1.0 by construction).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from siftkit.core.errors import InputError
from siftkit.multilingual.data import Pair, english_key

Encode = Callable[[Sequence[str]], np.ndarray]
RETENTION_TOLERANCE = 0.02


def crosslingual_p_at_1(E_x: np.ndarray, E_en: np.ndarray) -> dict[str, float]:
    """x→en and en→x P@1 for row-aligned normalised embeddings (gold: the same row), ties against the gold."""
    from siftkit.metrics import top_k_accuracy

    S = E_x @ E_en.T  # (N, N)
    return {"x2en": float(top_k_accuracy(S, None, 1).mean()), "en2x": float(top_k_accuracy(S.T, None, 1).mean())}


def english_retention(S_en: np.ndarray, T_en: np.ndarray) -> dict[str, float]:
    """P@1 of student-English retrieving teacher-English (distinct rows), and the mean diagonal cosine."""
    from siftkit.metrics import top_k_accuracy

    return {"en_retention_p1": float(top_k_accuracy(S_en @ T_en.T, None, 1).mean()),
            "en_cosine": float(np.mean(np.sum(S_en * T_en, axis=1)))}


def memoized(encode: Encode) -> Encode:
    """``encode`` that embeds each distinct text once over its lifetime (XTD10's 1000 English captions recur
    in every language's test set) [ours: an efficiency choice; the embeddings are unchanged]."""
    cache: dict[str, np.ndarray] = {}

    def run(texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            for t, e in zip(todo, encode(todo)):
                cache[t] = e
        return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    return run


def evaluate_pairs(student: Encode, test: dict[str, list[Pair]], teacher: Encode | None = None) -> list[dict]:
    """One row per language (and an ``en`` row when a teacher is given): P@1 both ways; MSE and retention vs the
    teacher. ``student``/``teacher`` map texts to L2-normalised (n, d) arrays (each distinct text is embedded once)."""
    student = memoized(student)
    teacher = memoized(teacher) if teacher is not None else None
    rows, english = [], {}
    for lang, pairs in test.items():
        if not pairs:
            raise InputError(f"no test pairs for {lang}", field="--data")
        en = [p.en for p in pairs]
        E_en, E_x = student(en), student([p.x for p in pairs])
        row = {"lang": lang, "n": len(pairs), **crosslingual_p_at_1(E_x, E_en)}
        if teacher is not None:
            T_en = teacher(en)
            row["mse_x"] = float(100 * np.mean((E_x - T_en) ** 2))
            row["mse_en"] = float(100 * np.mean((E_en - T_en) ** 2))
        rows.append(row)
        for e in en:
            english.setdefault(english_key(e), e)
    if teacher is not None:
        texts = list(english.values())
        rows.append({"lang": "en", "n": len(texts), **english_retention(student(texts), teacher(texts))})
    return rows


def retained(rows: list[dict], tolerance: float = RETENTION_TOLERANCE) -> bool:
    """English retention within ``tolerance`` of the teacher's own P@1 (1.0)."""
    en = [r for r in rows if r["lang"] == "en"]
    if not en:
        raise InputError("no English retention row (evaluate with a teacher)", field="teacher")
    return en[0]["en_retention_p1"] >= 1.0 - tolerance


# ---------------------------------------------------------------------------------------------------------------------
# MMMEB: per-query candidate lists, gold at index 0
# ---------------------------------------------------------------------------------------------------------------------

MMMEB_SCHEMA = {"qry_text": ((str,), True), "tgt_text": ((list,), True), "qry_img_path": ((str,), False),
                "tgt_img_path": ((list,), False)}


def read_mmmeb(path) -> list[dict]:
    """An MMMEB-style jsonl: one query per line, ``qry_text`` (+ ``qry_img_path``), candidates ``tgt_text``
    (+ ``tgt_img_path``) with the gold at index 0 (the MMEB/VLM2Vec field names [ours: the paper's files are not in
    ../shared])."""
    from siftkit.core.io import iter_jsonl

    rows = []
    for i, obj in iter_jsonl(path, MMMEB_SCHEMA):
        if not obj["tgt_text"]:
            raise InputError("empty candidate list", path, i, "tgt_text")
        imgs = obj.get("tgt_img_path")
        if imgs is not None and len(imgs) != len(obj["tgt_text"]):
            raise InputError("tgt_img_path and tgt_text differ in length", path, i, "tgt_img_path")
        rows.append(obj)
    if not rows:
        raise InputError("no queries", path)
    return rows


def evaluate_mmmeb(rows: list[dict], encode_queries: Callable, encode_candidates: Callable,
                   ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Mean hit@k (MMMEB "P@k") with gold at candidate index 0, ties against the gold; candidates are embedded
    once (de-duplicated by text and image). ``encode_*(texts, images)`` → normalised (n, d)."""
    from siftkit.metrics import top_k_accuracy

    Q = encode_queries([r["qry_text"] for r in rows], [r.get("qry_img_path") for r in rows])  # (nq, d)
    keys: dict[tuple, int] = {}
    for r in rows:
        for j, t in enumerate(r["tgt_text"]):
            keys.setdefault((t, (r.get("tgt_img_path") or [None] * len(r["tgt_text"]))[j]), len(keys))
    C = encode_candidates([k[0] for k in keys], [k[1] for k in keys])  # (nc, d)
    out = {f"p@{k}": 0.0 for k in ks}
    for qi, r in enumerate(rows):
        imgs = r.get("tgt_img_path") or [None] * len(r["tgt_text"])
        idx = [keys[(t, im)] for t, im in zip(r["tgt_text"], imgs)]
        s = (C[idx] @ Q[qi])[None, :]  # (1, n_candidates)
        for k in ks:
            out[f"p@{k}"] += float(top_k_accuracy(s, [0], k)[0]) / len(rows)
    out["queries"] = len(rows)
    return out
