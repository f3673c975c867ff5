"""Claims as data: hand-computed verdicts on synthetic cells, a verdict that flips with its cells, missing cells
reported, malformed claims files rejected with one line, and the repository's own claims files."""

import math
import textwrap

import pytest

from benchmarks.cells import Experiment, run_experiment
from benchmarks.claims import CONTRADICTED, HOLDS, MISSING, OPEN, claims_section, load_claims, main, paper, verdicts
from siftkit.core.errors import InputError

T_975_DF2 = 4.302652729911275  # scipy.stats.t.ppf(0.975, 2)

CLAIMS = """\
paper:
  table: {a: 0.80, b: 0.78}
claims:
  - id: a-beats-b
    claim: A beats B.
    test: seeds
    cells: {experiment: grid, metric: score}
    axis: method
    paper: table
    a: a
    b: b
  - id: a-lower-error
    claim: A has a lower error than B.
    test: seeds
    direction: less
    cells: {experiment: grid, metric: error}
    axis: method
    a: a
    b: [b]
  - id: a-beats-ghost
    claim: A beats a method nobody ran.
    test: seeds
    cells: {experiment: grid, metric: score}
    axis: method
    a: a
    b: [b, ghost]
"""


def write_cells(root, name, rows):
    """rows: {params-tuple: metrics}; written through the cells module, as real benchmarks write them."""
    table = {tuple(sorted(p.items())): m for p, m in rows}
    keys = sorted({k for p, _ in rows for k in p})
    grid = {k: sorted({p[k] for p, _ in rows}, key=str) for k in keys}
    exp = Experiment(name, grid, lambda params: table[tuple(sorted(params.items()))], root=root)
    run_experiment(exp, progress=False, only=lambda c: tuple(sorted(c.items())) in table)


def seeds_grid(root, a_scores, b_scores, a_err=(0.3, 0.3, 0.3), b_err=(0.5, 0.5, 0.5)):
    rows = [({"method": m, "seed": s}, {"score": sc, "error": er})
            for m, scores, errs in (("a", a_scores, a_err), ("b", b_scores, b_err))
            for s, (sc, er) in enumerate(zip(scores, errs))]
    write_cells(root, "grid", rows)


@pytest.fixture
def claims_dir(tmp_path):
    d = tmp_path / "claims"
    d.mkdir()
    (d / "toy.yaml").write_text(CLAIMS)
    return d


def claims_file(tmp_path, text):
    """A claims folder holding one file, ``m.yaml``."""
    d = tmp_path / "claims"
    d.mkdir()
    (d / "m.yaml").write_text(text)
    return d


def by_id(vs):
    return {v.claim.id: v for v in vs}


def test_hand_computed_verdict_over_seeds(tmp_path, claims_dir):
    seeds_grid(tmp_path / "cells", [0.72, 0.73, 0.725], [0.70, 0.70, 0.70])
    v = by_id(verdicts("toy", tmp_path / "cells", claims_dir))["a-beats-b"]
    r = v.results[0]
    # d = (0.02, 0.03, 0.025): mean 0.025, sd 0.005, half-width t(0.975, 2) * 0.005 / sqrt(3)
    half = T_975_DF2 * 0.005 / math.sqrt(3)
    assert r.n == 3
    assert r.effect == pytest.approx(0.025)
    assert (r.lo, r.hi) == (pytest.approx(0.025 - half), pytest.approx(0.025 + half))
    assert r.paper_effect == pytest.approx(0.80 - 0.78)
    assert r.verdict == HOLDS and v.verdict == HOLDS


def test_interval_covering_zero_is_not_resolved(tmp_path, claims_dir):
    # d = (0.02, 0.03, 0.01): mean 0.02, sd 0.01, half 4.30 * 0.01 / sqrt(3) = 0.0248 > 0.02
    seeds_grid(tmp_path / "cells", [0.72, 0.73, 0.71], [0.70, 0.70, 0.70])
    r = by_id(verdicts("toy", tmp_path / "cells", claims_dir))["a-beats-b"].results[0]
    assert r.lo == pytest.approx(0.02 - T_975_DF2 * 0.01 / math.sqrt(3)) and r.lo < 0 < r.hi
    assert r.verdict == OPEN


def test_verdict_flips_when_cells_contradict_the_claim(tmp_path, claims_dir):
    seeds_grid(tmp_path / "holds", [0.72, 0.73, 0.725], [0.70, 0.70, 0.70])
    seeds_grid(tmp_path / "flipped", [0.70, 0.70, 0.70], [0.72, 0.73, 0.725])  # the same cells, arms swapped
    assert by_id(verdicts("toy", tmp_path / "holds", claims_dir))["a-beats-b"].verdict == HOLDS
    flipped = by_id(verdicts("toy", tmp_path / "flipped", claims_dir))["a-beats-b"]
    assert flipped.verdict == CONTRADICTED
    assert flipped.results[0].effect == pytest.approx(-0.025)


def test_direction_less(tmp_path, claims_dir):
    seeds_grid(tmp_path / "c", [0.7] * 3, [0.7] * 3, a_err=(0.30, 0.31, 0.29), b_err=(0.50, 0.52, 0.51))
    v = by_id(verdicts("toy", tmp_path / "c", claims_dir))["a-lower-error"]
    assert v.results[0].effect == pytest.approx(-0.21) and v.verdict == HOLDS
    seeds_grid(tmp_path / "d", [0.7] * 3, [0.7] * 3, a_err=(0.50, 0.52, 0.51), b_err=(0.30, 0.31, 0.29))
    assert by_id(verdicts("toy", tmp_path / "d", claims_dir))["a-lower-error"].verdict == CONTRADICTED


def test_missing_cells_are_reported_not_dropped(tmp_path, claims_dir):
    seeds_grid(tmp_path / "cells", [0.72, 0.73, 0.725], [0.70, 0.70, 0.70])
    vs = by_id(verdicts("toy", tmp_path / "cells", claims_dir))
    v = vs["a-beats-ghost"]
    assert [r.verdict for r in v.results] == [HOLDS, MISSING]
    assert v.verdict == MISSING
    assert "method=ghost" in v.results[1].note
    md = claims_section("toy", tmp_path / "cells", claims_dir=claims_dir)
    assert "a-beats-ghost" in md and "missing cells" in md and "method=ghost" in md
    # a contradiction outranks a missing arm
    seeds_grid(tmp_path / "flip", [0.70, 0.70, 0.70], [0.72, 0.73, 0.725])
    assert by_id(verdicts("toy", tmp_path / "flip", claims_dir))["a-beats-ghost"].verdict == CONTRADICTED


def test_an_experiment_with_no_cells_at_all(tmp_path, claims_dir):
    vs = verdicts("toy", tmp_path / "empty", claims_dir)
    assert [v.verdict for v in vs] == [MISSING] * 3


def test_seedless_arm_pairs_with_every_seed(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: sft-beats-zero-shot
            claim: SFT beats zero-shot.
            test: seeds
            compare:
              - a: {experiment: chain, metric: f1}
                b: {experiment: shared, where: {part: zero-shot}, metric: f1}
        """))
    write_cells(tmp_path / "cells", "chain", [({"seed": s}, {"f1": x}) for s, x in enumerate([0.5, 0.6, 0.7])])
    write_cells(tmp_path / "cells", "shared", [({"part": "zero-shot"}, {"f1": 0.1})])
    r = verdicts("m", tmp_path / "cells", d)[0].results[0]
    # d = (0.4, 0.5, 0.6): mean 0.5, sd 0.1
    assert r.n == 3 and r.effect == pytest.approx(0.5)
    assert r.hi - r.effect == pytest.approx(T_975_DF2 * 0.1 / math.sqrt(3))


def test_fixed_reference_arm_pairs_with_every_seed(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: student-beats-teacher
            claim: The student beats the teacher.
            test: seeds
            cells: {experiment: kd, metric: p1}
            compare:
              - a: {where: {condition: student}}
                b: {where: {condition: teacher}, fixed: true}
        """))
    write_cells(tmp_path / "cells", "kd", [({"condition": "student", "seed": s}, {"p1": x})
                                          for s, x in enumerate([0.5, 0.6, 0.7])]
                + [({"condition": "teacher", "seed": 0}, {"p1": 0.1})])
    r = verdicts("m", tmp_path / "cells", d)[0].results[0]
    assert r.n == 3 and r.effect == pytest.approx(0.5)


def test_cluster_bootstrap_over_items(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: policy-beats-rag
            claim: The policy beats RAG on two-hop questions.
            test: clusters
            cells: {experiment: rl, items: 2hop}
            compare:
              - a: {per_item: per_q.policy}
                b: {per_item: per_q.rag}
          - id: hex
            claim: Hex-coded counts out of 10.
            test: clusters
            cells: {experiment: hexes, per_item: per_item, scale: 0.1}
            axis: method
            a: x
            b: y
        """))
    policy = {"1hop-a": 0.0, "2hop-a": 1.0, "2hop-b": 1.0, "2hop-c": 0.0}
    rag = {"1hop-a": 1.0, "2hop-a": 0.0, "2hop-b": 0.0, "2hop-c": 0.0}
    write_cells(tmp_path / "cells", "rl", [({"seed": s}, {"per_q": {"policy": policy, "rag": rag}}) for s in (0, 1)])
    write_cells(tmp_path / "cells", "hexes", [({"method": "x", "seed": 0}, {"per_item": "9a8"}),
                                             ({"method": "y", "seed": 0}, {"per_item": "555"})])
    vs = by_id(verdicts("m", tmp_path / "cells", d))
    r = vs["policy-beats-rag"].results[0]
    # 2-hop items only: d = (1, 1, 0) per seed, two seeds -> 6 pairs, mean 2/3; clusters resampled: 3 items
    assert r.n == 6 and r.effect == pytest.approx(2 / 3) and r.note == "3 clusters"
    assert r.lo <= r.effect <= r.hi
    h = vs["hex"]
    # (0.9 - 0.5, 1.0 - 0.5, 0.8 - 0.5) = (0.4, 0.5, 0.3): mean 0.4, and every resample's mean is > 0
    assert h.results[0].effect == pytest.approx(0.4) and h.verdict == HOLDS


def test_known_answer_and_stored_interval(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        paper:
          t: {m1: {rho: 0.384, acc: 0.359}, m2: {rho: 0.481}}
        claims:
          - id: published
            claim: Published outputs give the table.
            test: known_answer
            cells: {experiment: pub}
            match: [model]
            conditions:
              - {model: m1, expected: t/m1}
              - {model: m2, expected: t/m2}
              - {model: m3, known_answer: false, note: ids do not align}
          - id: delta
            claim: Session beats baseline.
            test: interval
            cells: {experiment: deltas, metric: delta}
            compare:
              - a: {where: {model: m1}, paper: [t/m2/rho, t/m1/rho]}
        """))
    write_cells(tmp_path / "ok", "pub", [({"model": "m1"}, {"rho": 0.38449, "acc": 0.3591}),
                                        ({"model": "m2"}, {"rho": 0.4806})])
    write_cells(tmp_path / "ok", "deltas", [({"model": "m1"}, {"delta": 0.09, "delta_lo": 0.05, "delta_hi": 0.13})])
    vs = by_id(verdicts("m", tmp_path / "ok", d))
    assert vs["published"].verdict == HOLDS
    assert [r.verdict for r in vs["published"].results] == [HOLDS, HOLDS, "n/a"]
    r = vs["delta"].results[0]
    assert (r.effect, r.lo, r.hi, r.verdict) == (0.09, 0.05, 0.13, HOLDS)
    assert r.paper_effect == pytest.approx(0.481 - 0.384)
    write_cells(tmp_path / "bad", "pub", [({"model": "m1"}, {"rho": 0.3856, "acc": 0.359}),  # rounds to 0.386
                                         ({"model": "m2"}, {"rho": 0.481})])
    write_cells(tmp_path / "bad", "deltas", [({"model": "m1"}, {"delta": -0.09, "delta_lo": -0.13,
                                                                "delta_hi": -0.05})])
    vs = by_id(verdicts("m", tmp_path / "bad", d))
    assert vs["published"].verdict == CONTRADICTED and vs["delta"].verdict == CONTRADICTED


@pytest.mark.parametrize("text, line, field", [
    ("claims:\n  - id: x\n    claim: c\n    test: anova\n", 4, "claims[x].test"),
    ("claims:\n  - id: x\n    claim: c\n    test: seeds\n    a: {metric: m}\n    b: {experiment: e, metric: m}\n",
     5, "claims[x].a.experiment"),
    ("paper: {t: {a: 1}}\nclaims:\n  - id: x\n    claim: c\n    test: seeds\n    cells: {experiment: e, metric: m}\n"
     "    a: {where: {k: 1}, paper: t/zz}\n    b: {where: {k: 2}}\n", 7, "claims[x].a.paper"),
    ("claims:\n  - id: x\n    claim: c\n    test: seeds\n    direction: up\n", 5, "claims[x].direction"),
    ("claims:\n  - id: x\n    claim: c\n    tset: seeds\n", 4, "claims[0].tset"),
    ("claims:\n  - id: x\n    claim: [unclosed\n", 4, None),
    ("claims:\n  - id: x\n    claim: c\n    test: seeds\n    cells: {experiment: e, metric: m}\n    compare:\n"
     "      - {a: {}, b: {}, lable: y}\n", 7, "claims[x].compare[0].lable"),
    ("claims: []\nmatrix: siftkit.usefulness/nope.yaml\n", 2, "matrix"),
    ("matrix: siftkit.usefulness/published.yaml\npaper:\n  thuir: {a: 1}\nclaims: []\n", 3, "paper.thuir"),
    ("claims:\n  - id: x\n    claim: c\n    test: known_answer\n    cells: {experiment: e}\n", 2,
     "claims[x].conditions"),
])
def test_malformed_claims_file_gives_one_line_and_exit_2(tmp_path, capsys, text, line, field):
    from benchmarks.__main__ import main as benchmarks_main

    d = tmp_path / "claims"
    d.mkdir()
    path = d / "bad.yaml"
    path.write_text(text)
    (tmp_path / "cells").mkdir()
    args = ["claims", "--claims-dir", str(d), "--cells", str(tmp_path / "cells"), "--output", "-"]
    assert benchmarks_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"siftkit: {path}:{line}: ")
    if field:
        assert field in err[0]


@pytest.mark.parametrize("args, start", [
    (["--method", "nope"], "siftkit: --method: "),
    (["--bogus"], "siftkit: python -m benchmarks claims: unrecognized arguments"),
    (["--cells", "/nonexistent/cells"], "siftkit: /nonexistent/cells: not a folder"),
    (["--output", "{tmp}"], "siftkit: {tmp}: --output is a directory"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, claims_dir, args, start):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["--claims-dir", str(claims_dir), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(start.replace("{tmp}", str(tmp_path)))


def test_page_is_written_with_the_command(tmp_path, claims_dir):
    seeds_grid(tmp_path / "cells", [0.72, 0.73, 0.725], [0.70, 0.70, 0.70])
    out = tmp_path / "claims.md"
    assert main(["--claims-dir", str(claims_dir), "--cells", str(tmp_path / "cells"), "--output", str(out)]) == 0
    text = out.read_text()
    assert "python -m benchmarks claims" in text and "**a-beats-b**" in text
    assert "Totals: 2 holds, 0 not resolved, 0 contradicted, 1 missing cells." in text


def test_repository_claims_files_load_and_cover_the_four_methods():
    claims = load_claims()
    ids = {(c.method, c.id) for c in claims}
    for need in [("lcron", "lcron-best-2stage"), ("lcron", "ablation-no-e2e"), ("lcron", "ablation-no-single"),
                 ("lcron", "tau-50-best"), ("search_r1", "policy-beats-rag"), ("search_r1", "policy-beats-direct"),
                 ("search_r1", "masking-helps"), ("lref", "sft-beats-zero-shot"), ("lref", "multi-cot-helps"),
                 ("lref", "dpo-lowers-over-rating"), ("usefulness", "published-outputs"),
                 ("usefulness", "session-beats-baseline-published")]:
        assert need in ids
    assert paper("lcron")["joint_2stage"]["lcron"] == 0.8732
    assert paper("lcron")["tau"][50] == 0.8732


def test_usefulness_known_answer_matrix_is_the_claim():
    """One matrix (package data), read by the package and by the claims engine through the same resolver."""
    from siftkit.usefulness.evaluate import load_reproduction

    conds = load_reproduction()
    assert len(conds) == 11
    first = conds[0]
    assert (first["model"], first["prompt"], first["policy"]) == ("Llama-3.3-70B", "baseline", "exclude")
    assert first["expected"] == paper("usefulness")["thuir"]["Llama-3.3-70B"]["baseline"] == {
        "spearman": 0.384, "accuracy": 0.359, "kappa": 0.137, "qwk": 0.350}
    assert sum(c.get("known_answer", True) is False for c in conds) == 2
    claim = next(c for c in load_claims("usefulness") if c.id == "published-outputs")
    assert list(claim.conditions) == conds
    assert [cmp.a.where for cmp in claim.comparisons][9] == {"model": "Llama-3.2-3B", "prompt": "baseline",
                                                             "policy": "keep"}


def test_matrix_of_a_claims_file_gives_its_paper_table_and_conditions(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        matrix: siftkit.usefulness/published.yaml
        paper:
          other: {x: 1.5}
        claims:
          - id: published
            claim: Published outputs give the table.
            test: known_answer
            cells: {experiment: pub}
            match: [model, prompt, policy]
          - id: own
            claim: Own conditions win over the matrix's.
            test: known_answer
            cells: {experiment: pub}
            match: [model]
            conditions:
              - {model: m1, expected: thuir/Llama-3.1-8B/session}
        """))
    t = paper("m", d)
    assert t["other"] == {"x": 1.5} and t["thuir"]["Llama-3.1-8B"]["session"] == {"spearman": 0.368, "accuracy": 0.364}
    cl = by_id([type("V", (), {"claim": c}) for c in load_claims("m", d)])
    assert len(cl["published"].claim.conditions) == 11
    assert cl["own"].claim.conditions == ({"model": "m1", "expected": {"spearman": 0.368, "accuracy": 0.364}},)


def test_stale_cells_are_refused(tmp_path, claims_dir):
    from benchmarks.cells import load_cells

    seeds_grid(tmp_path / "cells", [0.72, 0.73, 0.725], [0.70, 0.70, 0.70])

    def load(name):  # as the runner's Experiment.load(allow_stale=True) marks them: method b made by other code
        return [{**c, "status": "stale" if c["params"]["method"] == "b" else "fresh"}
                for c in load_cells(name, tmp_path / "cells")]

    v = by_id(verdicts("toy", claims_dir=claims_dir, load=load))["a-beats-b"]
    assert v.verdict == MISSING
    assert "method=b" in v.results[0].note and "3 stale cells refused" in v.results[0].note

    def legacy(name):  # cells made before stamps are used, and flagged
        return [{**c, "status": "unverified"} for c in load_cells(name, tmp_path / "cells")]

    v = by_id(verdicts("toy", claims_dir=claims_dir, load=legacy))["a-beats-b"]
    assert v.verdict == HOLDS and v.results[0].note == "⚠ 6 unverified cells"


def test_partial_cells_read_as_their_finished_steps(tmp_path):
    import json

    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: dpo
            claim: DPO lowers over-rating.
            test: seeds
            direction: less
            cells: {experiment: chain/_partial, where: {part: chain}}
            compare:
              - a: {metric: +dpo/err}
                b: {metric: +cot/err}
        """))
    folder = tmp_path / "cells" / "chain" / "_partial"
    folder.mkdir(parents=True)
    for s, (cot, dpo) in enumerate([(0.5, 0.3), (0.6, 0.35), (0.55, 0.3)]):
        rec = {"params": {"part": "chain", "seed": s}, "state": {"cot": {"+cot/err": cot}, "dpo": {"+dpo/err": dpo}}}
        (folder / f"part=chain__seed={s}.json").write_text(json.dumps(rec))
    v = verdicts("m", tmp_path / "cells", d)[0]
    r = v.results[0]
    # d = (-0.2, -0.25, -0.25): mean -0.7/3
    assert r.n == 3 and r.effect == pytest.approx(-0.7 / 3)
    assert v.verdict == HOLDS and "⚠ 3 unverified cells" in r.note


def test_a_repository_claim_flips_with_its_cells(tmp_path):
    """LCRON's ablation claim as written in benchmarks/claims/lcron.yaml, on synthetic cells in its experiment."""
    from benchmarks.claims import evaluate

    claim = next(c for c in load_claims("lcron") if c.id == "ablation-no-single")
    arms = claim.comparisons[0]

    def cells(root, full, ablated):
        rows = [({**arm.where, "seed": s}, {arm.metric: x}) for arm, xs in ((arms.a, full), (arms.b, ablated))
                for s, x in enumerate(xs)]
        write_cells(root, arms.a.experiment, rows)

    cells(tmp_path / "paper", [0.71, 0.72, 0.715], [0.70, 0.70, 0.70])
    cells(tmp_path / "flipped", [0.70, 0.70, 0.70], [0.71, 0.72, 0.715])
    assert evaluate(claim, tmp_path / "paper").verdict == HOLDS
    assert evaluate(claim, tmp_path / "flipped").verdict == CONTRADICTED


def test_cluster_key_resamples_databases(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: by-db
            claim: Items resampled by database.
            test: clusters
            cells: {experiment: dbs, per_item: r, cluster: "^[^.]+"}
            axis: system
            a: x
            b: y
          - id: by-item
            claim: The same items, each its own cluster.
            test: clusters
            cells: {experiment: dbs, per_item: r}
            axis: system
            a: x
            b: y
        """))
    # differences: database a (1.0, 1.0), database b (0.5, 0.7)
    x = {"a.t.c1": 1.0, "a.t.c2": 1.0, "b.t.c1": 0.5, "b.t.c2": 0.7}
    y = {k: 0.0 for k in x}
    write_cells(tmp_path / "cells", "dbs", [({"system": "x"}, {"r": x}), ({"system": "y"}, {"r": y})])
    vs = by_id(verdicts("m", tmp_path / "cells", d))
    r = vs["by-db"].results[0]
    # two clusters: a resample is {a, a} (mean 1.0), {b, b} (mean 0.6) or {a, b} (mean 0.8), each pair of
    # equal draws with probability 1/4, so the 2.5% and 97.5% quantiles are 0.6 and 1.0
    assert r.n == 4 and r.effect == pytest.approx(0.8) and r.note == "2 clusters"
    assert r.lo == pytest.approx(0.6) and r.hi == pytest.approx(1.0) and vs["by-db"].verdict == HOLDS
    assert vs["by-item"].results[0].note == "4 clusters"


def test_cluster_key_must_be_a_regex(tmp_path):
    d = claims_file(tmp_path, textwrap.dedent("""\
        claims:
          - id: bad
            claim: A broken pattern.
            test: clusters
            cells: {experiment: dbs, per_item: r, cluster: "^[^."}
            axis: system
            a: x
            b: y
        """))
    with pytest.raises(InputError, match=r"cluster: not a regular expression"):
        load_claims("m", d)
