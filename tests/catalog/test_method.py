import numpy as np
import pandas as pd
import pytest

from siftkit.catalog.demo import load_demo
from siftkit.catalog.evaluate import grounding, mentions, score, summarise, targets, toxic_words
from siftkit.catalog.exemplars import ExemplarPool, build_prompt, prompt_text, retrieval_key
from siftkit.catalog.generate import clean, describe, parse_system, plan
from siftkit.core.errors import InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return load_demo(tmp_path_factory.mktemp("demo"))


def test_retrieval_key_expands_names(demo):
    a = next(x for x in demo.assets() if x.column == "order_dt")
    key = retrieval_key(a)
    assert "order date" in key and "2024-03-01" not in key  # numbers and dates stay out
    assert "shipped" in retrieval_key(next(x for x in demo.assets() if x.column == "status"))


def test_leave_one_database_out_no_leak(demo):
    assets = demo.assets()
    pools = {k: ExemplarPool(assets, k) for k in ("column", "table")}
    tgt = targets(demo)
    rows = plan(tgt, pools, ["zero-shot", "rag-3", "random-3", "rag-20", "copy"], seed=1)
    by_id = {a.id: a for a in assets}
    same_db_texts = {}
    for a in assets:
        if a.description:
            same_db_texts.setdefault(a.db, set()).add(a.description.strip())
    assert len(rows) == 5 * len(tgt)
    for r in rows:
        t = by_id[r["id"]]
        assert all(by_id[e].db != t.db for e in r["exemplars"])
        text = prompt_text(r["prompt"]) if r["prompt"] else r["text"]
        assert t.description.strip() not in text
        if t.kind == "column":  # no description of the target's database at all (a table prompt shows, by the
            for own in same_db_texts[t.db]:  # spec, the descriptions of its own columns, never its own)
                assert own not in text
    # retrieval finds like with like: the nearest exemplars of shop's order_id are "*_id" columns
    rag = {r["id"]: r for r in rows if r["system"] == "rag-3"}
    assert all(e.endswith("_id") for e in rag["shop.orders.order_id"]["exemplars"])
    assert len(rag["shop.orders.order_id"]["exemplars"]) == 3


def test_prompt_layout_and_random_is_seeded(demo):
    assets = demo.assets()
    pool = ExemplarPool(assets, "column")
    t = next(a for a in assets if a.id == "clinic.visits.fee_amt")
    ex = pool.retrieve(t, 2)
    msgs = build_prompt(t, ex)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "Do not state facts that the context does not support." in msgs[0]["content"]
    assert msgs[2]["content"] == ex[0].description and msgs[4]["content"] == ex[1].description
    assert msgs[-1]["content"].startswith("Column: visits.fee_amt (DECIMAL(8,2))")
    assert "Sample values: 60.0, 45.0, 80.0" in msgs[-1]["content"]
    assert pool.random(t, 3, seed=0) == pool.random(t, 3, seed=0)
    assert {a.db for a in pool.random(t, 30, seed=0)} == {"shop", "library"}
    assert len(pool.random(t, 30, seed=0)) == len(pool.candidates("clinic")) == 20  # shop 5 + 5, library 4 + 6 columns


def test_system_names_and_clean():
    assert parse_system("zero-shot") == ("rag", 0) and parse_system("random-5") == ("random", 5)
    for bad in ("rag", "rag-0", "rag-x", "llm"):
        with pytest.raises(InputError):
            parse_system(bad)
    assert clean('\n  Description: "The date of the order."\nmore') == "The date of the order."


def test_baselines_and_scores(demo):
    df = describe(targets(demo, ["column"]), demo.assets(), ["echo", "copy"], progress=False)
    echo = df[(df.system == "echo") & (df.id == "shop.orders.total_amt")].text.item()
    assert echo == "Total amount"
    copy = df[(df.system == "copy") & (df.id == "clinic.visits.fee_amt")].text.item()
    assert copy in {"Fee charged for returning the book late, in euros.", "Total amount charged for the order, in euros."}
    s = score(df, demo)
    # hand-computed: "Total amount" vs "Total amount charged for the order, in euros." (stemmed unigrams):
    # candidate 2 tokens, reference 8 tokens, overlap total + amount = 2 → P 1, R 2/8, F1 = 0.4
    r = s[(s.system == "echo") & (s.id == "shop.orders.total_amt")].rouge1.item()
    assert r == pytest.approx(0.4)
    summ = summarise(s, n_resamples=200)
    assert set(summ.system) == {"echo", "copy"} and (summ.databases == 3).all()
    assert (summ.rouge1_lo <= summ.rouge1).all() and (summ.rouge1 <= summ.rouge1_hi).all()


def test_grounding_cases():
    ctx = "Column: orders.status (VARCHAR)\nSample values: shipped, pending\nStatistics: unique_count 4, max 250.0"
    ok = grounding("Order state such as 'shipped'; at most 250 per order.", ctx)
    assert ok == {"mentions": 2, "unsupported": [], "grounding": 1.0, "grounded": True}
    bad = grounding("Status of 'returned' orders, 17 codes, see order_status_code.", ctx, names={"orders"})
    assert bad["unsupported"] == ["returned", "17", "order_status_code"] and not bad["grounded"]
    assert bad["grounding"] == 0.0
    assert grounding("Links to customer_id.", ctx, names={"customer_id"})["grounded"]
    assert grounding("A plain sentence.", ctx) == {"mentions": 0, "unsupported": [], "grounding": 1.0,
                                                   "grounded": True}
    assert ("number", "3.5") in mentions("about 3.5 units") and ("name", "camelCase") in mentions("a camelCase x")


def test_toxicity_word_list():
    assert toxic_words("Name of the idiot customer") == ["idiot"]
    assert toxic_words("Assessment date of the class") == []  # whole words only
    assert toxic_words("Beneficiaries who did not die in hospice care") == []  # ordinary senses are not listed


def test_describe_llm_path_with_a_fake_model(demo, tmp_path):
    from siftkit.llm.testing import FakeChatModel

    df = describe(targets(demo, ["column"])[:4], demo.assets(), ["zero-shot", "rag-1"], model_factory=FakeChatModel,
                  cache=tmp_path / "c.sqlite", progress=False)
    assert len(df) == 8
    assert (df[df.system == "rag-1"].prompt_chars.to_numpy() > df[df.system == "zero-shot"].prompt_chars.to_numpy()).all()
    assert df.text.str.len().gt(0).all()


@pytest.mark.needs_shared
def test_bird_no_leak_and_ai_description_first_line(shared_data):
    from siftkit.catalog.ingest import load_bird

    cat = load_bird(shared_data / "metadata_rag/bird_mini_dev/dev_metadata.json")
    tgt = targets(cat, ["column"])
    assert len(tgt) == 476
    pools = {"column": ExemplarPool(cat.assets(), "column"), "table": ExemplarPool(cat.assets(), "table")}
    by_id = {a.id: a for a in cat.assets()}
    for r in plan(tgt[::7], pools, ["rag-5"]):
        assert by_id[r["id"]].description.strip() not in prompt_text(r["prompt"])
        assert all(by_id[e].db != r["db"] for e in r["exemplars"])
    df = describe(tgt[:20], cat.assets(), ["ai_description"], progress=False)
    assert not df.text.str.contains("Stats:").any() and not df.text.str.contains("\n").any()


class _KeywordEmbedder:
    """Text → counts of a few keywords (an exact, hand-checkable cosine)."""

    dim, model_id, normalize = 3, "keywords", False
    words = ("date", "amount", "identifier")

    def encode_passages(self, texts, batch_size=32):
        return np.array([[t.lower().count(w) for w in self.words] for t in texts], dtype=np.float32)

    encode_queries = encode_passages


def test_dense_cosine_order_and_fold_mask(demo):
    assets = demo.assets()
    pool = ExemplarPool(assets, "column", embedder=_KeywordEmbedder())
    t = next(a for a in assets if a.id == "shop.orders.order_dt")  # key has "date" only → (1, 0, 0) direction
    ex = pool.dense(t, 3)
    assert [e.db for e in ex] and all(e.db != "shop" for e in ex)
    key_vecs = _KeywordEmbedder().encode_passages([retrieval_key(e) for e in ex])
    cos = key_vecs[:, 0] / np.linalg.norm(key_vecs, axis=1)
    assert (cos == 1.0).all()  # the best cosine, 1: keys that mention dates and neither amounts nor identifiers
    assert pool.dense(t, 0) == [] and len(pool.dense(t, 100)) == len(pool.candidates("shop"))
    with pytest.raises(ValueError):
        ExemplarPool(assets, "column").dense(t, 1)


def test_dense_minilm_leave_one_database_out_no_leak(demo):
    from siftkit.embed import load_embedder

    emb = load_embedder("minilm")
    assets = demo.assets()
    tgt = targets(demo)
    by_id = {a.id: a for a in assets}
    pools = {k: ExemplarPool(assets, k, embedder=emb) for k in ("column", "table")}
    rows = plan(tgt, pools, ["dense-3", "dense-copy"])
    assert len(rows) == 2 * len(tgt)
    for r in rows:
        t = by_id[r["id"]]
        assert r["exemplars"] and all(by_id[e].db != t.db for e in r["exemplars"])
        text = prompt_text(r["prompt"]) if r["prompt"] else r["text"]
        assert t.description.strip() not in text
    # the fold mask is what keeps a target's own description out: without it, its own key (cosine 1) wins
    open_pools = {k: ExemplarPool(assets, k, lodo=False, embedder=emb) for k in ("column", "table")}
    own = plan(tgt, open_pools, ["dense-copy"])
    assert sum(r["text"] == by_id[r["id"]].description.strip() for r in own) >= 0.9 * len(tgt)
    with pytest.raises(InputError):
        describe(tgt[:2], assets, ["dense-1"], progress=False)  # no embedder
