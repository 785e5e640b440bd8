"""scoring/ pure functions, checked against values computed by hand."""

import math

import numpy as np
import pytest

from scoring import features, models, selection
from scoring.diversity import greedy_farthest_first, min_cosine_distance, representatives
from scoring.models import (
    MIN_LABELS,
    absorb,
    binary_entropy,
    fit_with_offset,
    information_gain,
    noisy_or,
    posterior_uncertainty,
    sigmoid,
    train_bradley_terry,
    train_risk,
    train_tie,
    whitener,
)
from scoring.selection import Fisher, Weights, select_active, utility


def test_noisy_or_combines_the_prior_and_the_model():
    assert noisy_or(np.array([0.2, 0.0, 1.0]), np.array([0.5, 0.3, 0.0])) == pytest.approx([0.6, 0.3, 1.0])


def test_binary_entropy_in_bits():
    assert binary_entropy(np.array([0.0, 0.5, 1.0, 0.25])) == pytest.approx([0.0, 1.0, 0.0, 0.811278], abs=1e-6)


def test_posterior_uncertainty_falls_with_agreement_and_rises_with_a_split():
    n_a, n_b, prior = np.array([2.0, 1.0, 0.0, 0.5, 3.0]), np.array([0.0, 1.0, 0.0, 0.5, 0.0]), np.full(5, 0.5)
    h = posterior_uncertainty(n_a, n_b, prior)
    # p̂ = (2 + 2·0.5) / (2 + 0 + 2) = 0.75 → H = 0.8113; a 1-1 split or a tie → p̂ = 0.5 → 1 bit; 3-0 → 0.8 → 0.7219.
    assert h == pytest.approx([0.811278, 1.0, 1.0, 1.0, 0.721928], abs=1e-6)
    # An untrained prior of 0.9 and no votes: H(0.9) = 0.469.
    assert posterior_uncertainty(np.zeros(1), np.zeros(1), np.array([0.9])) == pytest.approx([0.468996], abs=1e-6)


def test_min_cosine_distance_against_references():
    e = np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])
    refs = np.array([[1.0, 0.0]])
    assert min_cosine_distance(e, refs) == pytest.approx([0.0, 0.4, 1.0])  # 1 − (−1) = 2, clipped to 1
    assert min_cosine_distance(e, np.zeros((0, 2))) == pytest.approx([1.0, 1.0, 1.0])
    two = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert min_cosine_distance(np.array([[0.6, 0.8]]), two) == pytest.approx([0.2])


def test_representatives_are_bounded_and_seeded():
    rows = np.arange(20, dtype=float).reshape(10, 2)
    assert representatives(rows, 50, np.random.default_rng(0)) is rows
    a = representatives(rows, 4, np.random.default_rng(1))
    assert a.shape == (4, 2)
    assert np.array_equal(a, representatives(rows, 4, np.random.default_rng(1)))


def test_greedy_farthest_first_skips_a_near_duplicate():
    e = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    base = np.array([0.5, 0.5, 0.4])
    order, d_at_pick = greedy_farthest_first(base, 1.0, np.ones(3), e, 2)
    # Pick A (0.5 + 1); then A' has d = 0 (score 0.5) and B keeps d = 1 (score 1.4).
    assert order.tolist() == [0, 2]
    assert d_at_pick.tolist() == [1.0, 1.0]
    order, _ = greedy_farthest_first(base, 0.0, np.ones(3), e, 3)
    assert order.tolist() == [0, 1, 2]


def test_utility_weights_each_term():
    u = utility(np.array([0.5]), np.array([0.25]), np.array([1.0]), Weights(1.0, 2.0, 0.5))
    assert u == pytest.approx([0.5 + 0.5 + 0.5])


def test_select_active_spends_the_budget_with_an_audit_share():
    r = np.linspace(0.9, 0.0, 10)  # item 0 best
    zeros = np.zeros(10)
    e = np.eye(10)
    eligible = np.ones(10, dtype=bool)
    eligible[1] = False  # e.g. already escalated
    cost, started = np.full(10, 2.0), np.zeros(10, dtype=bool)

    def select(budget, seed=3):
        return select_active(
            r, zeros, zeros, e, eligible, budget, cost, started, Weights(1, 1, 0), 0.2, np.random.default_rng(seed)
        )

    sel = select(10)  # 10 judgments at k = 2: five items; ε = 0.2 of 10 → 2 judgments, one audit item
    assert sel.selected.sum() == 5
    assert not sel.selected[1]
    util = np.flatnonzero(sel.selected & ~sel.audit)
    assert sorted(util.tolist()) == [0, 2, 3, 4]  # the four best eligible by utility
    assert sel.probability[util] == pytest.approx([1, 1, 1, 1])
    (audit,) = np.flatnonzero(sel.audit)
    assert audit in {5, 6, 7, 8, 9}
    assert sel.probability[audit] == pytest.approx(1 / 5)  # one drawn from the five left
    # Serving order: a permutation of 0..4, the audit item inside it rather than last.
    assert sorted(sel.rank[sel.selected].tolist()) == [0, 1, 2, 3, 4]
    assert sel.rank[audit] < 4
    assert np.array_equal(sel.rank, select(10).rank)


def test_items_in_progress_come_first_and_cost_only_what_they_still_need():
    r = np.linspace(0.9, 0.0, 6)
    cost = np.array([2.0, 2.0, 2.0, 2.0, 1.0, 1.0])  # items 4 and 5 have one of their two judgments
    started = cost < 2
    sel = select_active(
        r,
        np.zeros(6),
        np.zeros(6),
        np.eye(6),
        np.ones(6, dtype=bool),
        4,
        cost,
        started,
        Weights(1, 1, 0),
        0.0,
        np.random.default_rng(0),
    )
    # The two half-judged items (1 judgment each, best first) are served first, then the best new
    # item (2 judgments): 4 judgments in all.
    assert sel.rank[[4, 5, 0]].tolist() == [0, 1, 2]
    assert sorted(np.flatnonzero(sel.selected).tolist()) == [0, 4, 5]


def test_without_a_budget_cap_every_eligible_item_is_selected_with_certainty():
    r = np.array([0.1, 0.7, 0.3])
    eligible = np.array([True, True, False])
    cost, started = np.full(3, 2.0), np.zeros(3, dtype=bool)
    sel = select_active(
        r, np.zeros(3), np.zeros(3), np.eye(3), eligible, None, cost, started, Weights(), 0.1, np.random.default_rng(0)
    )
    assert sel.rank.tolist() == [1, 0, -1]
    assert sel.probability.tolist() == [1.0, 1.0, 0.0]
    assert not sel.audit.any()
    none = select_active(
        r, np.zeros(3), np.zeros(3), np.eye(3), eligible, 0, cost, started, Weights(), 0.1, np.random.default_rng(0)
    )
    assert not none.selected.any()


def test_the_risk_model_is_skipped_with_a_reason_when_labels_are_few():
    rng = np.random.default_rng(0)
    few = train_risk(np.zeros((MIN_LABELS - 1, 3)), np.ones(MIN_LABELS - 1), rng)
    assert not few.trained and "fewer than" in few.skipped
    one_class = train_risk(np.zeros((30, 3)), np.zeros(30), rng)
    assert not one_class.trained and "negative" in one_class.skipped


def test_the_risk_model_learns_a_separable_signal():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] > 0).astype(int)
    model = train_risk(X, y, np.random.default_rng(1))
    assert model.trained and model.trained_on == 200
    assert model.held_out_accuracy >= 0.9
    assert model.predict(np.array([[3.0, 0, 0, 0]]))[0] > 0.9 > 0.1 > model.predict(np.array([[-3.0, 0, 0, 0]]))[0]


def test_bradley_terry_is_antisymmetric_and_learns_the_preference():
    rng = np.random.default_rng(0)
    diffs = rng.normal(size=(300, 5))
    a_wins = (diffs[:, 2] > 0).astype(int)
    model = train_bradley_terry(diffs, a_wins, np.random.default_rng(2))
    assert model.trained and model.bias == 0.0
    assert model.held_out_accuracy >= 0.9
    p = model.predict(diffs[:10])
    assert p + model.predict(-diffs[:10]) == pytest.approx(np.ones(10))
    assert train_bradley_terry(diffs[:5], a_wins[:5], rng).skipped.startswith("5 decided pairs")


def test_pair_accuracy_counts_a_coin_flip_half():
    p = np.array([0.9, 0.2, 0.5, 0.5])
    a_wins = np.array([1, 1, 1, 0])
    assert models.pair_accuracy(p, a_wins) == pytest.approx((1 + 0 + 0.5 + 0.5) / 4)
    assert np.isnan(models.pair_accuracy(np.zeros(0), np.zeros(0)))


def test_poststratification_weights_restore_the_pools_shares():
    pool_keys, pool_share = np.array([0, 1, 6]), np.array([0.5, 0.45, 0.05])
    # Training: three of stratum 1, one of stratum 0 (pool: half and half); one of a stratum the
    # pool sample never saw (keeps weight 1 before scaling).
    keys = np.array([1, 1, 1, 0, 9])
    w = models.poststratification_weights(keys, pool_keys, pool_share)
    raw = np.array([0.45 / 0.6, 0.45 / 0.6, 0.45 / 0.6, 0.5 / 0.2, 1.0])
    assert w == pytest.approx(raw / raw.mean())
    # A stratum 20× over-represented is down-weighted only to the cap.
    capped = models.poststratification_weights(np.array([6] * 99 + [0]), pool_keys, pool_share)
    assert capped[0] / capped[-1] == pytest.approx((1 / models.STRATUM_WEIGHT_CAP) / models.STRATUM_WEIGHT_CAP)
    assert models.poststratification_weights(np.zeros(0, dtype=np.int64), pool_keys, pool_share).size == 0


def test_weighted_pairs_move_the_bradley_terry_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 1))
    # Half the pairs follow x, half oppose it: weighting the first half up makes w positive.
    a_wins = np.where(np.arange(200) < 100, x[:, 0] > 0, x[:, 0] < 0).astype(int)
    weight = np.where(np.arange(200) < 100, 3.0, 1.0)
    up = train_bradley_terry(x, a_wins, np.random.default_rng(1), weight=weight / weight.mean())
    down = train_bradley_terry(x, a_wins, np.random.default_rng(1), weight=(4 - weight) / (4 - weight).mean())
    assert up.weights[0] > 0 > down.weights[0]


def test_text_features_are_fixed_size_deterministic_and_survive_odd_text():
    texts = ["How do I kill a Python process?", "", "\u200b\u202e\x00", "x" * 1_000_000, "```py\nprint(1)\n```"]
    f = features.text_features(texts)
    assert f.shape == (5, features.DIM) and f.dtype == np.float32
    assert np.array_equal(f, features.text_features(texts))
    assert not f[1].any()  # empty: nothing to embed, nothing to count
    assert not f[2, : features.SEMANTIC].any()  # nothing left after cleaning but blanks
    log_chars, log_lines, _, log_fences = range(features.SEMANTIC, features.SEMANTIC + 4)
    assert f[3, log_chars] == pytest.approx(math.log1p(1_000_000))  # counted in full, embedded capped
    assert f[4, log_fences] == pytest.approx(math.log1p(2), abs=1e-6) and f[4, log_lines] == pytest.approx(
        math.log1p(3)
    )
    assert np.linalg.norm(f[0, : features.SEMANTIC]) > 0


def test_feature_storage_round_trips_within_float16_precision():
    f = features.text_features(["alpha beta gamma", "delta"])
    back = features.from_bytes(features.to_bytes(f))
    assert back == pytest.approx(f, abs=1e-2, rel=1e-3)


def test_unit_rows_are_unit_length_or_zero():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    assert features.unit_rows(a).tolist() == [[0.6, 0.8], [0.0, 0.0]]


def test_noisy_or_takes_any_number_of_sources():
    assert noisy_or(np.array([0.5]), np.array([0.5]), np.array([0.5]))[0] == pytest.approx(0.875)
    assert noisy_or(np.array([0.0, 1.0]))[1] == 1.0


def test_the_risk_model_corrects_an_offset_and_stays_near_it_with_few_examples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    prior = np.where(X[:, 0] > 0, 2.0, -2.0)  # an automated label's log-odds
    y = (rng.random(400) < sigmoid(prior + 1.5 * X[:, 1])).astype(int)  # the truth adds a second signal
    model = train_risk(X, y, np.random.default_rng(1), offset=prior)
    assert model.trained and model.weights[1] > 0.8  # the correction is learned
    few = train_risk(X[:MIN_LABELS], y[:MIN_LABELS] * 0 + np.arange(MIN_LABELS) % 2, rng, offset=prior[:MIN_LABELS])
    # With 20 examples of noise, the prediction stays close to the offset's own probability.
    assert abs(few.predict(X[:1] * 0, np.array([2.0]))[0] - sigmoid(np.array([2.0]))[0]) < 0.25


def test_fit_with_offset_matches_scikit_learn_without_one():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=300) > 0).astype(int)
    w, b = fit_with_offset(X, y, np.zeros(300), C=1.0)
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-10).fit(X, y)
    assert w == pytest.approx(ref.coef_[0], abs=1e-3) and b == pytest.approx(ref.intercept_[0], abs=1e-3)


def test_bradley_terry_picks_the_simplest_block_that_predicts():
    rng = np.random.default_rng(0)
    n = 400
    length = rng.normal(size=(n, 1))
    noise = rng.normal(size=(n, 30))
    X = np.hstack([length, noise])
    a_wins = (length[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    blocks = {"length": np.r_[True, np.zeros(30, bool)], "evidence": np.zeros(31, bool)}
    blocks["semantic"] = ~blocks["length"]
    model = train_bradley_terry(X, a_wins, np.random.default_rng(1), blocks)
    assert model.info["blocks"] == "length+evidence"  # the noise block does not earn its place
    assert not model.weights[1:].any() and model.weights[0] > 0
    # When the preference lives in the other block, that block is chosen.
    a_wins = (noise[:, 3] > 0).astype(int)
    model = train_bradley_terry(X, a_wins, np.random.default_rng(1), blocks)
    assert "semantic" in model.info["blocks"] and model.held_out_accuracy >= 0.85


def test_the_tie_model_needs_both_classes_and_learns_which_pairs_tie():
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(200, 2)))
    decided = X[:, 0] > 0.6
    assert not train_tie(X[:15], decided[:15]).trained
    model = train_tie(X, decided)
    assert model.trained
    assert model.predict(np.array([[2.0, 0.5]]))[0] > 0.8 > 0.2 > model.predict(np.array([[0.0, 0.5]]))[0]


def test_information_gain_is_the_bradley_terry_fisher_gain_and_absorb_updates_it():
    rng = np.random.default_rng(0)
    X_train, X = rng.normal(size=(50, 4)), rng.normal(size=(6, 4))
    p_train, p = rng.uniform(0.2, 0.8, 50), rng.uniform(0.2, 0.8, 6)
    A = 2.0 * np.eye(4) + (X_train * (p_train * (1 - p_train))[:, None]).T @ X_train
    z = X @ whitener(X_train, p_train, 2.0).T
    direct = p * (1 - p) * np.einsum("ij,jk,ik->i", X, np.linalg.inv(A), X)
    assert information_gain(z, p) == pytest.approx(np.clip(0.5 * np.log2(1 + direct), 0, 1))
    # Absorbing pair 0 is adding it to A: the gains match a direct recomputation, and its own falls.
    A2 = A + p[0] * (1 - p[0]) * np.outer(X[0], X[0])
    direct2 = p * (1 - p) * np.einsum("ij,jk,ik->i", X, np.linalg.inv(A2), X)
    after = information_gain(absorb(z, 0, p[0]), p)
    assert after == pytest.approx(np.clip(0.5 * np.log2(1 + direct2), 0, 1))
    assert after[0] < information_gain(z, p)[0]


def test_fisher_mode_spreads_a_batch_over_directions():
    # Four near-copies of one direction and one pair in another: entropy alone would take the
    # copies; the Fisher update lowers the copies' gain after the first is picked.
    X = np.array([[1.0, 0.0], [0.99, 0.01], [0.98, 0.0], [1.0, 0.02], [0.0, 0.6]])
    p = np.full(5, 0.5)
    z = X @ whitener(np.zeros((0, 2)), np.zeros(0), 0.1).T
    h = information_gain(z, p)
    assert np.argsort(-h)[:2].tolist() != [4, 4]
    fisher = Fisher(p, np.ones(5), np.ones(5), lambda idx: z[idx])
    sel = select_active(
        np.zeros(5),
        h,
        np.zeros(5),
        np.eye(5),
        np.ones(5, bool),
        2,
        np.ones(5),
        np.zeros(5, bool),
        Weights(0, 1, 0),
        0.0,
        np.random.default_rng(0),
        fisher=fisher,
    )
    assert sel.selected[4] and sel.selected.sum() == 2
    plain = select_active(
        np.zeros(5),
        h,
        np.zeros(5),
        np.eye(5),
        np.ones(5, bool),
        2,
        np.ones(5),
        np.zeros(5, bool),
        Weights(0, 1, 0),
        0.0,
        np.random.default_rng(0),
    )
    assert not plain.selected[4]


def test_greedy_picks_no_more_than_the_budget_can_pay_for():
    n = 50
    sel = select_active(
        np.zeros(n),
        np.linspace(0, 1, n),
        np.ones(n),
        np.eye(n),
        np.ones(n, bool),
        3,
        np.ones(n),
        np.zeros(n, bool),
        Weights(),
        0.0,
        np.random.default_rng(0),
    )
    assert sel.selected.sum() == 3 and sel.selected[-3:].all()


def test_choose_measures_diversity_against_the_labeled_items_then_selects():
    rng = np.random.default_rng(0)
    emb = np.eye(4, dtype=np.float32)
    emb[1] = emb[0]  # item 1 duplicates labeled item 0
    labeled = np.array([True, False, False, False])
    eligible = ~labeled
    chosen = selection.choose(
        np.zeros(4), np.zeros(4), emb, labeled, eligible, 2, np.ones(4), np.zeros(4, dtype=bool),
        selection.Weights(0.0, 0.0, 1.0), 0.0, rng, max_representatives=10,
    )  # fmt: skip
    # Only diversity counts: the copy of the labeled item is the one left out.
    assert set(np.flatnonzero(chosen.selected)) == {2, 3}
    assert chosen.diversity[1] == pytest.approx(0.0, abs=1e-6)
