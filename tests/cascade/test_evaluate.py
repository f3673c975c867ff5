import numpy as np
import pytest

from siftkit.cascade.evaluate import evaluate_scores, joint_recall, ndcg_at, recall_at


def _labels(r=1):
    return np.array([[30.0 - i for i in range(10)] + [7.0] * 10 + [6.0] * 10 + [5.0] * 10] * r)


def test_joint_recall_hand_case():
    labels = _labels()
    s1 = np.arange(40, 0, -1.0)[None]  # perfect retrieval
    s2 = s1.copy()
    s2[0, :4] = -100  # the ranker sinks 4 positives below everything the retriever kept
    assert joint_recall([s1, s2], labels, [30, 20])[0] == pytest.approx(6 / 10)
    s1b = s1.copy()
    s1b[0, :3] = -100  # retrieval drops 3 positives; the ranker cannot bring them back
    assert joint_recall([s1b, s1], labels, [30, 20])[0] == pytest.approx(7 / 10)


def test_recall_at_m():
    labels = _labels()
    s = -np.arange(40.0)[None]
    s[0, 9] = -100  # one positive out of the top 20
    assert recall_at(s, labels, 20)[0] == pytest.approx(9 / 10)


def test_all_equal_scores_give_about_half_after_shuffle():
    labels = _labels(2000)
    zeros = np.zeros_like(labels)
    out = evaluate_scores([zeros, zeros], labels, [30, 20], ndcg=False)
    assert abs(out["joint"].mean() - 20 / 40) < 0.01  # not 1.0: the shuffle hides the group order


def test_labels_oracle_is_perfect():
    labels = _labels(5)
    out = evaluate_scores([labels, labels], labels, [30, 20])
    assert out["joint"].mean() == 1.0 and out["ndcg_stage1"].mean() == pytest.approx(1.0)


def test_ndcg_ties_averaged():
    labels = np.array([[3.0, 2.0, 1.0]])
    assert ndcg_at(np.array([[1.0, 1.0, 1.0]]), labels, k=3)[0] < 1.0
    assert ndcg_at(np.array([[3.0, 2.0, 1.0]]), labels, k=3)[0] == pytest.approx(1.0)


def test_ndcg_closed_form_matches_sklearn():
    from sklearn.metrics import ndcg_score

    rs = np.random.default_rng(0)
    labels = _labels(20)
    scores = rs.normal(size=labels.shape)
    scores[3] = 0.0  # a fully tied row takes the sklearn path
    ours = ndcg_at(scores, labels)
    ref = [ndcg_score(labels[i:i + 1], scores[i:i + 1], k=10) for i in range(20)]
    assert ours == pytest.approx(ref, rel=1e-9)
