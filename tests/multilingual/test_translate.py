"""The machine-translation step through the LLM layer: prompts, canned translations → the parallel set with drop
counts, the response cache (a second run sends nothing), the testing chat models, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from siftkit.core.errors import InputError, RequestsFailed
from siftkit.llm.base import Generation, GenerationParams
from siftkit.llm.cache import CachedChatModel, ResponseCache
from siftkit.llm.testing import FakeChatModel
from siftkit.multilingual.data import pack_row
from siftkit.multilingual.translate import read_rows, translate_rows, translation_prompt

ROWS = [
    {"qry": "<|image_1|>\nFind a caption for the image", "pos": "A dog runs on grass.", "image": "dog.jpg"},
    {"qry": "What is red?", "pos": "An apple.", "neg": "The sky."},
    {"qry": "Where is the cat?", "pos": "On the sofa."},
]
CANNED = {  # the translator's outputs, keyed by the packed English row (pack_row, as the paper's code packs it)
    pack_row("Find a caption for the image", ["A dog runs on grass."]):
        "Frage: Finde eine Bildunterschrift. Antwort: Ein Hund läuft auf Gras.",
    pack_row("What is red?", ["An apple.", "The sky."]):
        "Frage: Was ist rot? Antwort: Ein Apfel. Antwort: Der Himmel.",
    pack_row("Where is the cat?", ["On the sofa."]):
        "Frage: Wo ist die Katze? Auf dem Sofa.",  # a lost marker: the row is dropped
}
CANNED = {f"<2de> {k}": v for k, v in CANNED.items()}


class CannedTranslator(FakeChatModel):
    def generate(self, prompts, params=None):
        params = params or GenerationParams()
        self._record([str(p) for p in prompts])
        return [Generation(texts=[CANNED[p]], finish_reasons=["stop"]) if p in CANNED
                else Generation(texts=[""], finish_reasons=["error"]) for p in prompts]


def test_prompts():
    assert translation_prompt("Question: Hi. Answer: Yo.", "it") == "<2it> Question: Hi. Answer: Yo."
    chat = translation_prompt("Question: Hi. Answer: Yo.", "de", "chat")
    assert chat[0]["role"] == "user" and "German" in chat[0]["content"] and '"Frage:"' in chat[0]["content"]
    with pytest.raises(InputError):
        translation_prompt("x", "pt")
    with pytest.raises(InputError):
        translation_prompt("x", "de", "poetry")


def test_canned_translations_build_the_parallel_set_and_the_cache_resumes(tmp_path):
    inner = CannedTranslator()
    llm = CachedChatModel(inner, ResponseCache(tmp_path / "c.sqlite"))
    res = translate_rows(ROWS, ["de", "fr"], llm)
    got = sorted((p.en, p.x, p.lang, p.image) for p in res.pairs)
    assert got == sorted([
        ("<|image_1|>\nFind a caption for the image", "<|image_1|>\nFinde eine Bildunterschrift", "de", "dog.jpg"),
        ("A dog runs on grass.", "Ein Hund läuft auf Gras.", "de", "dog.jpg"),
        ("What is red?", "Was ist rot?", "de", None),
        ("An apple.", "Ein Apfel.", "de", None),
    ])
    assert res.rows == {"de": 3, "fr": 3}
    assert res.drops == {("de", "split_count"): 1, ("fr", "missing"): 3}
    assert len(inner.calls) == 6
    again = translate_rows(ROWS, ["de", "fr"], CachedChatModel(inner, ResponseCache(tmp_path / "c.sqlite")))
    assert len(inner.calls) == 6 + 3  # the 3 successful answers came from the cache; failed ones are retried
    assert sorted(p.x for p in again.pairs) == sorted(p.x for p in res.pairs)


def test_fake_chat_model_output_is_dropped_and_counted():
    res = translate_rows(ROWS, ["it"], FakeChatModel())  # replies with the prompt reversed: no markers
    assert res.pairs == [] and res.drops == {("it", "split_count"): 3}


def test_read_rows(tmp_path):
    good = tmp_path / "rows.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert read_rows(good)[1]["neg"] == "The sky."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"qry": "<|image_1|>\n", "pos": "x"}) + "\n")
    with pytest.raises(InputError) as e:
        read_rows(bad)
    assert e.value.format().startswith(f"siftkit: {bad}:2:")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "siftkit.cli", "multilingual", "translate", *args],
                          capture_output=True, text=True, timeout=300)


def test_cli_bad_input_and_tiny_llama_run(tmp_path):
    from siftkit.llm.testing import make_tiny_llama

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "pairs.jsonl"
    for args, where in ((["--rows", str(rows), "--langs", "pt"], "--langs"),
                        (["--rows", str(rows), "--prompt-style", "x"], "--prompt-style"),
                        (["--rows", str(tmp_path / "none.jsonl")], "none.jsonl")):
        res = cli(*args, "--output", str(out))
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and where in res.stderr, res.stderr
        assert not out.exists()
    llama = make_tiny_llama(tmp_path / "llama")
    res = cli("--rows", str(rows), "--langs", "de", "--model", str(llama), "--max-new-tokens", "6",
              "--cache", str(tmp_path / "c.sqlite"), "--threads", "1", "--output", str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    drops = json.loads((tmp_path / "pairs.jsonl.drops.json").read_text())
    assert drops["de"]["rows"] == 3
    kept = out.read_text().splitlines()
    assert len(kept) == 2 * (3 - sum(v for k, v in drops["de"].items() if k != "rows"))  # qry + pos per kept row


def test_failed_requests_leave_the_output_as_it_was(tmp_path):
    """Issue 24: a translation run whose requests fail exits 1 naming the count and keeps an existing output."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = tmp_path / "pairs.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(RequestsFailed) as e:
        translate_rows(ROWS, ["de", "fr"], CannedTranslator(), raise_failed=f"{out} left as it was")
    assert (e.value.failed, e.value.total) == (3, 6)  # the fr prompts are not canned: they fail
    res = cli("--rows", str(rows), "--langs", "de", "--endpoint", "notaurl", "--model", "x", "--output", str(out))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--endpoint" in res.stderr, res.stderr
    res = cli("--rows", str(rows), "--langs", "de", "--endpoint", "http://127.0.0.1:9/v1", "--model", "x",
              "--cache", str(tmp_path / "c.sqlite"), "--output", str(out))
    last = res.stderr.strip().splitlines()[-1]  # above it, the client's one "gave up" line per request
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert last.startswith("siftkit: 3 of 3 translation(s) failed") and "left as it was" in last, last
    assert out.read_text() == "keep me\n" and not (tmp_path / "pairs.jsonl.drops.json").exists()
