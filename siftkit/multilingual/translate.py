"""The spec's machine-translation step: English rows → packed translations through the shared LLM layer →
the parallel set (with drop counts per language).

xVLM2Vec translates each MMEB-train row once per language with ``google/madlad400-3b-mt``: the row is packed as
``Question: <qry>. Answer: <pos>. Answer: <neg>.`` (image tag stripped), sent with the prefix ``<2{lang}>``, and
the output is split on the localised markers (:func:`~siftkit.multilingual.data.parse_translation`); a row whose
split count mismatches is dropped. Here the translator is any :class:`~siftkit.llm.base.ChatModel` (the local
engines, an OpenAI-compatible endpoint serving madlad400 or an instruction model, or a test double), always through
the response cache (:func:`siftkit.llm.factory.make_chat_model`), so a killed run resumes where it stopped.

Prompt styles:

* ``madlad`` [spec]: the raw string ``<2de> Question: ...`` without a chat template (a seq2seq MT model);
* ``chat`` [ours]: one user message asking an instruction model for the translation only, naming the localised
  markers it must use (the parser needs them).

Rows (a ``.jsonl``): ``{"qry": str, "pos": str, "neg": str (optional), "image": path (optional)}``; ``qry`` and the
answers may start with the image tag ``<|image_1|>\\n``, which is re-attached to the translation after it returns.

Example:
    >>> res = translate_rows(rows, ["de", "it"], make_chat_model(endpoint=URL, model="madlad400"))  # doctest: +SKIP
    >>> res.pairs[0], res.drops                                                                      # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from siftkit.core.errors import InputError
from siftkit.multilingual.data import IMAGE_TAG, MARKERS, BuildResult, build_parallel_set, pack_row

PROMPT_STYLES = ("madlad", "chat")
LANG_NAMES = {"de": "German", "fr": "French", "it": "Italian", "es": "Spanish"}
ROW_SCHEMA = {"qry": ((str,), True), "pos": ((str,), True), "neg": ((str,), False), "image": ((str,), False)}


def answers_of(row: dict) -> list[str]:
    """The answers packed after the question: ``pos``, then ``neg`` when present."""
    return [row["pos"]] + ([row["neg"]] if row.get("neg") else [])


def translation_prompt(packed: str, lang: str, style: str = "madlad"):
    """The prompt that asks for ``packed`` (an English packed row) in ``lang``."""
    if lang not in LANG_NAMES:
        raise InputError(f'language "{lang}": expected one of {", ".join(LANG_NAMES)}', field="--langs")
    if style == "madlad":
        return f"<2{lang}> {packed}"
    if style == "chat":
        q, a = MARKERS[lang]
        return [{"role": "user", "content": (
            f"Translate the following text from English to {LANG_NAMES[lang]}. Write \"{q}:\" for \"Question:\" "
            f"and \"{a}:\" for \"Answer:\", keep every marker, and reply with the translation only.\n\n{packed}")}]
    raise InputError(f'prompt style "{style}": expected one of {", ".join(PROMPT_STYLES)}', field="--prompt-style")


def translate_rows(rows: Sequence[dict], langs: Sequence[str], llm, style: str = "madlad",
                   max_new_tokens: int = 2048, seed: int = 42, raise_failed: str | None = None) -> BuildResult:
    """Translate every row into every language with ``llm`` (one batched, cached ``generate``), then build the
    parallel set (:func:`~siftkit.multilingual.data.build_parallel_set`): pairs and drops per (language, reason).

    A generation that failed (finish reason ``error``) or came back empty counts as a ``missing`` drop, unless
    ``raise_failed`` is given: then any failed request raises :class:`~siftkit.core.errors.RequestsFailed` with it as
    the detail (e.g. ``"pairs.jsonl left as it was"``), so a command writes nothing and a rerun resumes from the cache.
    """
    from siftkit.llm.base import GenerationParams

    rows = [dict(r) for r in rows]
    jobs = [(i, lang) for i in range(len(rows)) for lang in langs]
    prompts = [translation_prompt(pack_row(rows[i]["qry"], answers_of(rows[i])), lang, style) for i, lang in jobs]
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    outs = llm.generate(prompts, params) if prompts else []
    failed = sum(1 for gen in outs if gen.finish_reasons[:1] == ["error"])
    if failed and raise_failed is not None:
        from siftkit.core.errors import RequestsFailed

        raise RequestsFailed(failed, len(outs), "translation", detail=raise_failed)
    for (i, lang), gen in zip(jobs, outs):
        text = gen.texts[0].strip() if gen.texts and gen.finish_reasons[:1] != ["error"] else ""
        if text and any(IMAGE_TAG in e for e in [rows[i]["qry"], *answers_of(rows[i])]):
            text = IMAGE_TAG + text  # stripped before translation, re-attached after (the pieces get theirs back)
        rows[i].setdefault("translations", {})[lang] = text
    built = [{"qry": r["qry"], "pos": r["pos"], "neg": r.get("neg"), "image": r.get("image"),
              "translations": r.get("translations")} for r in rows]
    return build_parallel_set(built, langs, seed=seed)


def read_rows(path: str | Path) -> list[dict]:
    """English rows from a ``.jsonl`` (:data:`ROW_SCHEMA`); an empty ``qry``/``pos`` is an error naming the line."""
    from siftkit.core.io import iter_jsonl

    path = Path(path)
    if path.suffix != ".jsonl":
        raise InputError("expected a .jsonl file of rows (qry, pos, optional neg and image)", path)
    rows = []
    for i, obj in iter_jsonl(path, ROW_SCHEMA):
        for key in ("qry", "pos"):
            if not obj[key].replace(IMAGE_TAG, "").strip():
                raise InputError(f"empty {key}", path, i, key)
        rows.append(obj)
    if not rows:
        raise InputError("no rows", path)
    return rows
