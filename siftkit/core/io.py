"""Readers and writers: JSONL, CSV, Parquet, TREC run and qrels files.

Every reader checks what it reads and raises :class:`~siftkit.core.errors.InputError` naming the file, the
line (JSONL/TREC: physical line; CSV/Parquet: data row, header excluded, 1-based) and the field. Empty files,
non-UTF-8 bytes, truncated JSON, missing fields/columns and wrong types are each reported in one line.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import InputError
from .records import ALIASES, RECORD_TYPES, SCHEMAS, Candidate, Judgment, Run
from .validate import check_choice, check_input_file, cut

_TYPE_NAMES = {str: "string", int: "integer", float: "number", dict: "object", list: "array", bool: "boolean"}


def _read_text(path: Path) -> str:
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 BOM (e.g. the THUIR CSV) is not content
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})", path, line) from None
    if not text.strip():
        raise InputError("file is empty", path)
    return text


def iter_text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Stream ``(line_number, line)`` of a UTF-8 text file without reading it whole (corpora can be large), with
    the checks of the whole-file readers: missing file, a directory, a UTF-8 BOM (skipped), non-UTF-8 bytes (exact
    line), an empty file."""
    path = check_input_file(path)
    content = False
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})", path,
                                 n) from None
            content = content or bool(line.strip())
            yield n, line
    if not content:
        raise InputError("file is empty", path)


def check_fields(row: dict[str, Any], schema: dict[str, tuple[tuple[type, ...], bool]], path, line: int) -> None:
    """Raise InputError for the first missing required field or wrongly typed field of ``row``."""
    for name, (types, required) in schema.items():
        if name not in row or row[name] is None:
            if required:
                raise InputError(f'field "{name}" missing', path, line, name)
            continue
        v = row[name]
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if not ok:
            want = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise InputError(f'field "{name}" must be {want}, got {_TYPE_NAMES.get(type(v), type(v).__name__)} '
                             f"{json.dumps(v, default=str)[:40]}", path, line, name)


# --------------------------------------------------------------------------------------------------- JSONL
def _renamed(names: list[str], aliases: dict[str, str] | None) -> list[str]:
    """Column names with each alias (e.g. ``id``) replaced by its field (``docno``) when the field is absent."""
    if not aliases:
        return list(names)
    return [aliases[n] if n in aliases and aliases[n] not in names else n for n in names]


def iter_jsonl(path: str | Path, schema: dict | None = None,
               aliases: dict[str, str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; every object must be a JSON object.

    ``aliases`` maps other names of a field to it (``{"id": "docno"}``), applied before the schema check."""
    text = _read_text(Path(path))
    lines = text.splitlines()
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            truncated = i == len(lines) and not text.endswith("\n")
            what = "truncated JSON (the file ends inside this record)" if truncated else "invalid JSON"
            raise InputError(f"{what}: {e.msg} (column {e.colno})", path, i) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {_TYPE_NAMES.get(type(obj), type(obj).__name__)}",
                             path, i)
        if aliases:
            obj = dict(zip(_renamed(list(obj), aliases), obj.values()))
        if schema:
            check_fields(obj, schema, path, i)
        yield i, obj


def read_jsonl(path: str | Path, schema: dict | None = None,
               aliases: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return [obj for _, obj in iter_jsonl(path, schema, aliases)]


def read_json(path: str | Path, expect: type | None = None) -> Any:
    """Read one JSON document (BOM tolerated); bad JSON names the line, ``expect`` checks the top-level type."""
    path = Path(path)
    text = _read_text(path)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"invalid JSON: {e.msg} (column {e.colno})", path, e.lineno) from None
    if expect is not None and not isinstance(obj, expect):
        raise InputError(f"expected a JSON {_TYPE_NAMES.get(expect, expect.__name__)} at the top level, got "
                         f"{_TYPE_NAMES.get(type(obj), type(obj).__name__)}", path)
    return obj


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import (os.umask can only be read by setting it)


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error it is renamed onto ``path``.

    On error the temporary file is removed and an existing ``path`` is left as it was: an output is replaced only
    by a successful run. The file gets the mode a plain ``open(path, "w")`` would give (``mkstemp`` alone makes it
    private). A directory at ``path`` is an :class:`InputError` (checked before anything is written).

    Example:
        >>> with atomic_output("out.parquet") as tmp:
        ...     table.to_parquet(tmp)
    """
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, not a file", path)
    if path.exists() and not path.is_file():
        # a device or a pipe (/dev/null, /dev/stdout, a FIFO): renaming onto it would replace the device node itself
        # (as root, /dev/null became a plain file), so the finished output is streamed into it instead
        yield from _through_special(path)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except (NotADirectoryError, FileExistsError, PermissionError) as e:  # e.g. a file where a folder must go
        raise InputError(f"cannot write here ({e.strerror})", path) from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _through_special(path: Path) -> Iterator[Path]:
    """``atomic_output`` for a non-regular ``path``: the block writes a private temporary file, copied into ``path``
    (opened for writing, never replaced) only when the block succeeds."""
    fd, tmp = tempfile.mkstemp(prefix="siftkit-out.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def atomic_output_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; when the block ends without error its files move into ``path``.

    A new ``path`` is one rename; into an existing folder each file is moved with ``os.replace`` (files already there
    and not written by the block are kept). On error the temporary folder is removed and ``path`` is untouched, so a
    failed run (e.g. training that dies before ``save_pretrained``) never leaves a half-written model folder.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("is a file, not a folder", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except (NotADirectoryError, FileExistsError, PermissionError) as e:
        raise InputError(f"cannot write here ({e.strerror})", path) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        if not path.exists():
            os.rename(tmp, path)
        else:
            for entry in sorted(tmp.iterdir()):
                dest = path / entry.name
                if entry.is_dir() and dest.is_dir():
                    shutil.rmtree(dest)
                os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a killed run leaves no half file
    and a failed one leaves the old file (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """:func:`atomic_write_text` for bytes."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    def enc(r):
        return r.__dict__ if hasattr(r, "__dataclass_fields__") else r

    return atomic_write_text(path, "".join(json.dumps(enc(r), ensure_ascii=False) + "\n" for r in rows))


# ------------------------------------------------------------------------------------------- CSV / Parquet
def _coerce(value: Any, types: tuple[type, ...]) -> Any:
    """CSV cells are strings: convert to the first schema type that accepts them."""
    if not isinstance(value, str):
        return value
    for t in types:
        if t is str:
            return value
        try:
            if t is int:
                return int(value)
            if t is float:
                return float(value)
        except ValueError:
            continue
    return value


def read_csv(path: str | Path, schema: dict | None = None, delimiter: str = ",",
             aliases: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read a CSV with a header row. With a schema, required columns must be in the header and cells are typed."""
    path = Path(path)
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = _renamed(reader.fieldnames or [], aliases)
    reader.fieldnames = header
    if schema:
        for name, (_, required) in schema.items():
            if required and name not in header:
                raise InputError(f'column "{name}" missing (header has: {", ".join(header)})', path, 1, name)
    rows = []
    for r, row in enumerate(reader, 1):
        if None in row:
            raise InputError(f"row has {len(header) + len(row[None])} cells, header has {len(header)}", path, r + 1)
        if schema:
            for name, (types, _) in schema.items():
                if name in row:
                    if row[name] == "" and str not in types:
                        row[name] = None
                    else:
                        row[name] = _coerce(row[name], types)
            check_fields(row, schema, path, r + 1)
        rows.append(row)
    return rows


def read_parquet(path: str | Path, schema: dict | None = None,
                 aliases: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Read a Parquet file into row dicts; rows are numbered from 1 in error messages."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise InputError(f"not a readable Parquet file ({type(e).__name__}: {str(e)[:80]})", path) from None
    if table.num_rows == 0:
        raise InputError("file is empty", path)
    table = table.rename_columns(_renamed(table.column_names, aliases))
    if schema:
        for name, (_, required) in schema.items():
            if required and name not in table.column_names:
                raise InputError(f'column "{name}" missing (columns: {", ".join(table.column_names)})',
                                 path, None, name)
    rows = table.to_pylist()
    if schema:
        for r, row in enumerate(rows, 1):
            check_fields(row, schema, path, r)
    return rows


def write_parquet(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_output(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return Path(path)


def read_records(path: str | Path, kind: str) -> list[Any]:
    """Read typed records (``query``, ``item``, ``candidate`` or ``judgment``) from .jsonl, .csv, .tsv or .parquet."""
    path = Path(path)
    if kind not in SCHEMAS:
        check_choice(kind, sorted(SCHEMAS), "--kind")
    schema, aliases = SCHEMAS[kind], ALIASES.get(kind)
    check_input_file(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = read_jsonl(path, schema, aliases)
    elif suffix in (".csv", ".tsv"):
        rows = read_csv(path, schema, delimiter="\t" if suffix == ".tsv" else ",", aliases=aliases)
    elif suffix == ".parquet":
        rows = read_parquet(path, schema, aliases)
    else:
        raise InputError(f"unknown file type {cut(suffix)} (expected .jsonl, .csv, .tsv or .parquet)", path)
    cls = RECORD_TYPES[kind]
    keep = set(schema)
    out = []
    for row in rows:
        kw = {k: v for k, v in row.items() if k in keep and v is not None}
        for idk in ("qid", "docno"):
            if idk in kw:
                kw[idk] = str(kw[idk])
        if kind == "candidate":
            kw["score"] = float(kw["score"])
        out.append(cls(**kw))
    return out


# ------------------------------------------------------------------------------------------ TREC formats
def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file: ``qid Q0 docno rank score tag`` per line (whitespace separated)."""
    path = Path(path)
    text = _read_text(path)
    scores: dict[str, dict[str, float]] = {}
    name = "run"
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 6:
            raise InputError(f"expected 6 columns (qid Q0 docno rank score tag), got {len(parts)}", path, i)
        qid, _, docno, rank, score, name = parts
        try:
            int(rank)
        except ValueError:
            raise InputError(f'field "rank" must be integer, got {cut(rank)}', path, i, "rank") from None
        try:
            s = float(score)
        except ValueError:
            raise InputError(f'field "score" must be number, got {cut(score)}', path, i, "score") from None
        scores.setdefault(qid, {})[docno] = s
    return Run(scores, name)


def write_trec_run(path: str | Path, run: Run, tag: str | None = None) -> Path:
    lines = [f"{c.qid} Q0 {c.docno} {c.rank} {c.score:.6f} {tag or run.name}" for c in run.candidates()]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def read_qrels(path: str | Path) -> list[Judgment]:
    """Read TREC qrels: ``qid iter docno label`` per line."""
    path = Path(path)
    text = _read_text(path)
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise InputError(f"expected 4 columns (qid iter docno label), got {len(parts)}", path, i)
        try:
            label = int(parts[3])
        except ValueError:
            raise InputError(f'field "label" must be integer, got {cut(parts[3])}', path, i, "label") from None
        out.append(Judgment(parts[0], parts[2], label))
    return out


def write_qrels(path: str | Path, judgments: Iterable[Judgment]) -> Path:
    return atomic_write_text(path, "".join(f"{j.qid} 0 {j.docno} {j.label}\n" for j in judgments))


def candidates_to_run(cands: list[Candidate], name: str = "siftkit") -> Run:
    return Run.from_candidates(cands, name)
