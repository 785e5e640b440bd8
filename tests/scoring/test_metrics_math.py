"""scoring.metrics against values worked out by hand (each comment shows the arithmetic)."""

import math

import numpy as np
import pytest

from scoring import metrics


def test_cohen_kappa_matches_the_textbook_two_by_two_table():
    # both yes 20, A yes/B no 5, A no/B yes 10, both no 15: po = 35/50, pe = (25·30 + 25·20)/50² = 0.5
    a = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert metrics.cohen_kappa(a, b) == pytest.approx((0.7 - 0.5) / (1 - 0.5))


def test_cohen_kappa_is_undefined_without_variation_and_rejects_unpaired_input():
    assert metrics.cohen_kappa(["y", "y"], ["y", "y"]) is None
    assert metrics.cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        metrics.cohen_kappa(["y"], ["y", "n"])


def test_krippendorff_alpha_nominal_from_the_coincidence_matrix():
    # units (a,a) (a,b) (b,b): o_aa = 2, o_ab = o_ba = 1, o_bb = 2, n = 6, n_a = n_b = 3
    # D_o = 2/6, D_e = 2·3·3 / (6·5) = 0.6, α = 1 − (1/3)/0.6 = 4/9; the lone value is not pairable
    units = [["a", "a"], ["a", "b"], ["b", "b"], ["a"]]
    assert metrics.krippendorff_alpha(units) == pytest.approx(4 / 9)


def test_krippendorff_alpha_with_three_coders_and_missing_values():
    # units (a,a,b) and (b,b): unit 1 adds 1/(3−1) per ordered pair: o_aa = 1, o_ab = o_ba = 1, o_bb += 0;
    # unit 2: o_bb += 2. n = 5, n_a = 2, n_b = 3. D_o = 2/5, D_e = 2·2·3/(5·4) = 0.6, α = 1 − 0.4/0.6 = 1/3
    assert metrics.krippendorff_alpha([["a", "a", "b"], ["b", "b"]]) == pytest.approx(1 / 3)


def test_krippendorff_alpha_interval_level_uses_squared_differences():
    # units (1,2) and (3,3): o_12 = o_21 = 1, o_33 = 2, n = 4; D_o = (1 + 1)·1² / 4 = 0.5
    # D_e = Σ n_c n_k (c−k)² / (n(n−1)) = 2·(1·1·1 + 1·2·4 + 1·2·1) / 12 = 22/12; α = 1 − 0.5 / (22/12) = 8/11
    assert metrics.krippendorff_alpha([[1, 2], [3, 3]], level="interval") == pytest.approx(8 / 11)


def test_krippendorff_alpha_is_undefined_for_one_value_or_no_pairs():
    assert metrics.krippendorff_alpha([["a", "a"], ["a", "a"]]) is None
    assert metrics.krippendorff_alpha([["a"], ["b"]]) is None


def test_raw_agreement_counts_agreeing_pairs_within_units():
    # pairs: (a,a) agree, (a,b) no, (b,b) agree: 2/3; (a,a,b) adds 3 pairs of which 1 agrees: (1 + 0 + 1)/5
    assert metrics.raw_agreement([["a", "a"], ["a", "b"], ["b", "b"]]) == pytest.approx(2 / 3)
    assert metrics.raw_agreement([["a", "a", "b"], ["a", "b"], ["b", "b"]]) == pytest.approx(2 / 5)
    assert metrics.raw_agreement([["a"]]) is None


def test_pairwise_kappas_use_shared_units_and_sorted_names():
    out = metrics.pairwise_kappas({"zed": {1: "y", 2: "n", 3: "y"}, "amy": {1: "y", 2: "n", 4: "n"}})
    # shared units 1 and 2, identical answers with both classes present: κ = 1
    assert out == {"amy|zed": {"kappa": pytest.approx(1.0), "n": 2}}


def test_wilson_interval_of_eight_in_ten():
    # p = .8, z² = 3.8415, centre = (.8 + .19208)/1.38415 = .7167, half = 1.96·√(.016 + .0096)/1.38415 = .2266
    low, high = metrics.wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert metrics.wilson_interval(0, 0) is None
    zero = metrics.proportion(0, 20)
    assert zero["estimate"] == 0 and zero["low"] == 0 and 0 < zero["high"] < 0.17


def test_ipw_proportion_is_the_hajek_estimate_with_kish_effective_n():
    # weights 2, 2, 4, 1: estimate = (2 + 4)/9, n_eff = 9²/(4 + 4 + 16 + 1) = 3.24
    out = metrics.ipw_proportion(np.array([1, 0, 1, 0]), np.array([0.5, 0.5, 0.25, 1.0]))
    assert out["estimate"] == pytest.approx(2 / 3)
    assert out["n_eff"] == pytest.approx(3.24)
    low, high = metrics.wilson_interval(2 / 3 * 3.24, 3.24)
    assert (out["low"], out["high"]) == (pytest.approx(low), pytest.approx(high))
    census = metrics.ipw_proportion(np.array([1, 0, 0, 0]), np.ones(4))
    assert census["estimate"] == 0.25 and census["n_eff"] == 4


def test_shares():
    assert metrics.shares(["a", "b", "a", "a"]) == {"a": 0.75, "b": 0.25}
    assert metrics.shares([]) == {}


def test_confusion_rates_of_a_small_detector():
    # tp = 1, fp = 2, fn = 1, tn = 1
    out = metrics.confusion_rates([True, True, False, False, True], [True, False, True, False, False])
    assert out["fpr"] == pytest.approx(2 / 3)
    assert out["fnr"] == pytest.approx(1 / 2)
    assert out["precision"] == pytest.approx(1 / 3)
    assert out["recall"] == pytest.approx(1 / 2)
    assert (out["n"], out["tp"], out["fp"], out["fn"], out["tn"]) == (5, 1, 2, 1, 1)
    assert metrics.confusion_rates([False], [False])["fnr"] is None


def test_one_vs_rest_takes_each_option_as_the_positive_class():
    out = metrics.one_vs_rest(["a", "b", "c", "a"], ["a", "a", "c", "b"], ["a", "b", "c"])
    # option a: predicted a at 0, 3; actual a at 0, 1 → tp 1, fp 1, fn 1, tn 1
    assert (out["a"]["fpr"], out["a"]["fnr"]) == (0.5, 0.5)
    # option c: perfect
    assert (out["c"]["fpr"], out["c"]["fnr"], out["c"]["precision"]) == (0.0, 0.0, 1.0)


def test_bradley_terry_mle_of_two_models_is_the_log_odds():
    # A (0) beat B (1) three times, lost once: p_A / p_B = 3
    s = metrics.bradley_terry(np.array([0, 0, 0, 1]), np.array([1, 1, 1, 0]), 2, prior=0)
    assert s[0] - s[1] == pytest.approx(math.log(3), abs=1e-6)
    assert s.sum() == pytest.approx(0)


def test_bradley_terry_counts_a_tie_half_to_each_side():
    # one win each way plus a tie: equal strengths; a tie added to A's side of 1-1 keeps it 1.5-1.5
    s = metrics.bradley_terry(np.array([0, 1, 0]), np.array([1, 0, 1]), 2, ties=np.array([False, False, True]), prior=0)
    assert s[0] == pytest.approx(s[1], abs=1e-9)


def test_bradley_terry_prior_keeps_an_unbeaten_model_finite_and_orders_a_chain():
    # A beats B twice, B beats C twice: with the prior every strength is finite and A > B > C
    s = metrics.bradley_terry(np.array([0, 0, 1, 1]), np.array([1, 1, 2, 2]), 3, prior=1.0)
    assert np.all(np.isfinite(s)) and s[0] > s[1] > s[2]
    # prior = 1 for two models, A beat B once: the fixed point p_A = (1 + 1)/(1/(p_A+p_B) + 2/(p_A+1))
    # is solved by p_A = 1/p_B; check the update equations hold at the answer
    s2 = metrics.bradley_terry(np.array([0]), np.array([1]), 2, prior=1.0)
    pa, pb = math.exp(s2[0]), math.exp(s2[1])
    assert pa * pb == pytest.approx(1.0, abs=1e-6)
    assert pa == pytest.approx(2 / (1 / (pa + pb) + 2 / (pa + 1)), abs=1e-6)
    assert pb == pytest.approx(1 / (1 / (pa + pb) + 2 / (pb + 1)), abs=1e-6)


def test_bootstrap_interval_brackets_the_strength_and_is_reproducible():
    rng_w = np.array([0] * 30 + [1] * 10)
    rng_l = np.array([1] * 30 + [0] * 10)
    a = metrics.bradley_terry_intervals(rng_w, rng_l, 2, np.random.default_rng(7), rounds=100)
    b = metrics.bradley_terry_intervals(rng_w, rng_l, 2, np.random.default_rng(7), rounds=100)
    assert np.array_equal(a["low"], b["low"]) and np.array_equal(a["high"], b["high"])
    assert np.all(a["low"] <= a["strength"]) and np.all(a["strength"] <= a["high"])
    assert a["low"][0] > 0 > a["high"][1]


def test_position_bias_and_overturn_rate():
    bias = metrics.position_bias(7, 10)
    assert bias["estimate"] == 0.7 and bias["n"] == 10
    out = metrics.overturn_rate([("x", "x"), ("x", "y"), ("y", "z")])
    assert out["estimate"] == pytest.approx(2 / 3) and out["overturned"] == 2 and out["n"] == 3


def test_throughput_buckets_and_time_per_judgment():
    out = metrics.throughput(np.array([0, 10, 86400, 86401, 200000, 400000]), 0, 3 * 86400)
    assert out["counts"] == [2, 2, 1] and out["total"] == 5 and out["per_bucket"] == pytest.approx(5 / 3)
    t = metrics.time_per_judgment([1000, 3000, None, 8000])
    assert (t["median_s"], t["mean_s"], t["n"]) == (3.0, 4.0, 3)


def test_calibration_table_ece_and_brier():
    # bin 1: predicted .125, observed .5; bin 9: predicted .925, observed 1
    # ECE = ½·.375 + ½·.075 = .225; Brier = (.01 + .7225 + .01 + .0025)/4 = .18625
    out = metrics.calibration(np.array([0.1, 0.15, 0.9, 0.95]), np.array([0, 1, 1, 1]))
    assert [(b["low"], b["n"]) for b in out["bins"]] == [(0.1, 2), (0.9, 2)]
    assert out["ece"] == pytest.approx(0.225)
    assert out["brier"] == pytest.approx(0.18625)


def test_histogram_and_summary():
    h = metrics.histogram(np.array([0.0, 0.1, 0.5, 0.99, 1.0, 1.5]), bins=4)
    assert h["counts"] == [2, 0, 1, 3]
    s = metrics.summary(np.array([1.0, 2.0, 3.0, 4.0]))
    assert (s["n"], s["mean"], s["median"]) == (4, 2.5, 2.5)
    assert metrics.summary(np.array([]))["mean"] is None


def test_reports_carry_no_nan():
    from reviews.monitoring.figures import _finite

    assert _finite({"a": [float("nan"), 1.0, {"b": float("inf")}], "c": "x"}) == {
        "a": [None, 1.0, {"b": None}],
        "c": "x",
    }
