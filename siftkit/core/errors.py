"""The one error type for bad input.

Every reader raises :class:`InputError` with the file, the line (or row) and the field, so the CLI can print one
line such as ``siftkit: data/x.jsonl:17: field "query" missing`` and exit with code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: names the file, the line/row (1-based) and the field where known.

    Args:
        message: what is wrong, e.g. ``field "query" missing``.
        path: the file that holds the bad input (or ``None`` for in-memory input).
        line: 1-based line (JSONL, TREC) or row (CSV/Parquet, header excluded) number.
        field: the field/column name, when the problem is one field.
    """

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        return f"siftkit: {where}: {self.message}"


class ConfigError(InputError):
    """A configuration file or ``--set`` override is invalid."""
