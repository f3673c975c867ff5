"""CLI: ``siftkit multilingual distill | eval`` and the quickstart step ``multilingual``.

Every option and input file is checked (one ``siftkit:`` line, exit 2) before a model loads or an output folder is
made. Heavy modules load only when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from siftkit.core.errors import InputError
from siftkit.core.validate import check_choice, check_output_dir, check_output_file, check_range, check_url

app = typer.Typer(no_args_is_help=True, help="xVLM2Vec: make an English embedding model multilingual by "
                  "self-knowledge distillation (Musacchio et al., 2025).")
_DATA = ("tatoeba (the vendored sample, split by English sentence), xtd10 (the XTD10 captions in ../shared, split by "
         "English caption: train on one part, evaluate on the held-out --test-fraction), or a .tsv/.jsonl file of "
         "parallel pairs.")


def _langs(text: str) -> list[str]:
    from siftkit.multilingual.data import check_langs

    return check_langs([x.strip() for x in text.split(",") if x.strip()])


def _load_pairs(data: str, langs: list[str], test_fraction: float, seed: int, per_lang: int):
    """(train, test) ``lang -> pairs``: Tatoeba or XTD10 split by English sentence / caption across the languages,
    or a user file (all train, no test)."""
    from siftkit.multilingual.data import load_parallel, load_tatoeba, load_xtd10, split_by_english

    if data == "tatoeba":
        train, test = split_by_english(load_tatoeba(langs), test_fraction, seed=0)
    elif data == "xtd10":
        train, test = split_by_english(load_xtd10(langs), test_fraction, seed=0)
    else:
        from siftkit.core.validate import check_input_file

        check_input_file(data, "--data")
        train, test = load_parallel(data), {}
    if per_lang:
        train = {k: v[:per_lang] for k, v in train.items()}
    return train, test


def _encoder_fn(model: str, threads: int):
    """texts → normalised embeddings, for a trainable model folder or for ``e5`` (frozen reference)."""
    if model in ("e5", "e5-enpt"):
        from siftkit.embed import load_embedder

        emb = load_embedder(model, num_threads=threads)
        return lambda texts, images=None: emb.encode_queries(list(texts))
    from siftkit.multilingual.encoder import kd_encoder

    enc = kd_encoder(model)
    return lambda texts, images=None: enc.encode(list(texts), images)


def _accelerator():
    """An ``accelerate.Accelerator`` when this process was started by ``accelerate launch`` (or ``torchrun``),
    else ``None``; its mixed precision is checked (bf16 or none) before any model loads."""
    import os

    if "ACCELERATE_MIXED_PRECISION" not in os.environ and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if os.environ.get("ACCELERATE_MIXED_PRECISION", "no") not in ("no", "bf16"):
        raise InputError(f"mixed precision {os.environ['ACCELERATE_MIXED_PRECISION']!r}: use bf16 (the spec's) or "
                         "no", field="--mixed_precision")
    from accelerate import Accelerator

    return Accelerator()


@app.command()
def distill(
    output: Annotated[Path, typer.Option("--output", help="Folder for model/, train.json and metrics.json.")],
    model: Annotated[str, typer.Option("--model", help="minilm, a sentence-transformers, Hugging Face or image+text "
                                                       "model folder (teacher = a frozen copy of it).")] = "minilm",
    data: Annotated[str, typer.Option("--data", help=_DATA)] = "tatoeba",
    langs: Annotated[str, typer.Option("--langs", help="Comma-separated, among de,fr,it,es (Tatoeba).")]
    = "de,fr,it,es",
    test_fraction: Annotated[float, typer.Option("--test-fraction")] = 0.2,
    pairs_per_lang: Annotated[int, typer.Option("--pairs-per-lang", help="Train on the first N pairs per language "
                                                                         "(0 = all).")] = 0,
    epochs: Annotated[int, typer.Option("--epochs")] = 1,
    lr: Annotated[float, typer.Option("--lr")] = 1e-5,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    max_grad_norm: Annotated[float, typer.Option("--max-grad-norm")] = 0.3,
    target: Annotated[str, typer.Option("--target", help="raw (un-normalised, the spec) | normalized")] = "raw",
    image_loss: Annotated[bool, typer.Option("--image-loss", help="The image-loss variant (image+text models).")]
    = False,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters instead of all weights.")] = False,
    lora_r: Annotated[int, typer.Option("--lora-r")] = 8,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    threads: Annotated[int, typer.Option("--threads")] = 2,
):
    """Self-distil MODEL on parallel pairs; evaluate teacher and student on the held-out split.

    Example: ``siftkit multilingual distill --model minilm --data tatoeba --epochs 2 --lr 2e-5 --output runs/xkd``
    """
    from siftkit.multilingual.encoder import TARGETS
    from siftkit.multilingual.train import DistillConfig

    lang_list = _langs(langs)
    check_range(test_fraction, "--test-fraction", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    check_range(pairs_per_lang, "--pairs-per-lang", lo=0)
    check_range(threads, "--threads", lo=1)
    check_choice(target, TARGETS, "--target")
    cfg = DistillConfig(lr=lr, epochs=epochs, batch_size=batch_size, max_grad_norm=max_grad_norm,
                        image_loss=image_loss, lora=lora, lora_r=lora_r, seed=seed).check()
    accelerator = _accelerator()
    check_output_dir(output)
    train, test = _load_pairs(data, lang_list, test_fraction, seed, pairs_per_lang)
    import torch

    from siftkit.core.io import atomic_write_text
    from siftkit.multilingual.encoder import kd_encoder
    from siftkit.multilingual.evaluate import evaluate_pairs
    from siftkit.multilingual.train import distill as run_distill

    torch.set_num_threads(threads)
    student = kd_encoder(model, target=target)
    teacher = student.frozen_copy()
    pairs = [p for ps in train.values() for p in ps]
    main = accelerator is None or accelerator.is_main_process
    before = evaluate_pairs(teacher.encode, test, teacher.encode) if test and main else []
    res = run_distill(student, pairs, cfg, teacher=teacher, checkpoint_dir=output / "checkpoints",
                      accelerator=accelerator)
    if not main:  # the other processes of `accelerate launch` only train
        return
    after = evaluate_pairs(student.encode, test, teacher.encode) if test else []
    student.save(output / "model")
    processes = accelerator.num_processes if accelerator is not None else 1
    atomic_write_text(output / "train.json", json.dumps({"config": res.config, "model": model, "data": data,
                                                         "pairs": len(pairs), "steps": res.steps,
                                                         "processes": processes, "pairs_per_s": res.pairs_per_s,
                                                         "losses": res.losses}))
    atomic_write_text(output / "metrics.json", json.dumps({"teacher": before, "student": after}, indent=1))
    for name, rows in (("teacher", before), ("student", after)):
        for r in rows:
            print(name, json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))


@app.command("eval")
def evaluate(
    model: Annotated[str, typer.Option("--model", help="A student folder, minilm, any embedder folder, or e5.")],
    data: Annotated[str, typer.Option("--data", help="tatoeba (held-out split), xtd10 (all 1000 captions, "
                                                     "../shared), xtd10-heldout (the part `distill --data xtd10` "
                                                     "held out at this --test-fraction), a .tsv/.jsonl of pairs, or "
                                                     "an MMMEB .jsonl (qry_text, tgt_text, gold first).")]
    = "tatoeba",
    teacher: Annotated[Optional[str], typer.Option("--teacher", help="For MSE and English retention.")] = None,
    langs: Annotated[str, typer.Option("--langs")] = "de,fr,it,es",
    test_fraction: Annotated[float, typer.Option("--test-fraction")] = 0.2,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the metrics as JSON here.")] = None,
    threads: Annotated[int, typer.Option("--threads")] = 2,
):
    """Cross-lingual P@1 (x→en, en→x) per language, MSE to the teacher, English retention; or MMMEB P@1/5/10.

    Example: ``siftkit multilingual eval --model runs/xkd/model --teacher minilm --data xtd10``
    """
    from siftkit.multilingual.data import load_parallel, load_tatoeba, load_xtd10, split_by_english

    lang_list = _langs(langs)
    check_range(test_fraction, "--test-fraction", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    check_range(threads, "--threads", lo=1)
    if output is not None:
        check_output_file(output)
    mmmeb = None
    if data == "tatoeba":
        test = split_by_english(load_tatoeba(lang_list), test_fraction, seed=0)[1]
    elif data == "xtd10":
        test = load_xtd10(lang_list)
    elif data == "xtd10-heldout":
        test = split_by_english(load_xtd10(lang_list), test_fraction, seed=0)[1]
    else:
        from siftkit.core.validate import check_input_file
        from siftkit.multilingual.evaluate import MMMEB_SCHEMA, read_mmmeb

        check_input_file(data, "--data")
        first = Path(data).read_text(encoding="utf-8", errors="replace").lstrip()[:2000]
        if data.endswith(".jsonl") and any(k in first.split("\n")[0] for k in MMMEB_SCHEMA):
            mmmeb, test = read_mmmeb(data), {}
        else:
            test = load_parallel(data)
    import torch

    torch.set_num_threads(threads)
    enc = _encoder_fn(model, threads)
    if mmmeb is not None:
        from siftkit.multilingual.evaluate import evaluate_mmmeb

        result: object = evaluate_mmmeb(mmmeb, enc, enc)
    else:
        from siftkit.multilingual.evaluate import evaluate_pairs

        result = evaluate_pairs(enc, test, _encoder_fn(teacher, threads) if teacher else None)
    text = json.dumps(result, indent=1)
    if output is not None:
        from siftkit.core.io import atomic_write_text

        atomic_write_text(output, text)
    print(text)


@app.command()
def translate(
    rows: Annotated[Path, typer.Option("--rows", help="English rows (.jsonl: qry, pos, optional neg and image).")],
    output: Annotated[Path, typer.Option("--output", help="The parallel pairs (.jsonl: en, x, lang, image), "
                                                          "usable as `distill --data`; drop counts go to "
                                                          "<output>.drops.json.")],
    langs: Annotated[str, typer.Option("--langs")] = "de,fr,it,es",
    model: Annotated[str, typer.Option("--model", help="Translator: a local model (smollm2, a folder, a .gguf) or, "
                                                       "with --endpoint, the served model name (e.g. "
                                                       "google/madlad400-3b-mt).")] = "smollm2",
    endpoint: Annotated[Optional[str], typer.Option("--endpoint", help="OpenAI-compatible base URL.")] = None,
    prompt_style: Annotated[str, typer.Option("--prompt-style", help="madlad (raw '<2de> ...', the spec's) | chat "
                                                                     "(an instruction model)")] = "madlad",
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 2048,
    cache: Annotated[Optional[Path], typer.Option("--cache", help="Response cache (default: siftkit's).")] = None,
    threads: Annotated[int, typer.Option("--threads")] = 2,
):
    """Machine-translate English rows (the spec's packed "Question: ... Answer: ..." form) and build the parallel
    set, dropping and counting rows whose marker split or image tag does not survive.

    Example: ``siftkit multilingual translate --rows rows.jsonl --endpoint http://localhost:8000/v1 --model
    google/madlad400-3b-mt --output pairs.jsonl``
    """
    from siftkit.core.validate import check_input_file
    from siftkit.multilingual.translate import PROMPT_STYLES, read_rows

    lang_list = _langs(langs)
    check_choice(prompt_style, PROMPT_STYLES, "--prompt-style")
    check_range(max_new_tokens, "--max-new-tokens", lo=1)
    check_range(threads, "--threads", lo=1)
    english = read_rows(check_input_file(rows, "--rows"))
    check_output_file(output)
    if cache is not None:
        check_output_file(cache, "--cache")
    if endpoint is not None:
        check_url(endpoint, "--endpoint")
    from siftkit.core.io import atomic_write_text, write_jsonl
    from siftkit.llm.factory import make_chat_model
    from siftkit.multilingual.translate import translate_rows

    llm = make_chat_model(model, endpoint=endpoint, cache=cache, threads=threads)
    res = translate_rows(english, lang_list, llm, style=prompt_style, max_new_tokens=max_new_tokens,
                         raise_failed=f"{output} left as it was")
    write_jsonl(output, [{"en": p.en, "x": p.x, "lang": p.lang, **({"image": p.image} if p.image else {})}
                         for p in res.pairs])
    drops = {lang: {"rows": res.rows[lang], **{why: n for (lg, why), n in sorted(res.drops.items()) if lg == lang}}
             for lang in lang_list}
    atomic_write_text(output.with_name(output.name + ".drops.json"), json.dumps(drops, indent=1))
    print(json.dumps({"pairs": len(res.pairs), "drops": drops}))


def results_figure(table):
    """Grouped bars: x→en P@1 per language for teacher and student."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    langs = list(table["lang"])
    w = 0.38
    for i, (col, name) in enumerate((("teacher_x2en", "teacher"), ("student_x2en", "student"))):
        ax.bar([j + (i - 0.5) * w for j in range(len(langs))], table[col], w, label=name)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylabel("x→en P@1")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    return fig


def quickstart_step(ctx):
    """MiniLM self-distilled on ``multilingual.pairs`` vendored Tatoeba pairs per language; held-out P@1 per
    language before/after, MSE to the teacher and English retention."""
    import pandas as pd
    import torch

    from siftkit.core.report import Section
    from siftkit.multilingual.data import TATOEBA_DIR, split_by_english, load_tatoeba
    from siftkit.multilingual.encoder import kd_encoder
    from siftkit.multilingual.evaluate import evaluate_pairs
    from siftkit.multilingual.train import DistillConfig, distill as run_distill

    opts = ctx.options
    ctx.record_input(TATOEBA_DIR)
    torch.set_num_threads(2)
    train, test = split_by_english(load_tatoeba(), 0.2, seed=0)
    n, m = int(opts["pairs"]), int(opts["test_pairs"])
    pairs = [p for ps in train.values() for p in ps[:n]]
    test = {k: v[:m] for k, v in test.items()}
    student = kd_encoder("minilm")
    teacher = student.frozen_copy()
    before = evaluate_pairs(teacher.encode, test, teacher.encode)
    cfg = DistillConfig(lr=float(opts["lr"]), batch_size=16, epochs=int(opts["epochs"]), seed=ctx.seed)
    res = run_distill(student, pairs, cfg, teacher=teacher, progress=False)
    after = evaluate_pairs(student.encode, test, teacher.encode)
    rows = []
    for b, a in zip(before, after):
        if b["lang"] == "en":
            continue
        rows.append({"lang": b["lang"], "n": b["n"], "teacher_x2en": b["x2en"], "student_x2en": a["x2en"],
                     "teacher_en2x": b["en2x"], "student_en2x": a["en2x"], "teacher_mse_x": b["mse_x"],
                     "student_mse_x": a["mse_x"]})
    table = pd.DataFrame(rows)
    en = after[-1]
    metrics = {f"{r['lang']}/student_x2en": r["student_x2en"] for r in rows}
    metrics |= {f"{r['lang']}/teacher_x2en": r["teacher_x2en"] for r in rows}
    metrics |= {"en_retention_p1": en["en_retention_p1"], "en_cosine": en["en_cosine"],
                "loss_first": res.losses[0], "loss_last": res.losses[-1]}
    text = (f"all-MiniLM-L6-v2 (English) as its own teacher, self-distilled on {len(pairs)} Tatoeba pairs "
            f"({n} per language, de/fr/it/es; {res.steps} steps, lr {cfg.lr}, {cfg.epochs} epoch(s)) with the "
            "two-term MSE of xVLM2Vec on un-normalised embeddings; held-out pairs split by English sentence. "
            f"English retention (student-en retrieving teacher-en, {en['n']} sentences): P@1 "
            f"{en['en_retention_p1']:.3f}, mean cosine {en['en_cosine']:.3f}. A quickstart-scale run (lr above the "
            "spec's 1e-5 so that a minute of training shows the direction); full scale: docs/xvlm2vec.md.")
    return Section("xVLM2Vec: multilingual self-distillation", text=text,
                   tables=[("held-out Tatoeba, teacher vs student", table)],
                   figures=[("x→en P@1 per language", results_figure(table))], metrics=metrics)


def register(registry) -> None:
    """Add ``siftkit multilingual ...`` and the quickstart step ``multilingual``."""
    from siftkit.core.plugins import QuickstartOption

    registry.app.add_typer(app, name="multilingual")
    registry.add_quickstart_step("multilingual", quickstart_step, order=80, options=[
        QuickstartOption("pairs", int, 100, "training pairs per language"),
        QuickstartOption("test_pairs", int, 100, "held-out pairs per language"),
        QuickstartOption("epochs", int, 1, "epochs"),
        QuickstartOption("lr", float, 5e-5, "learning rate (the spec's full-scale value is 1e-5)")])
