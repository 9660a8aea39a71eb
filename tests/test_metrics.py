"""Metrics vs scikit-learn / SciPy on random data (with ties), and vs values worked out by hand."""
import math

import numpy as np
import pytest

from minitx.train.metrics import (accuracy, f1_score, glue_compute_metrics, majority_baseline, matthews_corrcoef,
                                  pearson, rankdata, spearman)

pytestmark = pytest.mark.train


def test_hand_computed_confusion_metrics():
    # preds/labels give TP=3, FP=1, FN=2, TN=4.
    preds = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    labels = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    assert accuracy(preds, labels) == 7 / 10
    assert f1_score(preds, labels) == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert matthews_corrcoef(preds, labels) == pytest.approx((3 * 4 - 1 * 2) / math.sqrt(4 * 5 * 5 * 6))
    assert matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0      # a constant prediction: undefined -> 0
    assert f1_score([0, 0], [0, 0]) == 0.0


def test_hand_computed_correlations_with_ties():
    # Spearman with ties: x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4) -> Pearson of the ranks.
    np.testing.assert_array_equal(rankdata([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    np.testing.assert_array_equal(rankdata([3, 1, 3, 3, 2]), [4, 1, 4, 4, 2])
    rx, ry = np.array([1, 2.5, 2.5, 4]), np.array([1, 2, 3, 4])
    dx, dy = rx - rx.mean(), ry - ry.mean()
    assert spearman([10, 20, 20, 30], [1, 2, 3, 4]) == pytest.approx(dx @ dy / math.sqrt((dx @ dx) * (dy @ dy)))
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)    # monotone, not linear
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))


@pytest.mark.parametrize("seed", range(8))
def test_vs_sklearn_and_scipy(seed):
    metrics = pytest.importorskip("sklearn.metrics")
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    labels = rng.integers(0, 2, n)
    preds = np.where(rng.random(n) < 0.7, labels, 1 - labels)
    assert accuracy(preds, labels) == pytest.approx(metrics.accuracy_score(labels, preds))
    assert f1_score(preds, labels) == pytest.approx(metrics.f1_score(labels, preds))
    assert matthews_corrcoef(preds, labels) == pytest.approx(metrics.matthews_corrcoef(labels, preds))
    # Scores rounded to a coarse grid so there are many ties, like STS-B's 0..5 scale.
    x = np.round(rng.normal(size=n) * 2, 0)
    y = np.round(x + rng.normal(size=n), 1)
    np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-12, abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], rel=1e-12, abs=1e-12)


def test_glue_compute_metrics_keys_like_hf():
    preds, labels = np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1])
    assert glue_compute_metrics("sst2", preds, labels) == {"acc": 0.75}
    assert glue_compute_metrics("cola", preds, labels) == {"mcc": matthews_corrcoef(preds, labels)}
    mrpc = glue_compute_metrics("mrpc", preds, labels)
    assert mrpc == {"acc": 0.75, "f1": 0.8, "acc_and_f1": pytest.approx(0.775)}
    s = glue_compute_metrics("sts-b", [0.1, 2.0, 3.5, 5.0], [0.0, 2.5, 3.0, 4.5])
    assert set(s) == {"pearson", "spearmanr", "corr"} and s["spearmanr"] == 1.0
    assert s["corr"] == pytest.approx((s["pearson"] + s["spearmanr"]) / 2)
    with pytest.raises(ValueError, match="unknown task 'qnli'"):
        glue_compute_metrics("qnli", preds, labels)
    with pytest.raises(ValueError, match="preds has 2 values but labels has 3"):
        accuracy([1, 0], [1, 0, 1])


def test_majority_baseline_is_the_share_of_the_most_frequent_class():
    assert majority_baseline([0, 1, 1, 1]) == 0.75
    assert majority_baseline(np.array([2, 2, 0])) == 2 / 3
