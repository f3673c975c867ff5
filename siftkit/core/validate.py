"""Option and path checks shared by every command: each raises :class:`~siftkit.core.errors.InputError`.

A command checks its options and paths with these helpers first, before any model loads or run directory is made,
so a typo costs nothing and leaves nothing behind::

    hits = check_range(hits, "--hits", lo=1)
    algo = check_choice(algo, ("grpo", "ppo"), "--algo")
    seeds = check_int_list("0,1,2", "--seeds", lo=0)
    out = check_output_file(output, "--output")

``field`` is named as given: an option (``"--hits"``) or a config field (``"n_entities"``). Values echoed in
messages are cut (:func:`cut`) so a 5 MB field never becomes a 5 MB line on stderr.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import InputError

MAX_ECHO = 80  # [ours] characters of a user value quoted in a message
# [ours] upper bounds of sizes the commands share: a mistyped value (an extra zero, 1e11) must be one line, not hours
# of work or a 700 GB allocation
MAX_RESAMPLES = 100_000  # bootstrap / permutation / Monte Carlo resamples
MAX_NEW_TOKENS = 32_768  # new tokens per reply
MAX_PARALLEL = 1_024  # threads, workers, chunks or requests in flight
MAX_BATCH = 4_096  # prompts per model batch


def cut(value: Any, n: int = MAX_ECHO) -> str:
    """``repr`` of ``value``, at most ``n`` characters: longer ones end in ``...(+K chars)``."""
    s = repr(value)
    if len(s) <= n:
        return s
    return f"{s[:n]}...(+{len(s) - n} chars)"


def check_choice(value: Any, choices: Iterable[Any], field: str, path: str | Path | None = None,
                 line: int | None = None) -> Any:
    """``value`` if it is one of ``choices``, else InputError listing them (naming ``path:line`` for a value read
    from a file)."""
    choices = list(choices)
    if value not in choices:
        msg = f"{cut(value)} is not one of {', '.join(map(str, choices))}"
        raise InputError(f'field "{field}": {msg}' if path is not None else msg, path, line, field=field)
    return value


def check_choices(values: Sequence[Any], choices: Iterable[Any], field: str, allow_empty: bool = False) -> list:
    """Every item of ``values`` in ``choices``; an empty list is an error unless ``allow_empty``."""
    choices = list(choices)
    values = list(values)
    if not values and not allow_empty:
        raise InputError(f"needs at least one of {', '.join(map(str, choices))}", field=field)
    bad = [v for v in values if v not in choices]
    if bad:
        raise InputError(f"{cut(bad[0])} is not one of {', '.join(map(str, choices))}", field=field)
    return values


def check_range(value: Any, field: str, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> Any:
    """``value`` if ``lo <= value <= hi`` (``<`` with ``lo_open``/``hi_open``); NaN and infinities are refused."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"must be a finite number, got {cut(value)}", field=field)
    bad = ((lo is not None and (value <= lo if lo_open else value < lo))
           or (hi is not None and (value >= hi if hi_open else value > hi)))
    if bad:
        left = "" if lo is None else ("(" if lo_open else "[") + f"{lo:g}"
        right = "" if hi is None else f"{hi:g}" + (")" if hi_open else "]")
        if lo is not None and hi is not None:
            want = f"in {left}, {right}"
        elif lo is not None:
            want = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            want = f"{'<' if hi_open else '<='} {hi:g}"
        raise InputError(f"must be {want}, got {cut(value)}", field=field)
    return value


def _split(spec: str) -> list[str]:
    return [t.strip() for t in str(spec).split(",") if t.strip()]


def check_int_list(spec: str, field: str, lo: int | None = None, hi: int | None = None,
                   allow_empty: bool = False) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]``; each item an integer in range, at least one unless ``allow_empty``."""
    out = []
    for tok in _split(spec):
        try:
            v = int(tok)
        except ValueError:
            raise InputError(f"{cut(tok)} is not an integer", field=field) from None
        out.append(check_range(v, field, lo, hi))
    if not out and not allow_empty:
        raise InputError(f"needs at least one integer, got {cut(spec)}", field=field)
    return out


def check_float_list(spec: str, field: str, lo: float | None = None, hi: float | None = None,
                     lo_open: bool = False, allow_empty: bool = False) -> list[float]:
    """``"1,20.5"`` → ``[1.0, 20.5]``; each item a finite number in range, at least one unless ``allow_empty``."""
    out = []
    for tok in _split(spec):
        try:
            v = float(tok)
        except ValueError:
            raise InputError(f"{cut(tok)} is not a number", field=field) from None
        out.append(check_range(v, field, lo, hi, lo_open=lo_open))
    if not out and not allow_empty:
        raise InputError(f"needs at least one number, got {cut(spec)}", field=field)
    return out


def check_input_file(path: str | Path, field: str | None = None) -> Path:
    """An existing, readable regular file (its content is checked by the reader that parses it)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path, field=field)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path, field=field)
    if not os.access(path, os.R_OK):
        raise InputError("file is not readable", path, field=field)
    return path


def _writable_ancestor(path: Path, field: str | None) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory (so ``mkdir -p`` + write works)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{field}: cannot create it, {parent} is not a directory", path, field=field)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{field}: cannot write here, folder {parent} is not writable", path, field=field)


def check_output_file(path: str | Path, field: str = "--output") -> Path:
    """A file the command may (re)place: not a directory, its folder writable (or creatable)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{field} is a directory; give a file name", path, field=field)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{field} is not writable", path, field=field)
    _writable_ancestor(path, field)
    return path


def check_output_dir(path: str | Path, field: str = "--output") -> Path:
    """A folder the command may create or write into: not an existing file, writable (or creatable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{field} is a file; give a folder", path, field=field)
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{field} is a folder that is not writable", path, field=field)
    else:
        _writable_ancestor(path, field)
    return path


def check_url(value: str, field: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (an endpoint or server address), checked before any request."""
    from urllib.parse import urlparse

    try:
        parts = urlparse(value)
        parts.port  # noqa: B018  raises ValueError for a port that is not a number
    except ValueError:
        raise InputError(f"{cut(value)} is not a URL", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{cut(value)} is not an http:// or https:// URL with a host", field=field)
    return value


def check_local_model(value: str, field: str = "--model", others: Sequence[str] = ()) -> str:
    """A local chat model the loaders accept: ``smollm2``, an existing ``.gguf`` file or a folder holding a
    ``config.json``; ``others`` are further names the command accepts (e.g. baselines), listed in the message.

    The loaders check the same when they run; this is for commands that load the model late (inside a batch, after a
    progress bar has started), so a typo is one line before any work."""
    if value == "smollm2" or value in others:
        return value
    p = Path(value)
    if value.endswith(".gguf") and p.is_file():
        return value
    if p.is_dir() and (p / "config.json").is_file():
        return value
    want = ", ".join([*others, "smollm2", "a model folder (with config.json) or a .gguf file"])
    raise InputError(f"{cut(value)} is not one of {want}", field=field)


def check_unique(values: Sequence[Any], field: str, path: str | Path | None = None, what: str = "") -> list:
    """``values`` with no item twice (a repeated model, class or variant would be counted twice). For values read
    from ``path`` (e.g. the column names of a table) the message names ``what`` and both positions."""
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            if path is None:
                raise InputError(f"{cut(v)} is given twice", field=field)
            raise InputError(f"{field}: {what} {cut(v, 60)} appears twice ([{seen[v]}] and [{i}])", path,
                             field=field)
        seen[v] = i
    return list(values)


_DEVICE = re.compile(r"(cpu|auto|mps|cuda(:\d+)?)")


def check_device(value: str, field: str = "--device") -> str:
    """A torch device name (``cpu``, ``cuda``, ``cuda:1``, ``mps``) or ``auto``; not whether it exists here."""
    if not _DEVICE.fullmatch(str(value)):
        raise InputError(f"{cut(value)} is not a device (cpu, cuda, cuda:1, mps or auto)", field=field)
    return value
