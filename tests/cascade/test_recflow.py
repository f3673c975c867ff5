"""The RecFlow loader on a fixture written in the RecFlow layout from the simulator (never real RecFlow rows)."""

import pickle

import numpy as np
import pytest

from siftkit.cascade import recflow
from siftkit.cascade.simulator import preset, simulate
from siftkit.core.errors import InputError


def _bijection(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len({x for x, _ in pairs}) == len({y for _, y in pairs})


@pytest.mark.parametrize("n_stages", [2, 3])
def test_round_trip_through_the_recflow_layout(tmp_path, n_stages):
    train, test = simulate(preset("tiny", n_stages=n_stages, requests_per_day=12, test_requests=6))
    dates = ["2024-02-01", "2024-02-02"]
    recflow.write_layout(train, tmp_path, dates, n_stages)
    recflow.write_layout(test, tmp_path / "t", [recflow.TEST_DATE], n_stages)
    assert recflow.splits(tmp_path) == {"train": dates, "test": []}
    with open(tmp_path / "others" / "id_cnt.pkl", "rb") as f:
        assert " category_level_two" in pickle.load(f)
    data, remaps = recflow.load(tmp_path, dates, n_stages=n_stages, seq_len=10, trust_pickle=True)
    assert len(data) == len(train) and data.n_items == (40 if n_stages == 2 else 50)
    np.testing.assert_array_equal(data.labels, train.labels)
    np.testing.assert_array_equal(data.day, train.day)
    got = data.item_feats[data.item]  # (R, N, 8)
    want = train.item_feats[train.item]
    for f in (0, 1):  # video and author ids: remapped, but one-to-one
        assert _bijection(got[..., f], want[..., f])
    assert _bijection(got[..., 2], want[..., 3])  # category_level_two
    seq_got = data.seq_table[data.sid]  # (R, L, 5)
    seq_want = train.seq_table[train.sid]
    np.testing.assert_array_equal(seq_got[..., 0] > 0, seq_want[..., 0] > 0)  # same left padding
    assert max(data.vocab["item"][0], 1) <= len(np.unique(want[..., 0])) + len(np.unique(seq_want[..., 0]))
    test_data, _ = recflow.load(tmp_path / "t", [recflow.TEST_DATE], n_stages=n_stages, seq_len=10, remaps=remaps,
                                  trust_pickle=True)
    assert len(test_data) == len(test)
    assert test_data.item_feats[:, 0].max() <= len(remaps["video_id"].ids)  # unseen ids map to 0, vocab is fixed


def test_trains_on_loaded_fixture(tmp_path):
    import torch

    from siftkit.cascade.train import TrainConfig, run

    torch.set_num_threads(1)
    train, _ = simulate(preset("tiny", requests_per_day=16, test_requests=4))
    recflow.write_layout(train, tmp_path, ["2024-02-01", "2024-02-02"], 2)
    data, _ = recflow.load(tmp_path, ["2024-02-01", "2024-02-02"], seq_len=10, trust_pickle=True)
    out = run(data, data, TrainConfig(method="lcron", batch_size=16), ndcg=False)
    assert 0 <= out["metrics"]["joint"] <= 1


def test_missing_folder_names_the_path(tmp_path):
    with pytest.raises(InputError):
        recflow.splits(tmp_path)


def test_pickles_are_refused_without_trust(tmp_path):
    from siftkit.core.errors import InputError

    train, _ = simulate(preset("tiny", requests_per_day=4, test_requests=2))
    recflow.write_layout(train, tmp_path, ["2024-02-01"], 2)
    with pytest.raises(InputError, match="--trust-pickle"):
        recflow.load(tmp_path, ["2024-02-01"], seq_len=10)
