"""RecBench+: the no-LLM baselines and SmolLM2 on the released demographics queries and on a generated set.

    nice python -m benchmarks.recbench all            # cells (resumable) + benchmarks/results/recbench.md
    nice python -m benchmarks.recbench cells --only smollm2
    python -m benchmarks.recbench report              # the page from the stored cells

Cells (``benchmarks/results/cells/recbench/``), one per condition (model | query set) and seed, each holding the raw
replies and the sha256 of its query set; the page re-scores them with the current scorer and refuses cells whose
query set changed (no stale cells):

* query sets: ``demographics`` = the 279 released demographics queries (../shared/data/recbench_plus, ML-1M KG);
  ``generated`` = 50 queries per type × condition count generated from ML-100K histories (generator seed 0);
* models: oracle, random (seeds 0-2), popularity; group-top10 / group-top3 (demographics only, spec §7);
  SmolLM2-135M-Instruct (ct2 int8, 2 threads, greedy, at most 64 new tokens) on both sets.

LLM calls go through the response cache (``$SIFTKIT_HOME/cache/recbench.sqlite``), so a killed run resumes.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
from pathlib import Path

from benchmarks.cells import CELLS, RESULTS, Experiment, load_cells, run_experiment, write_markdown

EXPERIMENT = "recbench"
PER_CELL, GEN_SEED = 50, 0
MAX_NEW_TOKENS, ENGINE = 64, "ct2"
SETS = ("demographics", "generated")
CONDITIONS = [f"{m}|demographics" for m in ("oracle", "random", "popularity", "group-top10", "group-top3")] + \
    [f"{m}|generated" for m in ("oracle", "random", "popularity")] + \
    ["smollm2|demographics", "smollm2|generated"]
SPEC_TABLE = {("oracle", "reference"): (0.499, 0.499, 0.500), ("oracle", "corrected-first"): (0.995, 0.995, 1.000),
              ("group-top10", "reference"): (0.403, 0.123, 0.279),
              ("group-top10", "corrected-first"): (0.986, 0.300, 0.661),
              ("group-top3", "reference"): (0.134, 0.136, 0.145),
              ("group-top3", "corrected-first"): (0.313, 0.315, 0.325),
              ("popularity", "reference"): (0.048, 0.014, 0.054),
              ("popularity", "corrected-first"): (0.204, 0.062, 0.163),
              ("random", "reference"): (0.001, 0.000, 0.002), ("random", "corrected-first"): (0.004, 0.001, 0.002)}
"""Spec §7.2 (recall / precision / NDCG); its "corrected mode" column is our ``corrected-first``."""


@functools.lru_cache(maxsize=None)
def query_set(name: str):
    """(queries, KG, sha256 of the queries) for a set name."""
    from siftkit.recbench.generate import Generator
    from siftkit.recbench.kg import load_ml1m, load_ml100k
    from siftkit.recbench.queries import load_queries
    from siftkit.core.assets import shared_data_dir

    if name == "demographics":
        d = shared_data_dir()
        if d is None:
            raise SystemExit("../shared/data/recbench_plus not found (set SIFTKIT_SHARED)")
        qs, kg = load_queries(d / "recbench_plus" / "UserBasedQuery.json"), load_ml1m(d / "recbench_plus")
    else:
        kg = load_ml100k()
        qs = Generator(kg, GEN_SEED).generate(PER_CELL)
    digest = hashlib.sha256(json.dumps([q.to_json() for q in qs], sort_keys=True).encode()).hexdigest()[:16]
    return qs, kg, digest


def seeds(condition: str) -> list[int]:
    return [0, 1, 2] if condition.startswith("random") else [0]


def run_cells(root: Path, threads: int, only: str | None = None) -> None:
    from siftkit.core.paths import cache_dir
    from siftkit.llm.base import GenerationParams
    from siftkit.recbench.runner import answer, model_factory

    cache = cache_dir("cache") / "recbench.sqlite"
    params = GenerationParams(max_new_tokens=MAX_NEW_TOKENS, temperature=0.0)
    loaded: dict = {}

    def cell(p):
        model, qset = p["condition"].split("|")
        qs, kg, digest = query_set(qset)
        factory = None
        if model == "smollm2":
            if model not in loaded:
                loaded[model] = model_factory("smollm2", engine=ENGINE, threads=threads)()
            factory = functools.partial(_same, loaded[model])
        df = answer({model: factory}, qs, kg, params, cache, seed=p["seed"], progress=True)
        return {"model": model, "query_set": qset, "queries": len(qs), "query_sha": digest,
                "engine": ENGINE if factory else "", "max_new_tokens": MAX_NEW_TOKENS if factory else 0,
                "replies": [[r.qid, r.text] for r in df.itertuples(index=False)]}

    for cond in CONDITIONS:
        if only and not cond.startswith(only):
            continue
        run_experiment(Experiment(EXPERIMENT, {"condition": [cond], "seed": seeds(cond)}, cell, root=root))


def _same(model):
    return model


def _fmt(v, lo=None, hi=None) -> str:
    if v != v:  # NaN
        return "–"
    s = f"{v:.3f}"
    return s + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and lo == lo else "")


def _table(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def report(root: Path, n_resamples: int = 1000) -> Path:
    import pandas as pd

    from siftkit.recbench.scoring import score_all, summarise

    cells = load_cells(EXPERIMENT, root)
    if not cells:
        raise SystemExit("no cells; run `python -m benchmarks.recbench cells` first")
    from siftkit.recbench.generate import catalogue_variant

    scored, stale, seconds, catalogue = {}, [], {}, []
    for c in cells:
        m = c["metrics"]
        qs, kg, digest = query_set(m["query_set"])
        if m["query_sha"] != digest:
            stale.append(c["params"]["condition"])
            continue
        replies = pd.DataFrame([{"model": m["model"], "qid": q, "text": t} for q, t in m["replies"]])
        df = score_all(replies, qs, kg, modes=("reference", "corrected", "corrected-first"))
        df["seed"] = c["params"]["seed"]
        scored.setdefault(m["query_set"], []).append(df)
        if m["query_set"] == "generated" and c["params"]["seed"] == 0:
            cat = score_all(replies, catalogue_variant(qs, kg), kg, modes=("corrected",), parsers=("sep",))
            catalogue.append(cat)
        seconds[c["params"]["condition"]] = seconds.get(c["params"]["condition"], 0) + c["seconds"]
    if stale:
        raise SystemExit(f"stale cells (their query set changed): {stale}; delete them and rerun the cells")
    sections = []
    repro = []
    for qset in SETS:
        if qset not in scored:
            continue
        df = pd.concat(scored[qset], ignore_index=True)
        # one seed (0) per model for the main tables; random's spread over seeds is shown separately
        main = df[df["seed"] == 0]
        ftr = main[main["parser"] == "sep"].groupby("model")["ftr"].mean()
        # the lenient parser differs from [SEP] only where replies lack [SEP]: show it for those models only
        main = main[(main["parser"] == "sep") | main["model"].map(lambda m: ftr.get(m, 0) > 0)]
        s = summarise(main, by=("model", "mode", "parser"), n_resamples=n_resamples)
        rows = [{"model": r.model, "scoring": r.mode, "parser": r.parser, "queries": r.n,
                 "recall": _fmt(r.recall, r.recall_lo, r.recall_hi), "precision": _fmt(r.precision),
                 "NDCG": _fmt(r.ndcg, r.ndcg_lo, r.ndcg_hi), "FTR": _fmt(r.ftr), "in KG": _fmt(r.existence),
                 "cond. match": _fmt(r.satisfied)} for r in s.itertuples()]
        text = f"### {qset}: all queries\n\n" + _table(rows, list(rows[0]))
        if qset != "demographics":
            per = summarise(main[(main["mode"] == "corrected") & (main["parser"] == "sep")],
                            by=("model", "qtype", "conditions"), n_resamples=n_resamples)
            prow = [{"model": r.model, "type": r.qtype, "conditions": r.conditions, "queries": r.n,
                     "recall": _fmt(r.recall, r.recall_lo, r.recall_hi), "NDCG": _fmt(r.ndcg),
                     "FTR": _fmt(r.ftr), "in KG": _fmt(r.existence),
                     "cond. match": _fmt(r.satisfied, r.satisfied_lo, r.satisfied_hi)} for r in per.itertuples()]
            text += f"\n\n### {qset}: per type × number of conditions (corrected scoring, [SEP] parser)\n\n" + \
                _table(prow, list(prow[0]))
        rnd = df[(df["model"] == "random") & (df["parser"] == "sep")]
        if rnd["seed"].nunique() > 1:
            g = rnd.groupby(["mode", "seed"])["recall"].mean().groupby("mode").agg(["mean", "std"])
            text += "\n\nrandom over seeds 0-2 (mean recall ± sd of the per-seed means): " + ", ".join(
                f"{mode} {r['mean']:.4f} ± {r['std']:.4f}" for mode, r in g.iterrows())
        sections.append(text)
        if qset == "demographics":
            means = main[main["parser"] == "sep"].groupby(["model", "mode"])[["recall", "precision", "ndcg"]].mean()
            for (model, mode), want in SPEC_TABLE.items():
                if (model, mode) in means.index:
                    got = tuple(round(float(x), 3) for x in means.loc[(model, mode)])
                    ok = all(abs(a - b) <= 0.0015 for a, b in zip(got, want))
                    repro.append({"responder": model, "scoring": mode, "spec R / P / NDCG": " / ".join(
                        f"{x:.3f}" for x in want), "ours": " / ".join(f"{x:.3f}" for x in got),
                        "status": "OK" if ok else "differs"})
    if catalogue:
        cs = summarise(pd.concat(catalogue, ignore_index=True), by=("model",), n_resamples=n_resamples)
        crow = [{"model": r.model, "queries": r.n, "precision": _fmt(r.precision, r.precision_lo, r.precision_hi),
                 "recall": _fmt(r.recall), "NDCG": _fmt(r.ndcg), "cond. match": _fmt(r.satisfied)}
                for r in cs.itertuples()]
        sections.append("### generated: catalogue-wide ground truth (separate variant [ours])\n\nThe same replies "
                        "scored against every ML-100K item meeting the conditions instead of the source user's "
                        "items (corrected scoring, [SEP] parser). Ground truths are larger, so precision is the "
                        "number to read; the oracle's list (the user's items) meets every condition.\n\n"
                        + _table(crow, list(crow[0])))
    claims = _claims(scored)
    n_q = {q: len(query_set(q)[0]) for q in scored}
    smol = {k: v for k, v in seconds.items() if k.startswith("smollm2")}
    missing = [c for c in CONDITIONS if c not in {x["params"]["condition"] for x in cells}]
    body = f"""Cells: `benchmarks/results/cells/{EXPERIMENT}/` (one JSON per condition and seed with the raw replies and the
hash of its query set; everything below is re-scored from them with the current scorer).

**Setup.** Query sets: {', '.join(f'{k} ({v} queries)' for k, v in n_q.items())}. `demographics` = the released
RecBench+ demographics movie queries (UserBasedQuery.json, 59 groups), KG = MovieLens-1M movies.dat (genres, years);
`generated` = {PER_CELL} queries per type (explicit / implicit / misinformed) × condition count (1, 2, 3-4) drawn
from MovieLens-100K user histories with the Freebase KG of the recbole wheel (generator seed {GEN_SEED}; a cell the
KG cannot fill stays short: see the per-type counts), ground truth = the user's own items meeting all conditions.
Replies: no-LLM baselines as in spec §7 (profile queries:
10 titles; condition queries: `movieCount` titles); SmolLM2-135M-Instruct on the {ENGINE} engine (CTranslate2 int8, 2
threads, greedy, ≤ {MAX_NEW_TOKENS} new tokens, the instruction of `siftkit.recbench.runner`); SmolLM2 wall time:
{', '.join(f'{k} {v / 60:.1f} min' for k, v in smol.items()) or 'not run'} on 2 shared CPU cores.
Scorings: `reference` = the upstream script (years stripped from predictions only, first match ≥ 0.8, repeats count);
`corrected` = years and articles normalised on both sides, best match, each ground-truth title once [ours];
`corrected-first` = the variant that spec §7's "corrected mode" column used (first match; NDCG counts repeats).
Parsers: `sep` (the paper's `[SEP]` split) and `lenient` (also numbered / line lists, [ours]); FTR is the same for
both. Intervals: 95% percentile bootstrap clustered by source user (generated) or group (demographics),
{n_resamples} resamples. Conditions not run: {', '.join(missing) or 'none'}.

## Spec §7 no-LLM table on the 279 demographics queries

{_table(repro, ["responder", "scoring", "spec R / P / NDCG", "ours", "status"]) if repro else "not run (../shared absent)"}

Popularity: the spec does not say how its "global top-10" was ranked and ML-1M's ratings.dat is not in ../shared, so
ours ranks movies by the number of groups whose TF-IDF top-10 holds them (ties by rank) [ours]; a different list, so
its row differs. Random: one seed of 10 uniform titles; its values are at the 0.001 level either way.

## Results

{chr(10).join(chr(10) + s + chr(10) for s in sections)}

## Claims

{_table(claims, ["claim", "evidence", "status"])}
"""
    out = RESULTS / "recbench.md"
    write_markdown(out, "RecBench+: LLM recommendation assistants (Huang et al., 2025)", body,
                   command="nice python -m benchmarks.recbench all")
    return out


def _claims(scored) -> list[dict]:
    import pandas as pd

    out = []
    if "generated" in scored:
        df = pd.concat(scored["generated"])
        o = df[(df.model == "oracle") & (df["mode"] == "corrected") & (df.parser == "sep")]
        ok = bool(len(o)) and (o[["recall", "precision", "ndcg", "existence", "satisfied"]] == 1).all().all()
        out.append({"claim": "oracle on generated queries: R = P = NDCG = 1, every title in the KG and meeting all "
                             "conditions (corrected scoring; the generator's ground truth satisfies its conditions)",
                    "evidence": f"{len(o)} queries", "status": "OK" if ok else "FAIL"})
    if "demographics" in scored:
        df = pd.concat(scored["demographics"])
        ref = df[(df.model == "oracle") & (df["mode"] == "reference") & (df.parser == "sep")]["recall"].mean()
        cor = df[(df.model == "oracle") & (df["mode"] == "corrected") & (df.parser == "sep")]["recall"].mean()
        out.append({"claim": "the upstream scorer under-scores a perfect answer (one-sided year stripping, spec §5.1); "
                             "the corrected scorer does not",
                    "evidence": f"demographics oracle recall: reference {ref:.3f}, corrected {cor:.3f} (on condition "
                                "queries the id match hides the quirk: the script takes the max of title and id "
                                "matching)", "status": "OK" if ref < 0.6 and cor == 1.0 else "FAIL"})
    for qset in ("demographics", "generated"):
        if qset in scored:
            df = pd.concat(scored[qset])
            s = df[(df.model == "smollm2") & (df["mode"] == "corrected") & (df.parser == "sep")]
            if len(s):
                out.append({"claim": f"SmolLM2-135M rarely follows the [SEP] format ({qset}; spec §7.3 saw FTR ≈ 1)",
                            "evidence": f"FTR {s.ftr.mean():.3f} over {len(s)} queries",
                            "status": "OK" if s.ftr.mean() > 0.5 else "FAIL"})
    if "generated" in scored:
        df = pd.concat(scored["generated"])
        s = df[(df.model == "smollm2") & (df["mode"] == "corrected") & (df.parser == "lenient")]
        if len(s):
            r = s.groupby("qtype")["recall"].mean()
            order = " > ".join(f"{t} {r[t]:.3f}" for t in ("explicit", "implicit", "misinformed") if t in r)
            holds = list(r.reindex(["explicit", "implicit", "misinformed"]).fillna(-1)) == sorted(
                r.reindex(["explicit", "implicit", "misinformed"]).fillna(-1), reverse=True)
            out.append({"claim": "paper: LLMs do best on explicit, worse on implicit and misinformed queries (recall)",
                        "evidence": f"SmolLM2, lenient parser: {order}; a 135M model is near 0 everywhere, so this "
                                    "does not test the paper's claim (needs an endpoint model)",
                        "status": "not testable here" if r.max() < 0.05 else "holds" if holds else
                        "not reproduced"})
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["cells", "report", "all"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="run only conditions starting with this (e.g. smollm2)")
    ap.add_argument("--skip", help="skip conditions starting with this (e.g. smollm2)")
    ap.add_argument("--resamples", type=int, default=1000)
    a = ap.parse_args(argv)
    if a.what in ("cells", "all"):
        global CONDITIONS
        if a.skip:
            CONDITIONS = [c for c in CONDITIONS if not c.startswith(a.skip)]
        run_cells(CELLS, a.threads, a.only)
    if a.what in ("report", "all"):
        print(report(CELLS, a.resamples))


if __name__ == "__main__":
    main()
