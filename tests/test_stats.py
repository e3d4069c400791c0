"""Statistics over runs: known values, coverage of the bootstrap intervals, and agreement with rliable."""
import numpy as np
import pytest

from models.sweeps import stats


def test_known_values():
    assert stats.iqm(np.arange(8)) == 3.5  # 2, 3, 4, 5 kept
    assert stats.iqm([[0, 10], [1, 11], [2, 12], [3, 13]]) == 6.5  # over all run x task scores: 2, 3, 10, 11
    assert stats.median([[0.0, 1.0], [1.0, 1.0]]) == 0.75  # median over tasks of the task means (0.5, 1.0)
    assert stats.optimality_gap([0.5, 1.0, 1.2]) == pytest.approx(1 - (0.5 + 1 + 1) / 3)
    assert np.allclose(stats.performance_profile([0.1, 0.5, 0.9, 1.0], [0.0, 0.5, 0.95]), [1.0, 0.5, 0.25])


def test_probability_of_improvement_of_identical_and_dominated_groups():
    a = np.array([0.1, 0.4, 0.6, 0.9])
    assert stats.probability_of_improvement(a, a) == 0.5
    assert stats.probability_of_improvement(a + 2, a) == 1.0 and stats.probability_of_improvement(a, a + 2) == 0.0
    est = stats.improvement(a + 2, a)
    assert (est.value, est.lo, est.hi) == (1.0, 1.0, 1.0)
    same = stats.improvement(a, a)
    assert same.value == 0.5 and same.lo < 0.5 < same.hi


def test_the_interval_covers_the_true_value_in_about_95_percent_of_repetitions():
    # runs drawn from Beta(2, 5): its mean is 2/7; 20 runs a group, 100 groups
    rng = np.random.default_rng(0)
    hits = 0
    for rep in range(100):
        est = stats.aggregate(rng.beta(2, 5, size=20), stats.mean, reps=1000, seed=rep)
        hits += est.lo <= 2 / 7 <= est.hi
    assert hits >= 88  # nominal 95; the percentile bootstrap with 20 runs runs a little short


def test_intervals_are_seeded_and_one_run_is_a_note_not_a_crash():
    x = np.random.default_rng(1).random(7)
    assert stats.aggregate(x, seed=3) == stats.aggregate(x, seed=3)
    one = stats.aggregate([0.4])
    assert (one.value, one.lo, one.hi, one.runs) == (0.4, 0.4, 0.4, 1)
    assert "no interval" in stats.runs_note(1) and "fewer than 5" in stats.runs_note(3)
    assert "10" in stats.runs_note(5) and stats.runs_note(10) is None
    point, lo, hi = stats.curve_bands(np.array([[0.0, 1.0], [1.0, 1.0], [0.5, 1.0]]), "iqm")
    assert np.allclose(point, [0.5, 1.0]) and np.all(lo <= point) and np.all(point <= hi)


@pytest.mark.slow
def test_agrees_with_rliable_on_the_same_scores():
    rliable_library = pytest.importorskip("rliable.library", reason="rliable is in the dev extra")
    from rliable import metrics

    rng = np.random.default_rng(5)
    scores = {"A": rng.beta(2, 3, size=(10, 1)), "B": rng.beta(3, 2, size=(10, 1))}
    fns = {"IQM": (stats.iqm, metrics.aggregate_iqm), "median": (stats.median, metrics.aggregate_median),
           "mean": (stats.mean, metrics.aggregate_mean),
           "optimality gap": (stats.optimality_gap, metrics.aggregate_optimality_gap)}
    theirs, their_ci = rliable_library.get_interval_estimates(
        scores, lambda x: np.array([f[1](x) for f in fns.values()]), reps=20000)
    for algo, x in scores.items():
        ours = stats.aggregates(x, reps=20000)
        for i, name in enumerate(fns):
            assert ours[name].value == pytest.approx(theirs[algo][i], abs=1e-12), (algo, name)
            assert ours[name].lo == pytest.approx(their_ci[algo][0, i], abs=0.02), (algo, name)
            assert ours[name].hi == pytest.approx(their_ci[algo][1, i], abs=0.02), (algo, name)
    poi, poi_ci = rliable_library.get_interval_estimates(
        {"B,A": (scores["B"], scores["A"])}, metrics.probability_of_improvement, reps=5000)
    ours = stats.improvement(scores["B"], scores["A"], reps=5000)
    assert ours.value == pytest.approx(poi["B,A"], abs=1e-12)
    assert ours.lo == pytest.approx(poi_ci["B,A"][0], abs=0.03) and ours.hi == pytest.approx(poi_ci["B,A"][1], abs=0.03)
