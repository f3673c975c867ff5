"""Known-answer matrices: references resolved into the paper table, defaults applied, bad conditions named; the
usefulness matrix is package data (found through importlib.resources, as in an installed wheel)."""

from pathlib import Path

import pytest

from siftkit.core.errors import InputError
from siftkit.core.known_answer import load_matrix, package_resource, resolve_conditions, resolve_ref

TABLE = {"t": {"m1": {"rho": 0.384}, 50: {"rho": 0.5}}}


def test_resolve_ref_walks_string_keys():
    assert resolve_ref(TABLE, "t/m1/rho") == 0.384
    assert resolve_ref(TABLE, "t/50") == {"rho": 0.5}
    with pytest.raises(KeyError):
        resolve_ref(TABLE, "t/m2")
    with pytest.raises(KeyError):
        resolve_ref(TABLE, "t/m1/rho/x")


def test_conditions_get_defaults_and_resolved_expected():
    conds = [{"model": "m1", "expected": "t/m1"}, {"model": "m1", "policy": "keep", "expected": {"rho": 0.1}},
             {"model": "m3", "known_answer": False, "note": "excluded"}]
    out = resolve_conditions(conds, TABLE, {"policy": "exclude"}, match=("model", "policy"))
    assert out == [{"policy": "exclude", "model": "m1", "expected": {"rho": 0.384}},
                   {"policy": "keep", "model": "m1", "expected": {"rho": 0.1}},
                   {"policy": "exclude", "model": "m3", "known_answer": False, "note": "excluded", "expected": {}}]
    assert conds[0]["expected"] == "t/m1"  # the input is not changed


@pytest.mark.parametrize("conds, field", [
    ([{"model": "m1", "expected": "t/zz"}], "conditions[0].expected"),
    ([{"model": "m1"}], "conditions[0].expected"),
    ([{"expected": "t/m1"}], "conditions[0].model"),
    (["m1"], "conditions[0]"),
    ({"model": "m1"}, "conditions"),
])
def test_bad_conditions_name_the_field(conds, field):
    with pytest.raises(InputError) as e:
        resolve_conditions(conds, TABLE, match=("model",), path="x.yaml", where="claims[c].")
    assert e.value.field == f"claims[c].{field}" and e.value.path == "x.yaml"


def test_usefulness_matrix_is_package_data():
    res = package_resource("siftkit.usefulness/published.yaml")
    assert res.is_file() and "conditions:" in res.read_text(encoding="utf-8")
    conds = load_matrix("siftkit.usefulness/published.yaml", match=("model", "prompt", "file"))
    assert len(conds) == 11 and all(c["policy"] in ("exclude", "keep") for c in conds)
    kept = [c for c in conds if c["policy"] == "keep"]
    assert [(c["model"], c["expected"]) for c in kept] == [("Llama-3.2-3B", {"spearman": 0.189, "accuracy": 0.298})]
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"siftkit.usefulness" = ["fixtures/*", "published.yaml"]' in pyproject  # shipped in the wheel


@pytest.mark.parametrize("ref", ["siftkit.usefulness/nope.yaml", "siftkit.nope/published.yaml", "no-slash"])
def test_missing_package_data_is_input_error(ref):
    with pytest.raises(InputError, match="not found"):
        load_matrix(ref)


@pytest.mark.parametrize("text, msg", [("paper: [1\n", "cannot parse YAML"), ("- 1\n", "expected a mapping"),
                                       ("paper: {}\ndefaults: 3\nconditions: []\n", "defaults"),
                                       ("paper: {}\nconditions: 3\n", "expected a list")])
def test_bad_matrix_file_is_input_error(tmp_path, text, msg):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=msg):
        load_matrix(p)
    with pytest.raises(InputError, match="not found"):
        load_matrix(tmp_path / "absent.yaml")
