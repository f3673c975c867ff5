"""The LREF quickstart step registers itself and returns its table (run here on the tiny Llama)."""

from siftkit.core.plugins import Registry
from siftkit.core.report import StepContext
from siftkit.relevance import plugin


class _App:
    def __init__(self):
        self.groups = []

    def add_typer(self, app, name):
        self.groups.append(name)


def test_register_adds_command_group_and_step():
    reg = Registry(app=_App(), serve=None)
    plugin.register(reg)
    assert reg.app.groups == ["relevance"] and [s.name for s in reg.steps] == ["lref"]


def test_quickstart_step_table(tiny_llama_path, tmp_path):
    ctx = StepContext(run_dir=tmp_path, seed=0, options={"base_model": str(tiny_llama_path), "max_length": 512})
    sec = plugin.quickstart_step(ctx)
    df = sec.tables[0][1]
    assert list(df["model"])[:2] == ["zero-shot SmolLM2", "SFT (6 steps)"] and len(df) == 3
    assert all(0 <= v <= 1 for v in df["macro_f1"])
