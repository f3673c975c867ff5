import pytest
from pydantic import BaseModel, Field

from siftkit.core.config import apply_overrides, dump_config, load_config
from siftkit.core.errors import ConfigError


class Train(BaseModel):
    lr: float = 1e-3
    steps: int = Field(10, ge=1)


class Exp(BaseModel):
    name: str = "x"
    seeds: list[int] = [0]
    train: Train = Train()


def test_yaml_toml_and_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: a\ntrain:\n  lr: 0.1\n")
    cfg = load_config(Exp, y, ["train.steps=5", "seeds=[1, 2]"])
    assert (cfg.name, cfg.train.lr, cfg.train.steps, cfg.seeds) == ("a", 0.1, 5, [1, 2])
    t = tmp_path / "c.toml"
    t.write_text('name = "b"\n[train]\nsteps = 3\n')
    assert load_config(Exp, t).train.steps == 3
    assert "lr: 0.001" in dump_config(Exp())


def test_errors_name_file_and_field(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("train:\n  steps: 0\n")
    with pytest.raises(ConfigError) as e:
        load_config(Exp, y)
    assert e.value.field == "train.steps" and str(y) in str(e.value)
    with pytest.raises(ConfigError, match='field "train.lr"'):
        load_config(Exp, None, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="not key=value"):
        apply_overrides({}, ["oops"])
    y.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse config"):
        load_config(Exp, y)


def test_yaml_is_safe_loaded(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        load_config(Exp, y)
