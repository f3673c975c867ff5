"""Cell parameters → LCRON loss settings."""

from siftkit.cascade.experiment import lcron_config


def test_serving_quota_variant_follows_the_number_of_stages():
    assert lcron_config({"variant": "serving_q", "stages": 2}).q_per_stage == (30, 20)
    assert lcron_config({"variant": "serving_q", "stages": 3}).q_per_stage == (40, 30, 20)


def test_variant_then_tau_and_binarize_overrides():
    lc = lcron_config({"variant": "no_e2e", "stages": 2, "tau": 0.5, "binarize_y": True})
    assert (lc.use_e2e, lc.use_single, lc.tau, lc.binarize_y) == (False, True, 0.5, True)
    assert lcron_config({"stages": 2}).use_e2e is True
