"""The results pages' one markdown table renderer and mean ± sd formatter (benchmarks.runner)."""

import pandas as pd

from benchmarks.cells import markdown_table
from benchmarks.runner import mean_sd, md_table


def test_md_table_lines():
    assert md_table(["a", "b"], [[1, "x"], [2.5, None]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    assert md_table(["only"], []) == "| only |\n|---|"


def test_mean_sd_by_hand():
    # mean 2, sample sd sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1
    assert mean_sd([1.0, 2.0, 3.0]) == "2.000 ± 1.000"
    assert mean_sd([0.5, None, 0.25], digits=2) == "0.38 ± 0.18"  # sd = 0.25 / sqrt(2) = 0.1768
    assert mean_sd([0.1234]) == "0.123"
    assert mean_sd([0.1234], sd_of_one=True) == "0.123 ± 0.000"
    assert mean_sd([]) == mean_sd([None]) == "–"


def test_collect_frame_table_uses_the_renderer():
    df = pd.DataFrame([{"method": "a", "ndcg": 0.5, "ndcg_std": 0.1, "ndcg_lo": 0.4, "ndcg_hi": 0.6},
                       {"method": "b", "ndcg": float("nan"), "ndcg_std": 0.0, "ndcg_lo": 0.0, "ndcg_hi": 0.0}])
    assert markdown_table(df, digits=2) == ("| method | ndcg |\n|---|---|\n| a | 0.50 ± 0.10 [0.40, 0.60] |\n"
                                            "| b | – |")
