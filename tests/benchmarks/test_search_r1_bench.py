"""The Search-R1 benchmark on the runner: the grid follows the profile, and the page renders the stored cells."""

import pytest

pytest.importorskip("matplotlib")

from benchmarks.search_r1 import BENCHMARK, cell_settings, grid  # noqa: E402


def test_each_profile_runs_its_parts():
    cpu, gpu = BENCHMARK.load_config("cpu"), BENCHMARK.load_config("gpu")
    cells = grid(cpu)
    assert sum(c["part"] == "rl" for c in cells) == 2 * len(cpu.seeds)  # GRPO with and without the mask
    assert {"part": "ppo", "algo": "ppo", "mask": True, "seed": 0} in cells
    assert {"part": "direct", "per_source": 10, "max_new_tokens": 48} in cells
    assert [c["part"] for c in grid(gpu)] == ["smollm2-gpu", "smollm2-gpu-rl-only"]
    assert cell_settings(cpu, cells[0]) == {"rl": cpu.rl} and cell_settings(cpu, cells[-1]) == {}
    # both profiles stamp a cell alike (device and threads are resources), so GPU cells are current on the CPU
    exp_cpu, exp_gpu = BENCHMARK.experiment_for(cpu), BENCHMARK.experiment_for(gpu)
    assert exp_cpu.name == exp_gpu.name == "search_r1" and exp_cpu.settings == exp_gpu.settings


def test_the_page_renders_the_stored_cells(tmp_path, monkeypatch):
    """The committed cells give the committed numbers (regression: the layout may change, the numbers may not)."""
    import benchmarks.search_r1_page as page

    monkeypatch.setattr(page, "PLOTS", tmp_path)  # plots go to a temporary folder here
    cfg = BENCHMARK.load_config("cpu")
    text = page.render(cfg, BENCHMARK.experiment_for(cfg).load(allow_stale=True))
    row = "| GRPO | 3 ⚠ | after | policy | 0.413 ± 0.211 | 0.447 ± 0.250 | 0.380 ± 0.183 | 1.500 ± 0.020 |  |"
    assert row in text
    assert "| GRPO | 0.313 | [0.236, 0.395] | 150 | excludes |" in text  # policy − RAG, clusters bootstrap
    assert "| smollm2 ⚠ | after GRPO | 1.000 | 1.00 | 1.00 | 3299 |" in text
    assert "Speed-up 5.1×" in text and "7B average 0.343 vs 0.431" in text  # the paper's numbers from claims
    assert (tmp_path / "reward.png").exists() and (tmp_path / "smollm2_reward.png").exists()
