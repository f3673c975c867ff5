"""Metadata RAG (Singh et al., arXiv 2503.09003): table and column descriptions for data catalogs from retrieved
examples. See docs/metadata_rag.md.

Modules: :mod:`.model` (the catalog), :mod:`.ingest` (BIRD, Spider2, SQLite, DuckDB, PostgreSQL),
:mod:`.exemplars` (leave-one-database-out retrieval and prompts), :mod:`.generate` (systems),
:mod:`.evaluate` (ROUGE, grounding, toxicity, CIs), :mod:`.writeback` (COMMENT ON, dbt, JSON).
"""
