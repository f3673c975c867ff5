"""Plug-in registry: asset checks with their source in ``siftkit doctor``, broken plug-ins reported at every CLI start,
and quickstart options namespaced per step (``--set STEP.KEY=value``)."""

import json
import subprocess
import sys
import textwrap

import pytest
import typer

from siftkit.core.assets import AssetStatus, check_all
from siftkit.core.errors import InputError
from siftkit.core.plugins import QuickstartOption, Registry, discover


def _registry():
    reg = Registry(app=typer.Typer(), serve=typer.Typer())
    reg.add_quickstart_step("recbench", lambda ctx: None, options=[
        QuickstartOption("queries", int, 20, "queries to rank"),
        ("lr", float, 1e-3),
        QuickstartOption("model", str, "smollm2"),
        QuickstartOption("cot", bool, False),
        QuickstartOption("split", str, "dev", choices=lambda: ["dev", "test"])])
    reg.add_quickstart_step("search-r1", lambda ctx: None, options=[QuickstartOption("steps", int, 15)])
    reg.add_quickstart_step("llm", lambda ctx: None)
    return reg


# ------------------------------------------------------------------------------------------- quickstart options
def test_step_options_defaults_and_typed_overrides():
    opts = _registry().step_options(["recbench.queries=5", "recbench.lr=2e-4", "recbench.model=1e-4",
                                     "recbench.cot=true", "search_r1.steps=3", "recbench.split=test"])
    assert opts["recbench"] == {"queries": 5, "lr": 2e-4, "model": "1e-4", "cot": True, "split": "test"}
    assert opts["search-r1"] == {"steps": 3}  # search_r1 and search-r1 name the same step
    assert opts["llm"] == {} and opts["metrics-demo"] == {} and opts["doctor"] == {}
    assert _registry().step_options([])["recbench"]["queries"] == 20


@pytest.mark.parametrize("override, message", [
    ("queries=5", "siftkit: --set: override 'queries=5' names no step: write STEP.KEY=value (steps: doctor, "
                  "metrics-demo, llm, recbench, search-r1)"),
    ("nope.queries=5", "siftkit: --set: nope.queries=5: unknown quickstart step 'nope' (steps: doctor, "
                       "metrics-demo, llm, recbench, search-r1)"),
    ("recbench.querys=5", "siftkit: --set: recbench.querys=5: step 'recbench' has no option 'querys' (options: "
                          "queries (int, default 20), lr (float, default 0.001), model (str, default 'smollm2'), "
                          "cot (bool, default False), split (str, default 'dev'))"),
    ("llm.threads=2", "siftkit: --set: llm.threads=2: step 'llm' has no option 'threads' (it takes no options)"),
    ("search-r1.steps=many", "siftkit: --set: search-r1.steps: expected int, got 'many'"),
    ("search-r1.steps=1.5", "siftkit: --set: search-r1.steps: expected int, got '1.5'"),
    ("recbench.cot=maybe", "siftkit: --set: recbench.cot: expected bool, got 'maybe'"),
    ("recbench.split=train", "siftkit: --set: recbench.split: 'train' is not one of dev, test"),
    ("recbench.queries", "siftkit: --set: override 'recbench.queries' is not key=value"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(InputError) as e:
        _registry().step_options([override])
    assert e.value.format() == message


def test_select_steps_keeps_order_and_rejects_unknown():
    reg = _registry()
    assert reg.select_steps(["search_r1", "metrics-demo"]) == ["metrics-demo", "search-r1"]
    assert reg.select_steps(None) == ["doctor", "metrics-demo", "llm", "recbench", "search-r1"]
    reg.failed["avva"] = "ImportError: no module named x"
    with pytest.raises(InputError) as e:
        reg.select_steps(["avva"])
    assert e.value.format() == ("siftkit: --only: unknown quickstart step 'avva' (steps: doctor, metrics-demo, llm, "
                                "recbench, search-r1); plug-in 'avva' failed to load: ImportError: no module named x")


def test_duplicate_step_or_option_is_refused():
    reg = _registry()
    with pytest.raises(ValueError):
        reg.add_quickstart_step("search_r1", lambda ctx: None)
    with pytest.raises(ValueError):
        reg.add_quickstart_step("x", lambda ctx: None, options=[("a", int, 1), ("a", int, 2)])


def test_migrated_steps_declare_their_options():
    reg = discover(Registry(app=typer.Typer(), serve=typer.Typer()))
    opts = reg.step_options(["cascade.config=tiny", "search-r1.steps=2", "lref.max_length=512"])
    assert opts["cascade"] == {"config": "tiny"}
    assert opts["search-r1"] == {"steps": 2}
    assert opts["lref"] == {"base_model": "smollm2", "max_length": 512}
    with pytest.raises(InputError, match="'huge' is not one of"):
        reg.step_options(["cascade.config=huge"])


# ------------------------------------------------------------------------------------------------- asset checks
def test_asset_checks_carry_their_source_and_errors_are_reported():
    reg = Registry(app=typer.Typer(), serve=typer.Typer())
    reg.current = "demo"
    reg.add_asset_check("demo server", "service", lambda: (True, "answers on 127.0.0.1"))
    reg.add_asset_check("demo data", "data", lambda: 1 / 0)
    reg.add_asset_check("demo model", "model", lambda: AssetStatus("", "", False, detail="weights missing"))
    st = check_all(extra=reg.asset_checks, failed={"broken": "ImportError: x"})
    core = [s for s in st if s.source == "core"]
    assert {s.kind for s in core} >= {"LLM", "library"} and len(core) == 15
    mine = {s.name: s for s in st if s.source == "demo"}
    assert (mine["demo server"].ok, mine["demo server"].kind, mine["demo server"].detail) == (
        True, "service", "answers on 127.0.0.1")
    assert not mine["demo data"].ok and mine["demo data"].detail.startswith("failed to load: ZeroDivisionError")
    assert (mine["demo model"].ok, mine["demo model"].kind, mine["demo model"].detail) == (
        False, "model", "weights missing")
    (bad,) = [s for s in st if s.source == "broken"]
    assert (bad.name, bad.kind, bad.ok) == ("plug-in broken", "plug-in", False)


THROWAWAY = '''
from siftkit.core.plugins import QuickstartOption

def register(registry):
    registry.add_asset_check("throwaway file", "data (optional)", lambda: (True, "read 3 rows"))
    registry.add_quickstart_step("throwaway", lambda ctx: None, options=[QuickstartOption("n", int, 1)])
'''


def _cli_with_plugins(tmp_path, plugins: dict[str, str], *args, pre: str = ""):
    """Run the CLI with extra entry-point plug-ins (modules written under tmp_path); ``pre`` runs first."""
    for name, src in plugins.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(src))
    code = textwrap.dedent(f"""
        import importlib, importlib.metadata, sys
        sys.path.insert(0, {str(tmp_path)!r})
        real = importlib.metadata.entry_points

        class EP:
            def __init__(self, name):
                self.name = name

            def load(self):
                return importlib.import_module(self.name)

        def entry_points(group=None, **kw):
            if group == "siftkit.plugins":
                return [EP(n) for n in {sorted(plugins)!r}]
            return real(group=group, **kw)

        importlib.metadata.entry_points = entry_points
        {pre}
        from siftkit.cli import main
        main()
    """)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_plugin_asset_check_in_doctor_json_and_broken_plugin_reported(tmp_path):
    plugins = {"throwaway": THROWAWAY, "brokenplug": "import siftkit_no_such_module\n"}
    # doctor --json with the core checks cut to the fast ones (the model checks load models: tested elsewhere)
    res = _cli_with_plugins(tmp_path, plugins, "--version")
    lines = res.stderr.strip().splitlines()
    assert lines == ["siftkit: warning: plug-in 'brokenplug' failed to load and is unavailable: "
                     "ModuleNotFoundError: No module named 'siftkit_no_such_module'"]
    assert res.returncode == 0 and res.stdout.startswith("siftkit ")

    res = _cli_with_plugins(tmp_path, plugins, "doctor", "--json", pre="import siftkit.core.assets as a; "
                            "a.CHECKS[:] = [c for c in a.CHECKS if c.__name__ == '_check_soundfile']")
    statuses = json.loads(res.stdout)
    by_name = {s["name"]: s for s in statuses}
    # built-in method plug-ins (e.g. catalog's PostgreSQL check) may add their own rows between these
    ours = [s["source"] for s in statuses if s["source"] in ("core", "throwaway", "brokenplug")]
    assert ours == ["core", "throwaway", "brokenplug"]
    assert by_name["throwaway file"]["ok"] and by_name["throwaway file"]["detail"] == "read 3 rows"
    assert not by_name["plug-in brokenplug"]["ok"]
    assert res.returncode == 1  # a plug-in that failed to load makes doctor fail


def test_quickstart_rejects_unknown_only_and_set_before_any_run_dir(tmp_path):
    for args, msg in [(["--only", "nope"], "siftkit: --only: unknown quickstart step 'nope'"),
                      (["--set", "throwaway.n=x"], "siftkit: --set: throwaway.n: expected int, got 'x'"),
                      (["--set", "throwaway.m=1"], "siftkit: --set: throwaway.m=1: step 'throwaway' has no option")]:
        res = _cli_with_plugins(tmp_path, {"throwaway": THROWAWAY}, "quickstart", "--output", str(tmp_path / "o"),
                                "--skip-doctor", *args)
        assert res.returncode == 2, res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert line.startswith(msg)
        assert not (tmp_path / "o").exists()


def test_quickstart_passes_each_step_its_own_options(tmp_path):
    plugin = '''
    import json
    from siftkit.core.plugins import QuickstartOption
    from siftkit.core.report import Section

    def step(name):
        def fn(ctx):
            (ctx.run_dir / f"{name}.json").write_text(json.dumps(ctx.options))
            return Section(name)
        return fn

    def register(registry):
        registry.add_quickstart_step("alpha", step("alpha"), options=[QuickstartOption("n", int, 1)])
        registry.add_quickstart_step("beta", step("beta"), options=[QuickstartOption("n", int, 7),
                                                                    QuickstartOption("tag", str, "b")])
    '''
    res = _cli_with_plugins(tmp_path, {"twosteps": plugin}, "quickstart", "--output", str(tmp_path / "o"),
                            "--skip-doctor", "--only", "alpha", "--only", "beta", "--set", "alpha.n=3")
    assert res.returncode == 0, res.stderr
    (run_dir,) = list((tmp_path / "o" / "quickstart").iterdir())
    assert json.loads((run_dir / "alpha.json").read_text()) == {"n": 3}
    assert json.loads((run_dir / "beta.json").read_text()) == {"n": 7, "tag": "b"}
    assert not (run_dir / "metrics-demo").exists()


def test_discover_registers_each_plugin_once_per_registry():
    """``main()`` may run many times in one process (the contract test does): a second discover adds nothing."""
    reg = discover(Registry(app=typer.Typer(), serve=typer.Typer()))
    before = ([s.name for s in reg.steps], len(reg.app.registered_groups), len(reg.asset_checks), list(reg.loaded))
    assert reg.discovered and before[0] and not reg.failed
    assert discover(reg) is reg
    assert ([s.name for s in reg.steps], len(reg.app.registered_groups), len(reg.asset_checks),
            list(reg.loaded)) == before and not reg.failed
