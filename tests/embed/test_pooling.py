"""Pooling on hand-made states: the last/first real token on right- and left-padded rows, the masked mean."""

import pytest
import torch

from siftkit.embed.pooling import last_index, pool, position_ids

H = torch.arange(16.0).view(2, 4, 2)  # (B=2, T=4, d=2): token t of row b holds [8b + 2t, 8b + 2t + 1]
RIGHT = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
LEFT = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
MIDDLE = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 1]])


def test_last_token_on_right_and_left_padding():
    assert pool(H, RIGHT, "last").tolist() == [[2.0, 3.0], [14.0, 15.0]]  # row 0: token 1; row 1: token 3
    assert pool(H, LEFT, "last").tolist() == [[6.0, 7.0], [14.0, 15.0]]  # row 0: token 3
    assert last_index(MIDDLE).tolist() == [2, 3]


def test_cls_is_the_first_real_token():
    assert pool(H, RIGHT, "cls").tolist() == [[0.0, 1.0], [8.0, 9.0]]
    assert pool(H, LEFT, "cls").tolist() == [[4.0, 5.0], [8.0, 9.0]]  # row 0: token 2, after the padding


def test_mean_over_real_tokens_only():
    assert pool(H, RIGHT, "mean").tolist() == [[(0 + 2) / 2, (1 + 3) / 2], [(8 + 10 + 12 + 14) / 4,
                                                                           (9 + 11 + 13 + 15) / 4]]
    assert pool(H, LEFT, "mean")[0].tolist() == [(4 + 6) / 2, (5 + 7) / 2]


def test_positions_restart_after_left_padding_and_unknown_pooling_fails():
    assert position_ids(LEFT).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]
    with pytest.raises(ValueError, match="pooling"):
        pool(H, RIGHT, "max")
