"""A hostile user against ``siftkit bias``: NaN/inf sampling settings, an empty currency, repeated models, classes,
templates and variants, a model that does not exist, and responses files with repeated rows, unknown variants or
negative sample numbers (issue 24). Each case runs through ``main()`` in the contract driver and must be one
``siftkit:`` line naming the problem, exit 2, its folder (pre-existing output included) unchanged."""

from __future__ import annotations

import json

from tests.core.test_contract import Case, run_all

ROW = {"model": "synthetic:uniform", "prompt_id": "stocks/factorial/p000/t0/none", "pair_id": "stocks/factorial/p000/t0",
       "asset_class": "stocks", "debias": "none", "text": "I recommend Apple Inc. (AAPL).", "sample": 0,
       "finish_reason": "stop"}

RUN = ["bias", "run", "--model", "synthetic:uniform", "--dry-run", "--output", "{w}/out"]
CASES = [
    ("--temperature nan", RUN + ["--temperature", "nan"], "--temperature: must be a finite number, got nan"),
    ("--temperature inf", RUN + ["--temperature", "inf"], "--temperature: must be a finite number, got inf"),
    ("--top-p nan", RUN + ["--top-p", "nan"], "--top-p: must be a finite number"),
    ("--top-p 0", RUN + ["--top-p", "0"], "--top-p: must be in (0, 1], got 0.0"),
    ("--currency empty", RUN + ["--currency", " "], "--currency: must be a currency code"),
    ("--engine unknown with synthetic models", RUN + ["--engine", "vllm"], "--engine: 'vllm' is not one of torch, ct2"),
    ("a model twice", RUN + ["--model", "synthetic:uniform"], "--model: 'synthetic:uniform' is given twice"),
    ("a local model that does not exist", ["bias", "run", "--model", "{w}/nomodel", "--output", "{w}/out"],
     "is not one of synthetic:always-one, synthetic:uniform, synthetic:market-cap, smollm2"),
    ("--asset-class twice", ["bias", "grid", "--asset-class", "stocks,stocks"], "--asset-class: 'stocks' is given twice"),
    ("--templates 0,00", ["bias", "grid", "--templates", "0,00"], "--templates: 0 is given twice"),
    ("--debias twice", ["bias", "grid", "--debias", "none,system,none"], "--debias: 'none' is given twice"),
    ("responses: a row twice", ["bias", "analyze", "--responses", "{w}/dup.jsonl", "--output", "{w}/out"],
     "dup.jsonl:2: model 'synthetic:uniform', prompt 'stocks/factorial/p000/t0/none', sample 0 already on line 1"),
    ("responses: an unknown variant", ["bias", "analyze", "--responses", "{w}/debias.jsonl", "--output", "{w}/out"],
     "debias.jsonl:1: field \"debias\": 'polite' is not one of none, system"),
    ("responses: a negative sample", ["bias", "analyze", "--responses", "{w}/sample.jsonl", "--output", "{w}/out"],
     'sample.jsonl:1: field "sample" must be >= 0, got -1'),
    ("a huge --samples", RUN + ["--samples", "100000000"], "--samples: must be <= 1000, got 100000000"),
    ("a huge --resamples", ["bias", "analyze", "--responses", "{w}/sample.jsonl", "--output", "{w}/out",
                            "--resamples", "1000000000"], "--resamples: must be in [1, 100000]"),
]


def test_hostile_bias_inputs_are_one_line_exit_2_and_leave_everything(tmp_path):
    cases = []
    for i, (name, argv, needle) in enumerate(CASES):
        w = tmp_path / "cases" / str(i)
        w.mkdir(parents=True)
        (w / "out").mkdir()
        (w / "out" / "responses.jsonl").write_text("keep\n")
        (w / "dup.jsonl").write_text((json.dumps(ROW) + "\n") * 2)
        (w / "debias.jsonl").write_text(json.dumps({**ROW, "debias": "polite"}) + "\n")
        (w / "sample.jsonl").write_text(json.dumps({**ROW, "sample": -1}) + "\n")
        cases.append(Case(name, name, [a.replace("{w}", str(w)) for a in argv], w, names=needle))
    home = tmp_path / "home"
    home.mkdir()
    bad = run_all(cases, home)
    assert not bad, "\n".join(bad)
