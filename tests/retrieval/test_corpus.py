"""Corpus.from_jsonl: the Search-R1 JSONL format, and InputError with file:line and field for bad lines."""

from __future__ import annotations

import pytest

from siftkit.core.errors import InputError
from siftkit.retrieval import Corpus, Hit, split_title, to_trec


def test_reads_ids_contents_and_titles(corpus):
    assert len(corpus) == 10
    assert corpus[0] == {"id": "d0", "contents": corpus.contents[0]}
    assert split_title(corpus.contents[0])[0] == "Velmora"
    assert corpus.row("d4") == 4


def test_round_trip(corpus, tmp_path):
    corpus.to_jsonl(tmp_path / "c.jsonl")
    again = Corpus.from_jsonl(tmp_path / "c.jsonl")
    assert (again.ids, again.contents) == (corpus.ids, corpus.contents)


@pytest.mark.parametrize("bad, line, field, words", [
    ('{"id": "a", "contents": "x"', 2, None, "invalid JSON"),
    ('["a", "x"]', 2, None, "JSON object"),
    ('{"contents": "x"}', 2, "id", 'field "id" missing'),
    ('{"id": "b"}', 2, "contents", 'field "contents" missing'),
    ('{"id": ["b"], "contents": "x"}', 2, "id", "must be a string"),
    ('{"id": "b", "contents": 7}', 2, "contents", "must be a string"),
    ('{"id": "a", "contents": "again"}', 2, "id", "duplicate"),
    ('{"id": "b c", "contents": "x"}', 2, "id", "whitespace"),
])
def test_bad_line_names_file_line_and_field(tmp_path, bad, line, field, words):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"id": "a", "contents": "\\"A\\"\\ntext"}\n' + bad + "\n")
    with pytest.raises(InputError) as err:
        Corpus.from_jsonl(p)
    e = err.value
    assert (e.path, e.line, e.field) == (str(p), line, field)
    assert words in e.message
    assert f"{p}:{line}:" in str(e)


def test_blank_lines_skipped_int_ids_kept_as_strings(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text('{"id": 0, "contents": "zero"}\n\n{"id": "1", "contents": "one"}\n')
    assert Corpus.from_jsonl(p).ids == ["0", "1"]


def test_empty_corpus_is_an_error(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("\n")
    with pytest.raises(InputError, match="file is empty"):
        Corpus.from_jsonl(p)


def test_hit_title_text_and_trec_lines():
    h = Hit("7", 1.5, '"Oru"\nLanterns float.')
    assert (h.title, h.text) == ("Oru", "Lanterns float.")
    assert Hit("8", 1.0, "no title line").title is None
    lines = to_trec([[h, Hit("8", 0.5, "x")], []], run_name="bm25", qids=["q1", "q2"])
    assert lines == ["q1 Q0 7 1 1.500000 bm25", "q1 Q0 8 2 0.500000 bm25"]
