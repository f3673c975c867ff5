"""Run directories: ``runs/<name>/<time>/`` holding the resolved config, metrics JSON, log, manifest and report.

The manifest records what is needed to reproduce a run: git commit, ``pip freeze``, thread counts, seeds and
the sha256 of every model and data file the run read (register them with :meth:`RunDir.record_input`).
API keys never reach a run directory: :func:`redact` drops any key that looks like a secret before writing.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .io import atomic_write_text

_SECRET_WORDS = ("api_key", "apikey", "token", "secret", "password", "authorization")


def redact(obj: Any) -> Any:
    """Replace values under secret-looking keys with ``"<redacted>"`` (recursively)."""
    if isinstance(obj, dict):
        return {k: ("<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) and v else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    return obj


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit(cwd: str | Path | None = None) -> str | None:
    """``$SIFTKIT_GIT_COMMIT`` when set (a copy of the tree sent to another machine, whose ``.git``, if any, may be
    older than the tree: the sender names its commit); else HEAD, ``+dirty`` with uncommitted changes to tracked files;
    ``None`` outside a git checkout."""
    if os.environ.get("SIFTKIT_GIT_COMMIT"):
        return os.environ["SIFTKIT_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).resolve().parents[2],
                             capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd or Path(__file__).resolve().parents[2], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def pip_freeze() -> list[str]:
    try:
        from importlib.metadata import distributions

        return sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions() if d.metadata["Name"])
    except Exception:  # metadata of a broken dist must not stop a run
        return []


def thread_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cpu_count": os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if var in os.environ:
            info[var] = os.environ[var]
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


@dataclass
class RunDir:
    """A run directory. Create with :meth:`create`; everything written through it is atomic."""

    path: Path
    name: str
    seeds: list[int] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, root: str | Path = "runs", seeds: list[int] | None = None) -> "RunDir":
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = Path(root) / name / stamp
        path.mkdir(parents=True, exist_ok=False)
        rd = cls(path=path, name=name, seeds=list(seeds or []))
        rd._attach_log()
        return rd

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        path = Path(path)
        man = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").exists() else {}
        met = json.loads((path / "metrics.json").read_text()) if (path / "metrics.json").exists() else {}
        return cls(path=path, name=man.get("name", path.parent.name), seeds=man.get("seeds", []),
                   inputs=man.get("inputs", {}), metrics=met)

    def _attach_log(self) -> None:
        self.logger = logging.getLogger(f"siftkit.run.{self.path}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False  # run.log only: a library's root handler must not echo it to the console
        h = logging.FileHandler(self.path / "run.log", encoding="utf-8")
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.addHandler(h)

    def log(self, msg: str) -> None:
        if not hasattr(self, "logger"):
            self._attach_log()
        self.logger.info(msg)

    def record_input(self, path: str | Path) -> str:
        """Hash a model or data file (or every file of a folder) read by this run; returns the digest."""
        p = Path(path)
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        digest = ""
        for f in files:
            digest = sha256_file(f)
            self.inputs[str(f)] = digest
        return digest

    def write_config(self, cfg: Any) -> Path:
        import yaml

        data = cfg.model_dump(mode="json") if hasattr(cfg, "model_dump") else cfg
        return atomic_write_text(self.path / "config.yaml", yaml.safe_dump(redact(data), sort_keys=False))

    def write_metrics(self, metrics: dict[str, Any] | None = None) -> Path:
        if metrics:
            self.metrics.update(metrics)
        return atomic_write_text(self.path / "metrics.json",
                                 json.dumps(redact(self.metrics), indent=2, default=str))

    def write_manifest(self, extra: dict[str, Any] | None = None) -> Path:
        man = {
            "name": self.name,
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "argv": redact(sys.argv),
            "threads": thread_info(),
            "seeds": self.seeds,
            "inputs": self.inputs,
            "pip_freeze": pip_freeze(),
        }
        man.update(redact(extra or {}))
        return atomic_write_text(self.path / "manifest.json", json.dumps(man, indent=2, default=str))
