"""The retraining gate's paired tests: golden values against SciPy / scikit-learn, and their
false-positive rates at the nominal level by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.stats.paired import _weighted_auc, compare_paired, mcnemar_p_value


@pytest.mark.parametrize(("b", "c"), [(0, 0), (5, 0), (0, 5), (10, 20), (37, 41), (300, 355)])
def test_mcnemar_is_scipys_exact_binomial_test(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else stats.binomtest(c, b + c, 0.5, alternative="greater").pvalue
    assert mcnemar_p_value(b, c) == pytest.approx(expected, rel=1e-10, abs=1e-15)


def test_accuracy_comparison_counts_discordant_rows() -> None:
    truth = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0])
    champion = np.array([0, 1, 0, 0, 0, 1, 1, 1, 0, 0])  # 7 right
    candidate = np.array([0, 1, 1, 0, 1, 1, 1, 0, 0, 0])  # 8 right
    result = compare_paired(truth, champion, candidate, metric="accuracy")
    assert (result.champion, result.candidate) == (0.7, 0.8)
    assert result.details == {"champion_only": 1, "candidate_only": 2}
    assert result.improvement == pytest.approx(0.1)
    assert result.p_value == pytest.approx(stats.binomtest(2, 3, 0.5, alternative="greater").pvalue)
    low, high = result.interval
    assert low < result.improvement < high


def test_weighted_auc_is_scikit_learns_with_ties_and_weights() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.35).astype(float)
    scores = np.round(y * 0.4 + rng.random(400), 1)  # many ties
    weights = rng.integers(0, 4, size=(3, 400)).astype(float)
    got = _weighted_auc(y, scores, weights)
    for row, value in zip(weights, got, strict=True):
        assert value == pytest.approx(roc_auc_score(y, scores, sample_weight=row), abs=1e-12)


@pytest.mark.parametrize("metric", ["accuracy", "roc_auc", "mae"])
def test_equally_good_models_are_called_better_at_most_alpha_of_the_time(metric: str) -> None:
    rng = np.random.default_rng(7)
    alpha, runs, n = 0.05, 200, 300
    significant = 0
    for run in range(runs):
        y = (rng.random(n) < 0.4).astype(float)
        if metric == "accuracy":
            a = np.where(rng.random(n) < 0.8, y, 1 - y)
            b = np.where(rng.random(n) < 0.8, y, 1 - y)
        elif metric == "roc_auc":
            a = y * 0.6 + rng.random(n)
            b = y * 0.6 + rng.random(n)
        else:
            y = rng.normal(size=n)
            a = y + rng.normal(size=n)
            b = y + rng.normal(size=n)
        result = compare_paired(y, a, b, metric=metric, resamples=400, seed=run)
        significant += result.p_value < alpha
    # Nominal 5 %: 10 of 200 expected; 3 standard errors above is 19.
    assert significant / runs <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)


def test_a_really_better_model_is_found_with_a_few_hundred_rows() -> None:
    rng = np.random.default_rng(9)
    y = (rng.random(500) < 0.5).astype(float)
    champion = np.where(rng.random(500) < 0.75, y, 1 - y)
    candidate = np.where(rng.random(500) < 0.85, y, 1 - y)
    assert compare_paired(y, champion, candidate, metric="accuracy").p_value < 0.01


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="metric: expected one of accuracy"):
        compare_paired([1, 0], [1, 0], [1, 0], metric="f1")
    with pytest.raises(InputError, match="of one length"):
        compare_paired([1, 0, 1], [1, 0], [1, 0], metric="accuracy")
    with pytest.raises(InputError, match="both classes"):
        compare_paired([1, 1, 1], [0.2, 0.3, 0.4], [0.1, 0.2, 0.3], metric="roc_auc")
    with pytest.raises(InputError, match="finite"):
        compare_paired([1.0, np.nan], [1.0, 2.0], [1.0, 2.0], metric="mae")
