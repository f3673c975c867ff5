"""Loaders for QA files in Search-R1's formats (search_r1 spec §7); every row becomes
``{"uid", "question", "golds", "data_source", "split"}`` with a unique ``uid`` (GRPO groups by it, spec §6.1).

Formats, detected per row:

* Search-R1 parquet (``nq_search.py`` output): ``question``, ``golden_answers`` and
  ``reward_model.ground_truth.target`` (list), ``data_source``, ``extra_info.{split,index}``;
* DeepResearcher parquet / JSONL: bare question in ``prompt[0].content``, ``reward_model.ground_truth`` one string of
  aliases joined by ``<|answer_split|>``; its source names ``tq``/``2wiki``/``Bamboogle`` map to upstream's
  ``triviaqa``/``2wikimultihopqa``/``bamboogle`` [checked quirk];
* R1-Searcher JSONL: ``{idx, question, answer}``; the data source is the file name (``hotpotqa_500`` → hotpotqa).

Example:
    >>> rows = load_qa("../shared/data/search_r1/search_r1_nq_test/test.parquet")
    >>> rows[0]["uid"], rows[0]["golds"]
"""

from __future__ import annotations

import re
from pathlib import Path

from siftkit.core.errors import InputError

ANSWER_SPLIT = "<|answer_split|>"
SOURCE_ALIASES = {"tq": "triviaqa", "2wiki": "2wikimultihopqa", "Bamboogle": "bamboogle"}


def load_qa(path: str | Path, limit: int | None = None) -> list[dict]:
    """Read a ``.parquet`` or ``.jsonl`` QA file in any of the formats above."""
    from siftkit.core.io import iter_jsonl, read_parquet
    from siftkit.core.validate import check_input_file

    path = check_input_file(path)
    if path.suffix == ".parquet":
        raw = read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        raw = [obj for _, obj in iter_jsonl(path)]  # BOM, UTF-8, empty and truncated files as the core readers
    else:
        raise InputError("expected a .parquet or .jsonl file", path)
    stem = re.sub(r"_\d+$", "", path.stem)
    rows, seen = [], set()
    for n, r in enumerate(raw[:limit] if limit else raw, 1):
        try:
            row = _row(r, stem, n, path)
        except (KeyError, TypeError, IndexError, AttributeError) as e:  # a field of the wrong shape
            raise InputError(f"malformed QA record ({type(e).__name__}: {str(e)[:80]})", path, n) from None
        if row["uid"] in seen:
            row["uid"] = f"{row['uid']}#{n}"
        seen.add(row["uid"])
        rows.append(row)
    return rows


def _row(r: dict, stem: str, n: int, path: Path) -> dict:
    """One raw record → the common row."""
    if "reward_model" in r:
        gt = r["reward_model"]["ground_truth"]
        golds = gt["target"] if isinstance(gt, dict) else str(gt).split(ANSWER_SPLIT)
        question = r.get("question") or _question_from_prompt(r["prompt"][0]["content"])
        source = SOURCE_ALIASES.get(r.get("data_source", stem), r.get("data_source", stem))
        extra = r.get("extra_info") or {}
        split = extra.get("split", "")
        key = r.get("id") or extra.get("index", n)
    elif "question" in r and "answer" in r:
        golds = r["answer"] if isinstance(r["answer"], list) else [r["answer"]]
        question, source, split, key = r["question"], SOURCE_ALIASES.get(stem, stem), "", r.get("idx", n)
    else:
        raise InputError("unknown QA format (need reward_model, or question + answer)", path, n)
    golds = [str(g) for g in (list(golds) if not isinstance(golds, str) else [golds]) if str(g).strip()]
    if not question or not golds:
        raise InputError("empty question or answers", path, n)
    return {"uid": f"{source}-{split}-{key}" if split else f"{source}-{key}", "question": str(question).strip(),
            "golds": golds, "data_source": source, "split": split}


def _question_from_prompt(content: str) -> str:
    """The question inside a Search-R1 prompt, or the content itself when it is bare."""
    i = content.rfind("Question: ")
    return content[i + len("Question: "):].strip() if i >= 0 else content.strip()


def shared_files(root: str | Path) -> dict[str, Path]:
    """The QA files of ``../shared/data/search_r1`` that exist, by name."""
    root = Path(root)
    names = {"nq_test": "search_r1_nq_test/test.parquet", "deepresearcher_dev": "deepresearcher_7ds/dev.parquet",
             "deepresearcher_test": "deepresearcher_7ds/test.parquet",
             "bamboogle": "r1searcher_eval/bamboogle.jsonl", "hotpotqa_500": "r1searcher_eval/hotpotqa_500.jsonl",
             "2wiki_500": "r1searcher_eval/2wiki_500.jsonl", "musique_500": "r1searcher_eval/musique_500.jsonl"}
    return {k: root / v for k, v in names.items() if (root / v).exists()}
