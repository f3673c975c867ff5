"""What a benchmark cell ran on: its *stamp* (source hashes, input hashes, settings), and the git rule for cells
written before stamps existed.

A stamp is ``{"siftkit", "code", "files", "inputs", "settings"}`` (plus ``cell`` for one cell's own settings);
:func:`stamp_changes` says in words what differs between a stored stamp and the current one. Used by
:mod:`benchmarks.cells`; the pattern is described in docs/benchmarks.md.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
_SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".json", ".txt", ".jinja", ".j2")

class StaleCellError(RuntimeError):
    """A stored cell (or partial cell) was made by other code, data or settings than the experiment declares now."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _definitions(text: str, names: Sequence[str], where: str) -> str:
    """The source of the named top-level definitions (functions, classes, assignments) of a Python file."""
    tree = ast.parse(text)
    found: dict[str, str] = {}
    for node in tree.body:
        targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else [
            t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        for name in targets:
            if name in names:
                found[name] = ast.get_source_segment(text, node) or ""
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"{where}: no top-level definition named {', '.join(missing)}")
    return "\n".join(found[n] for n in names)


def source_hashes(sources: Sequence[str], repo: Path = REPO) -> dict[str, str]:
    """Hash of each declared source, by repository-relative name.

    A source is a file, a folder (every ``.py``/``.yaml``/... file below it, ``__pycache__`` excluded) or
    ``file.py::name1,name2`` (only those top-level definitions, so that editing a benchmark's page code does not
    make its cells stale).
    """
    out: dict[str, str] = {}
    for src in sources:
        rel, _, names = src.partition("::")
        path = repo / rel
        if names:
            out[src] = _sha(_definitions(path.read_text(), [n.strip() for n in names.split(",")], src).encode())
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts:
                    out[p.relative_to(repo).as_posix() if p.is_relative_to(repo) else str(p)] = _sha(p.read_bytes())
        elif path.is_file():
            out[rel] = _sha(path.read_bytes())
        else:
            raise FileNotFoundError(f"declared source {src!r} does not exist under {repo}")
    return out


_INPUT_MEMO: dict[tuple, str] = {}


HASH_CACHE = REPO / ".siftkit-cache" / "input-hashes.json"
"""Input hashes by (files, sizes, mtimes): a large input is read once per change, not once per page (git-ignored)."""


def input_hash(path: str | Path, cache: Path | None = HASH_CACHE) -> str:
    """Content hash of an input file or folder (all files below it, by relative name), memoised in this process and
    in ``cache`` on every file's (path, size, mtime)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    if not files or not all(p.exists() for p in files):
        raise FileNotFoundError(f"declared input {path} does not exist")
    sig = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if sig in _INPUT_MEMO:
        return _INPUT_MEMO[sig]
    key = _sha(json.dumps(sig).encode())
    stored = _read_cache(cache)
    if key not in stored:
        h = hashlib.sha256()
        for p in files:
            h.update((p.relative_to(path).as_posix() if path.is_dir() else p.name).encode() + b"\0")
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        stored[key] = h.hexdigest()[:16]
        if cache is not None:
            from siftkit.core.io import atomic_write_text

            atomic_write_text(cache, json.dumps({**_read_cache(cache), key: stored[key]}))
    _INPUT_MEMO[sig] = stored[key]
    return stored[key]


def _read_cache(cache: Path | None) -> dict[str, str]:
    try:
        return json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    except (OSError, ValueError):  # a damaged cache only costs a re-read of the inputs
        return {}


def make_stamp(sources: Sequence[str], inputs: dict[str, str | Path] | None = None,
               settings: dict[str, Any] | None = None, repo: Path = REPO) -> dict[str, Any]:
    """What a cell runs on: ``{"siftkit", "code", "files", "inputs", "settings"}``.

    ``code`` is one hash over ``files`` (each declared source's hash); ``inputs`` maps a name to its content hash;
    ``settings`` is kept as given (JSON values). The siftkit version is recorded but not compared [ours]: the
    source hashes say whether the code changed, a version bump alone does not change a result.
    """
    import siftkit

    files = source_hashes(sources, repo)
    settings = json.loads(json.dumps(settings or {}, sort_keys=True, default=str))
    return {"siftkit": siftkit.__version__, "code": _sha(json.dumps(files, sort_keys=True).encode()),
            "files": files, "inputs": {k: input_hash(v) for k, v in sorted((inputs or {}).items())},
            "settings": settings}


def stamp_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between a stored stamp and the current one, in words (empty when the cell is current)."""
    out = []
    of, nf = old.get("files", {}), new.get("files", {})
    if old.get("code") != new.get("code"):
        changed = sorted(k for k in of.keys() & nf.keys() if of[k] != nf[k])
        added, removed = sorted(nf.keys() - of.keys()), sorted(of.keys() - nf.keys())
        out += [f"source {k} changed" for k in changed] + [f"source {k} added" for k in added]
        out += [f"source {k} removed" for k in removed]
        if not (changed or added or removed):
            out.append("declared sources differ")
    oi, ni = old.get("inputs", {}), new.get("inputs", {})
    out += [f"input {k} changed" if k in oi and k in ni else f"input {k} {'added' if k in ni else 'removed'}"
            for k in sorted(oi.keys() | ni.keys()) if oi.get(k) != ni.get(k)]
    if old.get("cell") != new.get("cell"):
        out.append(f"cell settings: {old.get('cell')!r} -> {new.get('cell')!r}")
    os_, ns = old.get("settings", {}), new.get("settings", {})
    out += [f"setting {k}: {os_.get(k, '(unset)')!r} -> {ns.get(k, '(unset)')!r}"
            for k in sorted(os_.keys() | ns.keys()) if os_.get(k) != ns.get(k)]
    return out


# ---------------------------------------------------------------------------------------------------------------
# legacy cells (written before stamps): verified against git history
# ---------------------------------------------------------------------------------------------------------------

def _git(*args: str, repo: Path = REPO) -> int:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=60).returncode
    except (OSError, subprocess.SubprocessError):
        return -1


def legacy_verdict(commit: str | None, files: Sequence[str], at: str = "HEAD",
                   repo: Path = REPO) -> tuple[str, str]:
    """Whether a legacy cell's method code is unchanged since it ran: ``("adoptable" | "stale" | "unverified",
    reason)``. Adoptable iff its commit is a clean commit of this repository and
    ``git diff --quiet <commit> <at> -- <files>`` holds; ``at="HEAD"`` compares with the working tree (the code that
    would stamp the cell), so uncommitted edits to those files count as changes."""
    if not commit:
        return "unverified", "no commit recorded (made on another machine or outside git)"
    if commit.endswith("+dirty"):
        return "unverified", f"made from uncommitted changes on {commit[:12]}"
    if _git("cat-file", "-e", f"{commit}^{{commit}}", repo=repo) != 0:
        return "unverified", f"commit {commit[:12]} is not in this repository"
    rc = _git("diff", "--quiet", commit, *([] if at == "HEAD" else [at]), "--", *files, repo=repo)
    if rc == 0:
        return "adoptable", f"{', '.join(files)} unchanged from {commit[:12]} to {at}"
    if rc == 1:
        return "stale", f"{', '.join(files)} changed since {commit[:12]}"
    return "unverified", f"git diff {commit[:12]} {at} failed"
