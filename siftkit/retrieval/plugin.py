"""CLI: ``siftkit serve retrieval`` — a Search-R1 compatible ``/retrieve`` server (see :mod:`.server`).

Heavy modules (bm25s, faiss, torch, fastapi, uvicorn) load only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.retrieval.server import ServerConfig

_DEFAULTS = ServerConfig()


def serve_retrieval(
    index: Annotated[Optional[Path], typer.Option("--index", help="Saved index folder (has meta.json).")] = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help='JSONL corpus {"id", "contents"}.')] = None,
    retriever: Annotated[str, typer.Option("--retriever", help="With --corpus: bm25, dense or hybrid.")] = "bm25",
    embedder: Annotated[str, typer.Option("--embedder", help="Dense model: minilm, e5 or a folder.")] = "minilm",
    save_index: Annotated[Optional[Path], typer.Option("--save-index", help="With --corpus: also save the index "
                                                                             "here.")] = None,
    host: Annotated[str, typer.Option("--host", help="Bind address; non-loopback needs --api-key.")] = _DEFAULTS.host,
    port: Annotated[int, typer.Option("--port")] = _DEFAULTS.port,
    topk: Annotated[int, typer.Option("--hits", "--topk", help="Hits when a request has no topk.")] = _DEFAULTS.topk,
    api_key: Annotated[Optional[str], typer.Option("--api-key", envvar="SIFTKIT_RETRIEVAL_API_KEY",
                                                   help="Required on every request when set.")] = None,
) -> None:
    """Serve POST /retrieve with Search-R1's request/response shape.

    Example:
        siftkit serve retrieval --corpus corpus.jsonl --retriever bm25 --port 8000
    """
    from siftkit.core.errors import InputError
    from siftkit.retrieval.corpus import Corpus
    from siftkit.core.validate import check_choice, check_output_dir
    from siftkit.retrieval.index import KINDS, build_retriever, load_retriever
    from siftkit.retrieval.server import serve

    if (index is None) == (corpus is None):
        raise InputError("give exactly one of --index DIR or --corpus FILE", field="--index")
    config = ServerConfig(host=host, port=port, topk=topk, api_key=api_key)  # validates before the slow load
    check_choice(retriever, KINDS, "--retriever")
    if save_index is not None:
        check_output_dir(save_index, "--save-index")
    if index is not None:
        r = load_retriever(index)
    else:
        r = build_retriever(Corpus.from_jsonl(corpus), retriever, embedder=embedder)
        if save_index is not None:
            r.save(save_index)
    serve(r, config)


def register(registry) -> None:
    """Add ``siftkit serve retrieval`` and the retrieval quickstart step."""
    registry.serve.command("retrieval")(serve_retrieval)

    def _step(ctx):
        from siftkit.retrieval.quickstart import quickstart_step

        return quickstart_step(ctx)

    registry.add_quickstart_step("retrieval", _step, order=10)
