import numpy as np
import pytest
import torch

from siftkit.cascade.data import train_batches
from siftkit.cascade.simulator import SimConfig, preset, simulate
from siftkit.cascade.train import TrainConfig, oracle_scores, train


@pytest.fixture(scope="module")
def tiny2():
    return simulate(preset("tiny"))


def test_two_stage_request_structure(tiny2):
    train_data, test_data = tiny2
    assert train_data.item.shape[1] == 40 and len(test_data) == 256
    lab = train_data.labels
    assert (lab[:, :10] >= 11).all() and (lab[:, :10] <= 30).all()  # ℓ = 30 − rank_index, rank_index < 20
    assert all(len(set(r)) == 10 for r in lab[:, :10].tolist())  # distinct positive labels
    for g, value in zip(range(1, 4), (7.0, 6.0, 5.0)):  # tied negative groups, default indices 23/24/25
        assert (lab[:, 10 * g:10 * g + 10] == value).all()
    assert all(len(set(r)) == 40 for r in train_data.item.tolist())  # no item twice in a request
    assert (train_data.seq_table[:, 0, 0] == 0).any()  # some sequences are left-padded
    np.testing.assert_array_equal(np.unique(train_data.day), [0, 1])


def test_three_stage_request_structure():
    train_data, _ = simulate(preset("tiny", n_stages=3))
    lab = train_data.labels
    assert lab.shape[1] == 50
    np.testing.assert_array_equal(lab[0, :10], 30.0 - np.arange(10))  # rerank_index 0..9
    for g, value in zip(range(1, 5), (8.0, 7.0, 6.0, 5.0)):  # default indices 22..25
        assert (lab[:, 10 * g:10 * g + 10] == value).all()


def test_positives_have_higher_utility_than_negatives(tiny2):
    train_data, _ = tiny2
    u = train_data.utility
    assert u[:, :10].mean() > u[:, 10:20].mean() > u[:, 30:].mean()


def test_simulator_is_deterministic():
    a, _ = simulate(preset("tiny", train_days=1, requests_per_day=32))
    b, _ = simulate(preset("tiny", train_days=1, requests_per_day=32))
    np.testing.assert_array_equal(a.item, b.item)


def test_bad_sim_config():
    with pytest.raises(ValueError):
        SimConfig(keep=(200, 100, 30, 10))
    with pytest.raises(ValueError):
        preset("huge")


def test_batches_in_date_order_and_ddp_split(tiny2):
    train_data, _ = tiny2
    blocks = list(train_batches(train_data, 100, seed=0))
    days = [train_data.day[b].max() for b in blocks]
    assert days == sorted(days) and sum(len(b) for b in blocks) == len(train_data)
    half0 = list(train_batches(train_data, 100, seed=0, rank=0, world=2))
    half1 = list(train_batches(train_data, 100, seed=0, rank=1, world=2))
    assert all(sorted(np.r_[a, b]) == sorted(c) for a, b, c in zip(half0, half1, blocks))


@pytest.mark.parametrize("method", ["lcron", "icc"])
def test_training_changes_every_stage(tiny2, method):
    train_data, _ = tiny2
    torch.set_num_threads(1)
    cfg = TrainConfig(method=method, n_stages=2, batch_size=64, max_steps=2)
    torch.manual_seed(cfg.seed)
    from siftkit.cascade.train import Cascade

    before = Cascade(cfg, train_data.vocab).state_dict()
    model, stats = train(train_data, cfg)
    assert stats["steps"] == 2 and np.isfinite(stats["loss"])
    for name, p in model.state_dict().items():
        if name.startswith("stage_models") and name.endswith("weight") and "emb" not in name:
            assert not torch.equal(before[name], p), name


def test_oracles(tiny2):
    _, test_data = tiny2
    assert len(oracle_scores("random", test_data, 2)) == 2
    with pytest.raises(ValueError):
        oracle_scores("nope", test_data, 2)


def test_train_config_validation():
    with pytest.raises(ValueError):
        TrainConfig(method="nope")
    with pytest.raises(ValueError):
        TrainConfig(stages=["dssm", "din"], quotas=[30])
    cfg = TrainConfig(stages=["dssm", "mlp", "mlp", "din"], quotas=[40, 35, 30, 20])  # any number of stages
    assert cfg.n_stages == 4
