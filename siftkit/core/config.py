"""Configuration files (YAML or TOML) validated by pydantic, with ``--set key=value`` overrides.

    cfg = load_config(MyConfig, "exp.yaml", ["train.lr=1e-4", "seeds=[0,1,2]"])

Values in overrides are parsed as YAML scalars/flow collections (``1e-4``, ``true``, ``[0, 1]``); dotted keys
reach nested sections. Errors name the file and the field: ``siftkit: exp.yaml: field "train.lr": ...``.
YAML is read with ``yaml.safe_load`` only.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .validate import cut

T = TypeVar("T", bound=BaseModel)


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError("config file not found", path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("config file is not valid UTF-8", path) from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise ConfigError(f"cannot parse config: {str(e).splitlines()[0]}", path,
                          line + 1 if line is not None else None) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config must be a mapping at the top level", path)
    return data


def parse_override(ov: str) -> tuple[str, Any]:
    """One ``key=value`` string to ``(key, value)``; the value is read as YAML (``1`` → int), else kept as text."""
    if "=" not in ov:
        raise ConfigError(f"override {cut(ov)} is not key=value", "--set")
    key, raw = ov.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings to a nested dict (in place) and return it."""
    for ov in overrides:
        key, value = parse_override(ov)
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f'cannot set "{key}": "{p}" is not a section', "--set", None, key)
        node[parts[-1]] = value
    return data


def load_config(model: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Read, override and validate a config; raises :class:`ConfigError` naming file and field."""
    data = read_config_file(path) if path else {}
    apply_overrides(data, overrides)
    return _validate(model, data, path if path else "--set")


def _validate(model: type[T], data: dict[str, Any], src: str | Path, where: str = "") -> T:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f'field "{loc}"{where}: {err["msg"]}', src, None, loc) from None


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def load_profile(model: type[T], path: str | Path, profile: str, overrides: Sequence[str] = ()) -> T:
    """Read a config file with named profiles, pick one, apply overrides and validate.

    The file holds ``settings`` (shared by every profile) and ``profiles: {name: {...}}``; the chosen profile's
    keys replace the shared ones (one level deep into sections), then ``key=value`` overrides apply::

        settings: {seed: 0, queries: 100}
        profiles:
          cpu: {device: cpu, workers: 2}
          gpu: {device: cuda, workers: 1, queries: 1000}

    Raises :class:`ConfigError` naming the file and the field (an unknown profile, a top-level key other than
    ``settings``/``profiles``, a bad value).
    """
    data = read_config_file(path)
    extra = sorted(set(data) - {"settings", "profiles"})
    if extra:
        raise ConfigError(f'field "{extra[0]}": only "settings" and "profiles" may sit at the top level', path)
    profiles = data.get("profiles") or {}
    if profile not in profiles:
        raise ConfigError(f'field "profiles.{profile}": no such profile (have: {", ".join(profiles) or "none"})',
                          path)
    merged = dict(data.get("settings") or {})
    for k, v in (profiles[profile] or {}).items():
        merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    apply_overrides(merged, overrides)
    return _validate(model, merged, path, f" (profile {profile})")
