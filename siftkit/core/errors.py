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

    max_chars = 400  # [ours] a message longer than this is cut: one short line, whatever the input held

    def format(self) -> str:
        """One line: ``siftkit: FILE[:LINE]: message``; the field (e.g. ``--hits``) stands for FILE
        when no file is involved; the message is cut to ``max_chars``."""
        if self.path is not None:
            where = self.path
        elif self.field:  # an option (``--hits``) or a config field (``ms_rule``), as the raiser named it
            where = self.field
        else:
            where = "<input>"
        if self.line is not None:
            where += f":{self.line}"
        msg = " ".join(str(self.message).split())  # newlines and runs of spaces collapse: one line
        if len(msg) > self.max_chars:
            msg = msg[: self.max_chars] + f"...(+{len(msg) - self.max_chars} chars)"
        return f"siftkit: {where}: {msg}"


class ConfigError(InputError):
    """A configuration file or ``--set`` override is invalid."""


class RequestsFailed(RuntimeError):
    """Requests to a model endpoint failed after retries, so the command wrote nothing; the CLI prints one line and
    exits 1 (not 2: the input was fine, the endpoint was not). A rerun resumes from the response cache.

    Args:
        failed: how many requests failed.
        total: how many were sent (``None`` where the caller is not told).
        what: what was asked for, e.g. ``"teacher rationale"``.
        detail: e.g. ``"labels.json left as it was"``.
        cached: whether the answers received went to a response cache.
    """

    exit_code = 1

    def __init__(self, failed: int, total: int | None, what: str = "request", detail: str = "", cached: bool = True):
        self.failed, self.total, self.what = failed, total, what
        self.detail, self.cached = detail, cached
        super().__init__(self.format())

    def format(self) -> str:
        resume = ("the answers received are cached, so a rerun sends only the failed requests" if self.cached
                  else "without a cache a rerun sends them all again")
        of = "" if self.total is None else f" of {self.total}"
        return (f"siftkit: {self.failed}{of} {self.what}(s) failed after retries; nothing was written"
                + (f" ({self.detail})" if self.detail else "") + f"; {resume}")
