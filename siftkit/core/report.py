"""Self-contained HTML run reports: tables and matplotlib figures embedded as PNG, readable offline.

A report is a list of :class:`Section`. Quickstart steps and method runners return sections; :func:`render_html`
writes one HTML file with no external resources.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Section:
    """One part of a report.

    Attributes:
        title: heading.
        text: plain paragraphs (blank-line separated).
        tables: ``(caption, pandas.DataFrame)`` pairs.
        figures: ``(caption, matplotlib.figure.Figure)`` pairs; stored as PNG in the report.
        metrics: numbers that also go to the run's ``metrics.json`` under the section title.
        status: "ok", "skipped" or "failed" (a failed step keeps its error text in ``text``).
    """

    title: str
    text: str = ""
    tables: list[tuple[str, Any]] = field(default_factory=list)
    figures: list[tuple[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"


@dataclass
class StepContext:
    """What a quickstart step receives.

    Attributes:
        run_dir: the run directory; a step may write files under ``run_dir / <step name>``.
        seed: the run seed.
        small: True for the quickstart scale (about a minute per step on 2 cores).
        options: this step's own options (declared with ``registry.add_quickstart_step(..., options=[...])``),
            defaults filled in and ``--set STEP.KEY=value`` applied, values typed; e.g. ``ctx.options["steps"]``.
        inputs: files the steps read (see :meth:`record_input`), hashed into the manifest.
    """

    run_dir: Path
    seed: int = 0
    small: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)

    def record_input(self, path) -> None:
        """Name a model or data file (or folder) the step read; its sha256 goes to the run manifest."""
        self.inputs.append(Path(path))

    def step_dir(self, name: str) -> Path:
        p = self.run_dir / name
        p.mkdir(parents=True, exist_ok=True)
        return p


def figure_to_png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#1d2330;line-height:1.45}
h1{border-bottom:2px solid #3b6ea5;padding-bottom:.2em} h2{margin-top:1.8em;color:#24507e}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.92em} caption{text-align:left;font-weight:600;
padding:.3em 0} th,td{border:1px solid #c9d2dd;padding:.25em .6em;text-align:right} th{background:#eef3f8}
td:first-child,th:first-child{text-align:left} .status-failed{color:#a12a2a} .status-skipped{color:#8a6d1d}
figure{margin:1em 0} figcaption{font-size:.9em;color:#555} pre{background:#f5f7fa;padding:.6em;overflow-x:auto}
.meta{color:#555;font-size:.9em}
"""


def _table_html(caption: str, df) -> str:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    body = df.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", escape=True)
    head, rest = body.split(">", 1)  # insert the caption right after the opening <table ...>
    return f"{head}><caption>{html.escape(caption)}</caption>{rest}"


def render_html(title: str, sections: list[Section], meta: dict[str, Any] | None = None) -> str:
    """Render a full, self-contained HTML page."""
    meta = meta or {}
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    stamp = meta.get("created", _dt.datetime.now().isoformat(timespec="seconds"))
    parts.append(f"<p class='meta'>created {html.escape(str(stamp))}"
                 + "".join(f" · {html.escape(str(k))}: {html.escape(str(v))}" for k, v in meta.items()
                           if k != "created") + "</p>")
    if len(sections) > 1:
        parts.append("<ul>" + "".join(f"<li><a href='#s{i}'>{html.escape(s.title)}</a> "
                                      f"<span class='status-{s.status}'>({s.status})</span></li>"
                                      for i, s in enumerate(sections)) + "</ul>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{html.escape(s.title)} <small class='status-{s.status}'>{s.status}</small></h2>")
        for para in [p for p in s.text.split("\n\n") if p.strip()]:
            if para.startswith("    ") or para.startswith("$ "):
                parts.append(f"<pre>{html.escape(para)}</pre>")
            else:
                parts.append(f"<p>{html.escape(para)}</p>")
        for cap, df in s.tables:
            parts.append(_table_html(cap, df))
        for cap, fig in s.figures:
            parts.append(f"<figure><img alt='{html.escape(cap)}' src='data:image/png;base64,"
                         f"{figure_to_png_b64(fig)}'><figcaption>{html.escape(cap)}</figcaption></figure>")
        if s.metrics:
            parts.append("<details><summary>metrics</summary><pre>"
                         + html.escape(json.dumps(s.metrics, indent=2, default=str)) + "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, title: str, sections: list[Section], meta: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(title, sections, meta), encoding="utf-8")
    return path
