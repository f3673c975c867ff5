"""SearchR1Config refuses bad settings with one InputError naming the field (siftkit.core.validate)."""

import pytest

from siftkit.core.errors import InputError
from siftkit.search_agent.config import SearchR1Config


@pytest.mark.parametrize("kw, field, msg", [
    ({"algo": "dpo"}, "algo", "'dpo' is not one of grpo, ppo"),
    ({"reward": "bleu"}, "reward", "'bleu' is not one of em, f1, format"),
    ({"group_size": 0}, "group_size", "must be >= 1, got 0"),
    ({"prompts_per_step": 0}, "prompts_per_step", "must be >= 1"),
    ({"mini_batches": 0}, "mini_batches", "must be >= 1"),
    ({"steps": -1}, "steps", "must be >= 0, got -1"),
    ({"clip_eps": 1.0}, "clip_eps", "must be in (0, 1), got 1.0"),
    ({"clip_eps": 0.0}, "clip_eps", "must be in (0, 1)"),
    ({"beta": -0.1}, "beta", "must be >= 0"),
    ({"lr": 0.0}, "lr", "must be > 0"),
    ({"lr": float("nan")}, "lr", "must be a finite number"),
])
def test_bad_settings_name_their_field(kw, field, msg):
    with pytest.raises(InputError) as e:
        SearchR1Config(**kw)
    assert e.value.field == field and msg in str(e.value)


def test_edges_are_accepted():
    c = SearchR1Config(steps=0, beta=0.0, group_size=1, algo="ppo", reward="format")
    assert (c.steps, c.beta, c.algo) == (0, 0.0, "ppo")
