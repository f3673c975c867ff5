"""The demo catalog: three small invented databases (shop, clinic, library; 6 tables, 32 columns) as SQL scripts in
``siftkit/catalog/demo/``, built into DuckDB files whose ``COMMENT ON`` comments are the human descriptions."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_DBS = ("shop", "clinic", "library")


def build_demo(folder: str | Path) -> list[Path]:
    """Write ``<folder>/<name>.duckdb`` for each demo database (replacing old ones); returns their paths."""
    import duckdb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in DEMO_DBS:
        p = folder / f"{name}.duckdb"
        p.unlink(missing_ok=True)
        con = duckdb.connect(str(p))
        try:
            con.execute((DEMO_DIR / f"{name}.sql").read_text(encoding="utf-8"))
        finally:
            con.close()
        out.append(p)
    return out


def load_demo(folder: str | Path):
    """Build the demo databases in ``folder`` and ingest them live (introspection and profiling in DuckDB)."""
    from siftkit.catalog.ingest import load_duckdb, merge

    return merge([load_duckdb(p) for p in build_demo(folder)])
