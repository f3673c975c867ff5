"""CLI: ``siftkit search-agent eval`` / ``train``, and the ``search-r1`` quickstart step.

Heavy modules (torch, transformers, bm25s) load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Search-R1: RL-trained LLMs that call a search engine while reasoning.", no_args_is_help=True)


def _load_model(model: str):
    """``"smollm2"`` / a HF folder → (model, tokenizer); a ``train`` checkpoint folder also works."""
    from siftkit.llm.local import LocalChatModel

    llm = LocalChatModel.from_pretrained(model)
    return llm.model, llm.tokenizer


@app.command("eval")
def eval_cmd(
    data: Annotated[Optional[list[Path]], typer.Option("--data", help="QA file (.parquet/.jsonl; repeatable).")]
    = None,
    synthetic: Annotated[bool, typer.Option("--synthetic", help="Evaluate a `train` checkpoint on the synthetic "
                                                                "task's held-out questions.")] = False,
    model: Annotated[str, typer.Option("--model", help="smollm2, a HF model folder, or a `train` run folder.")]
    = "smollm2",
    systems: Annotated[Optional[list[str]], typer.Option("--system", help="direct, rag, policy (repeatable; default: "
                                                                          "all three, direct only without a "
                                                                          "retriever).")] = None,
    retriever_url: Annotated[Optional[str], typer.Option("--retriever-url", help="A Search-R1 /retrieve server.")]
    = None,
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="JSONL corpus for in-process BM25.")] = None,
    hits: Annotated[int, typer.Option("--hits", help="Passages per search (top-k).")] = 3,
    max_turns: Annotated[int, typer.Option("--max-turns")] = 4,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="New tokens per turn.")] = 500,
    limit: Annotated[Optional[int], typer.Option("--limit", help="First N questions per file.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write per-question JSONL here.")] = None,
):
    """EM per data set, mean searches and turns, for direct answer, RAG and the Search-R1 policy (greedy).

    Without a retriever (no --retriever-url / --corpus) only ``direct`` runs: the real QA sets have no offline
    corpus.

    Example:
        siftkit search-agent eval --data ../shared/data/search_r1/r1searcher_eval/bamboogle.jsonl --limit 20 \\
            --system direct --max-new-tokens 64
    """
    from rich.console import Console
    from rich.table import Table

    from siftkit.core.errors import InputError
    from siftkit.core.validate import check_choices, check_output_file, check_range, check_url
    from siftkit.search_agent.data import load_qa
    from siftkit.search_agent.evaluate import SYSTEMS, evaluate_system, summarise
    from siftkit.search_agent.rollout import TEMPLATE, RolloutConfig

    # every option and file is checked before a model loads; nothing is written unless a system ran
    has_retriever = bool(synthetic or retriever_url or corpus)
    skipped = [] if systems or has_retriever else ["rag", "policy"]
    systems = check_choices(systems, SYSTEMS, "--system") if systems else [s for s in SYSTEMS if s not in skipped]
    check_range(hits, "--hits", lo=1)
    check_range(max_turns, "--max-turns", lo=0)
    check_range(max_new_tokens, "--max-new-tokens", lo=1)
    if limit is not None:
        check_range(limit, "--limit", lo=1)
    if output:
        check_output_file(output)
    if retriever_url:
        check_url(retriever_url, "--retriever-url")
    needs_retriever = [s for s in systems if s != "direct"]
    if needs_retriever and not has_retriever:
        raise InputError(f"--system {needs_retriever[0]} needs a retriever: give --retriever-url or --corpus",
                         field="--system")
    template = TEMPLATE
    rows: list[dict] = []
    if synthetic:
        from siftkit.search_agent.demo import SyntheticRunConfig, build, load_checkpoint
        from siftkit.search_agent.synthetic import SHORT_TEMPLATE

        folder = Path(model)
        if not ((folder / "synthetic_run.json").is_file() or (folder / "checkpoint" / "synthetic_run.json").is_file()):
            raise InputError("not a `search-agent train` run folder (no synthetic_run.json)", folder, field="--model")
        m, tok, scfg = load_checkpoint(folder)
        _, _, retr = build(scfg)
        task = build(scfg)[0]
        rows = [{**r, "data_source": f"synthetic-{r['hops']}hop"} for r in task.heldout[:limit]]
        template, max_new_tokens = SHORT_TEMPLATE, min(max_new_tokens, scfg.max_new_tokens)
        retriever = retr
    else:
        if not data:
            raise InputError("give --data FILE (repeatable) or --synthetic", field="--data")
        for p in data:
            rows += load_qa(p, limit)
        retriever = None
        if retriever_url:
            from siftkit.retrieval.remote import RemoteRetriever

            retriever = RemoteRetriever(retriever_url)
        elif corpus:
            from siftkit.retrieval.bm25 import BM25Retriever
            from siftkit.retrieval.corpus import Corpus

            retriever = BM25Retriever(Corpus.from_jsonl(corpus))  # the file is read before the model loads
        m, tok = _load_model(model)
    cfg = RolloutConfig(max_turns=max_turns, topk=hits, max_new_tokens=max_new_tokens, template=template,
                        batch_size=32)
    table = Table(title="search-agent eval (EM, greedy)")
    for col in ("system", "data_source", "n", "em", "f1", "searches", "turns"):
        table.add_column(col, justify="left" if col in ("system", "data_source") else "right")
    out_rows = []
    if skipped:
        Console().print(f"[yellow]skipping {', '.join(skipped)}: no retriever (give --retriever-url or --corpus)[/]")
    for s in systems:
        recs = evaluate_system(s, m, tok, retriever, rows, cfg)
        out_rows += [{"system": s, **r} for r in recs]
        for r in summarise(recs):
            table.add_row(s, r["data_source"], str(r["n"]), *(f"{r[k]:.3f}" for k in ("em", "f1", "searches",
                                                                                        "turns")))
    Console().print(table)
    if output:
        from siftkit.core.io import write_jsonl

        write_jsonl(output, out_rows)


@app.command("train")
def train_cmd(
    output: Annotated[Path, typer.Option("--output", help="Root folder for run directories.")] = Path("runs"),
    seed: Annotated[int, typer.Option("--seed")] = 0,
    steps: Annotated[int, typer.Option("--steps")] = 120,
    algo: Annotated[str, typer.Option("--algo", help="grpo or ppo")] = "grpo",
    no_mask: Annotated[bool, typer.Option("--no-mask", help="Ablation: train on retrieved tokens too.")] = False,
    two_hop: Annotated[bool, typer.Option("--two-hop/--one-hop")] = True,
    sft_trajs: Annotated[int, typer.Option("--sft-trajs", help="Warm-start trajectories.")] = 8000,
):
    """Train the tiny from-scratch policy on the synthetic task (warm start, then GRPO/PPO); writes the history,
    a reward plot, metrics and the checkpoint to a run directory.

    Example:
        siftkit search-agent train --steps 80 --one-hop
    """
    from siftkit.core.rundir import RunDir
    from siftkit.core.validate import check_choice, check_output_dir
    from siftkit.search_agent.demo import SyntheticRunConfig, run_synthetic, save_run

    check_choice(algo, ("grpo", "ppo"), "--algo")
    check_output_dir(output)
    cfg = SyntheticRunConfig(seed=seed, steps=steps, algo=algo, mask_info=not no_mask, two_hop=two_hop,
                             sft_trajs=sft_trajs)  # checks every setting before the warm start
    rd = RunDir.create("search_r1", output, seeds=[seed])
    res = run_synthetic(cfg, log=lambda m: rd.log(json.dumps(m)))
    save_run(res, rd.path)
    rd.write_metrics({"before": res["before"], "after": res["after"]})
    rd.write_manifest()
    print(json.dumps({"before": res["before"]["policy"], "after": res["after"]["policy"], "run": str(rd.path)},
                     indent=1))


def quickstart_step(ctx):
    """About a minute on 2 cores: 1-hop synthetic task, small warm start, a few GRPO steps."""
    from siftkit.core.report import Section
    from siftkit.search_agent.demo import SyntheticRunConfig, reward_figure, run_synthetic, save_run

    import pandas as pd

    cfg = SyntheticRunConfig(seed=ctx.seed, n_entities=60, n_values=20, two_hop=False, sft_trajs=1000,
                             sft_epochs=3, steps=ctx.options["steps"], prompts_per_step=8,
                             max_turns=2, n_eval=40)
    res = run_synthetic(cfg, log=lambda m: None)
    save_run(res, ctx.step_dir("search-r1"))
    rows = [{"system": s, "when": w, "EM": res[w][s]["em"], "searches": res[w][s]["searches"]}
            for w in ("before", "after") for s in ("direct", "rag", "policy")]
    return Section("search-r1", text=(
        "Search-R1 at toy scale: a from-scratch word-level Llama (d = 64) warm-started on a noisy tag-format policy, "
        f"then {cfg.steps} GRPO steps (group 5, EM reward, retrieved tokens masked) on a synthetic 1-hop task whose "
        "facts live only in a BM25 corpus; greedy EM on held-out entities. Too short to learn much: see "
        "benchmarks/results/search_r1.md for the full runs."),
        tables=[("held-out EM before / after GRPO", pd.DataFrame(rows))],
        figures=[("sampled reward per GRPO step", reward_figure(res["history"]))],
        metrics={"em_policy_after": res["after"]["policy"]["em"], "em_rag_after": res["after"]["rag"]["em"]})


def register(registry) -> None:
    """Add ``siftkit search-agent ...`` and the ``search-r1`` quickstart step."""
    registry.app.add_typer(app, name="search-agent")
    from siftkit.core.plugins import QuickstartOption

    registry.add_quickstart_step("search-r1", quickstart_step, order=60, options=[
        QuickstartOption("steps", int, 15, "GRPO steps after the warm start")])
