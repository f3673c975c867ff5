"""The fine-tuned (LoRA SFT) variant: folds of databases, training rows without the held-out databases, and a tiny
model that learns the described pairs it was trained on."""

import pytest

from siftkit.catalog.demo import load_demo
from siftkit.catalog.evaluate import targets
from siftkit.catalog.exemplars import build_prompt
from siftkit.catalog.finetune import CatalogSFTConfig, FoldModels, fold_groups, training_rows
from siftkit.catalog.generate import describe
from siftkit.core.errors import InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return load_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from siftkit.llm.testing import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.getbasetemp() / "catalog-tiny-llama")


def test_fold_groups_and_config():
    assert fold_groups(["e", "b", "a", "d", "c"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert fold_groups(["b", "a", "b"], 0) == [["a"], ["b"]]  # one per database
    assert fold_groups(["a", "b"], 5) == [["a"], ["b"]]
    for bad, field in ((dict(folds=1), "folds"), (dict(folds=-1), "folds"), (dict(kinds=("view",)), "kinds"),
                       (dict(kinds=()), "kinds"), (dict(max_rows=-1), "max_rows"), (dict(steps=0), "steps"),
                       (dict(batch_size=0), "batch_size"), (dict(lr=0.0), "lr"), (dict(lr=float("nan")), "lr"),
                       (dict(lora_r=0), "lora_r"), (dict(max_length=0), "max_length")):
        with pytest.raises(InputError, match=rf"^siftkit: {field}: "):
            CatalogSFTConfig(**bad)


def test_training_rows_leave_the_fold_out(demo, tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    assets = demo.assets()
    rows = training_rows(tok, assets, ["clinic"])
    used = [a for a in targets(demo, ["column"]) if a.db != "clinic"]
    assert [r["completion"] for r in rows] == [a.description.strip() for a in used]
    assert rows[0]["prompt"] == tok.apply_chat_template(build_prompt(used[0], []), add_generation_prompt=True,
                                                        tokenize=False)
    clinic = [a.description.strip() for a in assets if a.db == "clinic" and a.description]
    text = "\n".join(r["prompt"] + r["completion"] for r in rows)
    assert clinic and not any(d in text for d in clinic)
    assert "visits" not in text  # nothing of the held-out database, not even its table names
    assert len(training_rows(tok, assets, ["clinic"], max_rows=4)) == 4
    short = training_rows(tok, assets, ["clinic"], max_length=300)
    assert 0 < len(short) < len(rows) and all(len(tok(r["prompt"] + r["completion"]).input_ids) < 300 for r in short)


def test_a_fold_model_learns_and_describes_only_unseen_databases(demo, tiny, tmp_path):
    from siftkit.llm.local import LocalChatModel

    cfg = CatalogSFTConfig(folds=0, steps=15, batch_size=4, lr=3e-3, max_length=4096, lora_r=8)
    fm = FoldModels(demo.assets(), cfg, tmp_path / "sft", base=str(tiny), engine="torch", threads=2)
    name = fm.name("clinic")
    assert fm.held_out(name) == ["clinic"] and fm.name("shop") != name
    train = [a for a in targets(demo, ["column"]) if a.db != "clinic"]
    prompts, refs = [build_prompt(a, []) for a in train], [a.description.strip() for a in train]
    before = LocalChatModel.from_pretrained(tiny).score(prompts, refs)
    folder = fm.folder(name)
    after = LocalChatModel.from_pretrained(folder).score(prompts, refs)
    n_tok = sum(len(s.token_logprobs) for s in before)
    gain = (sum(s.logprob for s in after) - sum(s.logprob for s in before)) / n_tok
    assert gain > 0.5  # nats per description token on the training pairs: the model learned them
    log = fm.log(name)
    assert log["held_out"] == ["clinic"] and log["rows"] == len(train)
    assert fm.folder(name) == folder  # saved: a second call (a resumed run) does not train again
    clinic = [a for a in targets(demo, ["column"]) if a.db == "clinic"][:3]
    df = describe(clinic, demo.assets(), ["sft-1"], sft=fm, cache=tmp_path / "c.sqlite",
                  max_new_tokens=8, progress=False)
    assert list(df.db.unique()) == ["clinic"] and len(df) == 3 and df.text.map(type).eq(str).all()
