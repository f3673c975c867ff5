"""Data (split by English sentence, loaders, builder, styles) and the evaluators on synthetic embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from siftkit.core.errors import InputError
from siftkit.multilingual.data import (Pair, apply_style, build_parallel_set, english_key, load_parallel,
                                       load_tatoeba, load_xtd10, pack_row, parse_translation, split_by_english)
from siftkit.multilingual.evaluate import (crosslingual_p_at_1, english_retention, evaluate_mmmeb, evaluate_pairs,
                                           read_mmmeb, retained)


def test_tatoeba_split_by_english_across_languages():
    data = load_tatoeba()
    assert {k: len(v) for k, v in data.items()} == {"de": 1000, "fr": 1000, "it": 1000, "es": 1000}
    de_en = {english_key(p.en) for p in data["de"]}
    assert len(de_en & {english_key(p.en) for p in data["fr"]}) > 100  # English lines recur across languages
    train, test = split_by_english(data, 0.2, seed=0)
    train_en = {english_key(p.en) for ps in train.values() for p in ps}
    test_en = {english_key(p.en) for ps in test.values() for p in ps}
    assert train_en and test_en and not (train_en & test_en)
    for lang in data:
        assert len(train[lang]) + len(test[lang]) == 1000
        assert 120 < len(test[lang]) < 280
    # a sentence's side does not depend on which languages are loaded
    _, test_de = split_by_english({"de": data["de"]}, 0.2, seed=0)
    assert test_de["de"] == test["de"]


def test_xtd10(shared_data):
    d = load_xtd10()
    assert {k: len(v) for k, v in d.items()} == {"de": 1000, "fr": 1000, "it": 1000, "es": 1000}
    assert d["it"][0].en == d["de"][0].en


def test_user_files(tmp_path):
    tsv = tmp_path / "p.tsv"
    tsv.write_text("Hello.\tHallo.\tde\nCat\tGatto\tit\timg.png\n")
    out = load_parallel(tsv)
    assert out["de"] == [Pair("Hello.", "Hallo.", "de")] and out["it"][0].image == "img.png"
    js = tmp_path / "p.jsonl"
    js.write_text(json.dumps({"en": "a", "x": "b", "lang": "fr"}) + "\n" + json.dumps({"en": "a"}) + "\n")
    with pytest.raises(InputError) as e:
        load_parallel(js)
    assert e.value.line == 2 and e.value.field == "x"
    bad = tmp_path / "b.tsv"
    bad.write_text("only one column\n")
    with pytest.raises(InputError) as e:
        load_parallel(bad)
    assert e.value.line == 1


def test_prompt_styles():
    assert apply_style("Find a caption.", "plain") == "Find a caption"
    assert apply_style("Is it red?", "punct") == "Is it red?"
    assert apply_style("Find a caption", "punct") == "Find a caption."
    assert apply_style("Find a caption", "newline") == "Find a caption.\n"
    with pytest.raises(InputError):
        apply_style("x", "bold")


def test_parallel_set_builder_drop_counts():
    assert pack_row("<|image_1|>\nWhat is it", ["A cat"]) == "Question: What is it. Answer: A cat."
    assert parse_translation("Frage: Was ist das. Antwort: Eine Katze.", "de", 1) == ["Was ist das", "Eine Katze"]
    assert parse_translation("Frage: Was ist das.", "de", 1) is None
    rows = [
        {"qry": "<|image_1|>\nWhat is it?", "pos": "A cat.", "image": "a.jpg",
         "translations": {"de": "<|image_1|>\nFrage: Was ist das? Antwort: Eine Katze.",
                          "it": "Domanda: Cos'è? Risposta: Un gatto.",  # lost the image tag
                          "fr": "Question: Qu'est-ce que c'est?"}},  # split count mismatch
        {"qry": "Name a colour", "pos": ["Red"], "image": None,
         "translations": {"de": "Frage: Nenne eine Farbe. Antwort: Rot.", "it": "Domanda: Un colore. Risposta: Rosso."}},
    ]
    res = build_parallel_set(rows, ["de", "it", "fr"])
    assert res.drops == {("it", "image_tag"): 1, ("fr", "split_count"): 1, ("fr", "missing"): 1}
    assert res.rows == {"de": 2, "it": 2, "fr": 2}
    got = {(p.lang, p.en): p.x for p in res.pairs}
    assert got[("de", "<|image_1|>\nWhat is it?")] == "<|image_1|>\nWas ist das?"
    assert got[("de", "A cat.")] == "Eine Katze."
    assert got[("it", "Name a colour")] == "Un colore"
    assert len(res.pairs) == 6


def test_p_at_1_perfect_random_constant():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(200, 32))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    assert crosslingual_p_at_1(E, E) == {"x2en": 1.0, "en2x": 1.0}
    R = rng.normal(size=(200, 32))
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    r = crosslingual_p_at_1(R, E)
    assert r["x2en"] < 0.05 and r["en2x"] < 0.05
    C = np.ones((200, 32)) / np.sqrt(32)
    assert crosslingual_p_at_1(C, C)["x2en"] == pytest.approx(1 / 200)
    ret = english_retention(E, E)
    assert ret["en_retention_p1"] == 1.0 and ret["en_cosine"] == pytest.approx(1.0)


def test_evaluate_pairs_and_retention():
    pairs = {"de": [Pair(f"s{i}", f"t{i}", "de") for i in range(50)]}
    rng = np.random.default_rng(1)
    table = {t: v / np.linalg.norm(v) for t, v in zip([f"s{i}" for i in range(50)], rng.normal(size=(50, 16)))}
    table.update({f"t{i}": table[f"s{i}"] for i in range(50)})
    enc = lambda texts: np.stack([table[t] for t in texts])  # noqa: E731
    rows = evaluate_pairs(enc, pairs, teacher=enc)
    assert rows[0]["x2en"] == 1.0 and rows[0]["mse_x"] == pytest.approx(0.0)
    assert rows[1]["lang"] == "en" and retained(rows)
    const = lambda texts: np.ones((len(texts), 16)) / 4  # noqa: E731
    rows = evaluate_pairs(const, pairs, teacher=enc)
    assert rows[0]["x2en"] == pytest.approx(1 / 50) and not retained(rows)


def test_mmmeb(tmp_path):
    path = tmp_path / "xtd_it_3_formatted_t2i.jsonl"
    lines = [{"qry_text": "q1", "tgt_text": ["g1", "a", "b"]}, {"qry_text": "q2", "tgt_text": ["g2", "a", "g1"]}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rows = read_mmmeb(path)
    vec = {"q1": [1, 0, 0], "g1": [1, 0, 0], "a": [0, 1, 0], "b": [0, 0, 1], "q2": [0, 1, 0], "g2": [0, 0, 1]}
    enc = lambda texts, images: np.array([vec[t] for t in texts], dtype=float)  # noqa: E731
    out = evaluate_mmmeb(rows, enc, enc, ks=(1, 5))
    assert out["p@1"] == pytest.approx(0.5) and out["p@5"] == 1.0
    const = lambda texts, images: np.ones((len(texts), 3))  # noqa: E731
    assert evaluate_mmmeb(rows, const, const, ks=(1,))["p@1"] == pytest.approx(1 / 3)
    path.write_text(json.dumps({"qry_text": "q", "tgt_text": []}) + "\n")
    with pytest.raises(InputError):
        read_mmmeb(path)


def test_memoized_encoder_embeds_each_text_once():
    from siftkit.multilingual.evaluate import memoized

    calls = []

    def enc(texts):
        calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts])

    m = memoized(enc)
    np.testing.assert_array_equal(m(["ab", "c", "ab"]), [[2, 1], [1, 1], [2, 1]])
    np.testing.assert_array_equal(m(["c", "dddd"]), [[1, 1], [4, 1]])
    assert calls == [["ab", "c"], ["dddd"]]


def test_prompts_per_language_and_style():
    from siftkit.multilingual.data import PROMPTS, prompt

    assert set(PROMPTS["i2t"]) == set(PROMPTS["image"]) == {"en", "de", "fr", "it", "es"}
    assert prompt("image", "de", "newline") == "Repräsentiere das gegebene Bild.\n"
    assert prompt("i2t", "en", "plain") == "Find an image caption describing the given everyday image"
    with pytest.raises(InputError):
        prompt("image", "pt", "plain")
