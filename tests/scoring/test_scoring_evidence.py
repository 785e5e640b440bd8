"""scoring.evidence: automated labelers' confusions and the posterior they give each target."""

import numpy as np
import pytest

from scoring import evidence
from scoring.evidence import Labels, confidence_bin, fit, normalized_entropy, prior_matrix


def labels(*rows):
    """(target, source, value, confidence) rows, all on criterion 0."""
    return Labels.of((t, 0, s, v, c) for t, s, v, c in rows)


def test_confidence_bins_and_prior_matrices():
    assert confidence_bin(np.array([0.0, 0.3, 0.34, 0.7, 1.0, np.nan])).tolist() == [0, 0, 1, 2, 2, 3]
    m = prior_matrix(3, 0.7)
    assert m.sum(axis=1) == pytest.approx(np.ones(3)) and m[0, 0] == 0.7 and m[0, 1] == pytest.approx(0.15)


def test_cold_start_two_agreeing_labelers_outweigh_one_and_disagreement_splits():
    # No final answers at all: only the priors (and the labelers' agreement) speak.
    labs = labels((0, 0, 1, None), (0, 1, 1, None), (1, 0, 0, None), (1, 1, 1, None), (2, 0, 1, None))
    conf = fit([2], labs, np.zeros(3, dtype=np.int64), np.full(3, -1))
    post, n = conf.posterior(np.zeros(3, dtype=np.int64), labs)
    assert n.tolist() == [2, 2, 1]
    assert post[0, 1] > post[2, 1] > 0.5  # two agreeing labels say more than one
    assert post[1, 0] == pytest.approx(0.5, abs=0.1)  # a split leaves it near even
    h = normalized_entropy(post, np.array([2]))
    assert h[1] > h[2] > h[0]


def test_a_labeler_measured_wrong_counts_less_and_a_reliable_one_more():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.95, truth, 1 - truth)
    bad = np.where(rng.random(300) < 0.55, truth, 1 - truth)
    rows = [(t, 0, int(good[t]), None) for t in range(300)] + [(t, 1, int(bad[t]), None) for t in range(300)]
    labs = labels(*rows)
    conf = fit([2], labs, np.zeros(300, dtype=np.int64), truth)
    assert conf.checked[(0, 0)] == (300, int(np.sum(good == truth)))
    # A new target where they disagree: the good labeler wins.
    new = labels((0, 0, 1, None), (0, 1, 0, None))
    post, _ = conf.posterior(np.zeros(1, dtype=np.int64), new)
    assert post[0, 1] > 0.85
    described = {d["source"]: d["accuracy"] for d in conf.describe({0: "good", 1: "bad"})}
    assert described["good"] > 0.9 > 0.6 > described["bad"]


def test_low_confidence_labels_move_the_posterior_less():
    labs = labels((0, 0, 1, 0.95), (1, 0, 1, 0.1))
    conf = fit([2], labs, np.zeros(2, dtype=np.int64), np.full(2, -1))
    post, _ = conf.posterior(np.zeros(2, dtype=np.int64), labs)
    assert post[0, 1] > post[1, 1] > 0.5


def test_em_is_not_fooled_when_only_disagreements_were_decided():
    # Two labelers agree on most targets and are right there; people were asked only where they
    # disagree (each right half the time). Counting only the decided targets would call both
    # labelers coin flips; EM over every labeled target keeps them trustworthy where they agree.
    rng = np.random.default_rng(1)
    n = 2000
    truth = rng.integers(0, 3, n)
    wrong_a = rng.random(n) < 0.1
    wrong_b = rng.random(n) < 0.1
    a = np.where(wrong_a, (truth + 1) % 3, truth)
    b = np.where(wrong_b, (truth + 2) % 3, truth)
    decided = np.where(a != b, truth, -1)
    rows = [(t, 0, int(a[t]), None) for t in range(n)] + [(t, 1, int(b[t]), None) for t in range(n)]
    labs = labels(*rows)
    crit = np.zeros(n, dtype=np.int64)
    conf = fit([3], labs, crit, decided)
    post, _ = conf.posterior(crit, labs)
    agree = a == b
    assert np.mean(np.argmax(post[agree], axis=1) == truth[agree]) > 0.97
    supervised_only = fit([3], labs, crit, decided, iterations=0)
    post0, _ = supervised_only.posterior(crit, labs)
    assert post[agree].max(axis=1).mean() > post0[agree].max(axis=1).mean()


def test_the_class_prior_counts_final_answers_and_labels_reference_the_right_options():
    # Criterion 0 has two options, criterion 1 three: padding never receives mass.
    labs = Labels.of([(0, 1, 0, 2, None)])
    conf = fit([2, 3], labs, np.array([1, 1, 0]), np.array([-1, 2, 1]))
    post, _ = conf.posterior(np.array([1, 0]), labs)
    assert post[1, 2] == 0.0 and post[1, :2].sum() == pytest.approx(1.0)
    assert np.argmax(post[0]) == 2


def test_confusions_round_trip_through_arrays():
    labs = labels((0, 0, 1, 0.9), (1, 5, 0, None), (2, 5, 1, None))
    conf = fit([2], labs, np.zeros(3, dtype=np.int64), np.array([1, 0, -1]))
    back = evidence.Confusions.from_arrays(conf.to_arrays("x_"), "x_")
    crit = np.zeros(3, dtype=np.int64)
    assert back.posterior(crit, labs)[0] == pytest.approx(conf.posterior(crit, labs)[0])
    assert back.checked == conf.checked
