"""LrefConfig settings that change behaviour."""


def test_device_cpu_forces_cpu_training():
    from siftkit.relevance.config import LrefConfig
    from siftkit.relevance.train import _cpu_only

    assert _cpu_only(LrefConfig(device="cpu")) is True


import pytest  # noqa: E402

from siftkit.core.errors import InputError  # noqa: E402


@pytest.mark.parametrize("kw, field, msg", [
    ({"ms_rule": "ne"}, "ms_rule", "'ne' is not one of neq, eq"),
    ({"teacher": "gpt"}, "teacher", "is not one of rules, llm"),
    ({"pair_source": "x"}, "pair_source", "is not one of ranking, beam"),
    ({"dpo_errors": "under"}, "dpo_errors", "is not one of all, over"),
    ({"cot_order": ("EE", "XX")}, "cot_order", "'XX' is not one of EE, RA, DR"),
    ({"beta": 0.0}, "beta", "must be > 0, got 0.0"),
    ({"rpo_alpha": -0.5}, "rpo_alpha", "must be >= 0, got -0.5"),
    ({"lr": 0.0}, "lr", "must be > 0"),
    ({"dpo_lr": -1e-5}, "dpo_lr", "must be > 0"),
    ({"warmup_ratio": 1.0}, "warmup_ratio", "must be in [0, 1), got 1.0"),
    ({"beam_k": 1}, "beam_k", "must be >= 2, got 1"),
    ({"sft_steps": -1}, "sft_steps", "must be >= 0"),
])
def test_bad_settings_name_their_field(kw, field, msg):
    from siftkit.relevance.config import LrefConfig

    with pytest.raises(InputError) as e:
        LrefConfig(**kw)
    assert e.value.field == field and msg in str(e.value)
    assert str(e.value).startswith(f"siftkit: {field}: ")


def test_edge_settings_are_accepted():
    from siftkit.relevance.config import LrefConfig

    c = LrefConfig(cot_order=(), warmup_ratio=0.0, rpo_alpha=0.0, beam_k=2, dpo_lr=None)
    assert c.cot_order == () and c.beam_k == 2
