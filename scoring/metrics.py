"""Monitoring figures as pure functions over plain values and numpy arrays (no Django).

Intervals are 95% unless a caller asks otherwise. Proportions use the Wilson score
interval; a weighted (inverse-probability) proportion uses it with Kish's effective sample
size n_eff = (Σw)² / Σw² in place of n. Functions return None for a figure that the data
cannot define (no pairs, one class only...), never a made-up number.
"""

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

Z95 = 1.959963984540054


# --- agreement ---------------------------------------------------------------------------


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float | None:
    """Cohen's κ of two annotators over the units both labeled (a[i], b[i] the same unit)."""
    if len(a) != len(b):
        raise ValueError("both annotators need one value per shared unit")
    if len(a) == 0:
        return None
    labels = sorted({*a, *b}, key=str)
    if len(labels) < 2:
        return None  # every answer identical: chance agreement is 1 and κ is undefined
    a_s, b_s = [str(x) for x in a], [str(x) for x in b]
    expected = _chance_agreement(a_s, b_s)
    if expected >= 1.0:
        return None
    return float(cohen_kappa_score(a_s, b_s, labels=[str(x) for x in labels]))


def _chance_agreement(a: list[str], b: list[str]) -> float:
    n = len(a)
    ca, cb = Counter(a), Counter(b)
    return sum(ca[v] * cb[v] for v in ca) / (n * n)


def value_counts_matrix(units: Iterable[Sequence[Hashable]]) -> tuple[np.ndarray, list]:
    """Units (each the values its annotators gave) as a units × values count matrix, and the value order."""
    units = [list(u) for u in units]
    values = sorted({v for u in units for v in u}, key=_sort_key)
    index = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(units), len(values)), dtype=float)
    for row, unit in enumerate(units):
        for v in unit:
            counts[row, index[v]] += 1
    return counts, values


def _sort_key(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def krippendorff_alpha(units: Iterable[Sequence[Hashable]], level: str = "nominal") -> float | None:
    """Krippendorff's α (the `krippendorff` package) over units, each the list of values it received.

    Units with fewer than two values are not pairable and do not count. `level` is "nominal",
    "ordinal" or "interval" (ordinal and interval need numeric values, e.g. a 1-7 scale).
    """
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    counts, values = value_counts_matrix(pairable)
    if len(values) < 2:
        return None  # one value everywhere: no disagreement is possible, α is undefined
    domain = values if level == "nominal" else [float(v) for v in values]
    return float(krippendorff.alpha(value_counts=counts, value_domain=domain, level_of_measurement=level))


def raw_agreement(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Share of agreeing pairs among all pairs of values within a unit (units with ≥ 2 values)."""
    agree = total = 0
    for unit in units:
        for x, y in combinations(unit, 2):
            total += 1
            agree += x == y
    return agree / total if total else None


def pairwise_kappas(by_annotator: dict[str, dict[Hashable, Hashable]], min_shared: int = 1) -> dict[str, dict]:
    """Cohen's κ per annotator pair over the units both labeled: {"A|B": {"kappa", "n"}} (names sorted)."""
    out = {}
    for a, b in combinations(sorted(by_annotator), 2):
        shared = by_annotator[a].keys() & by_annotator[b].keys()
        if len(shared) < min_shared or not shared:
            continue
        order = sorted(shared, key=str)
        out[f"{a}|{b}"] = {
            "kappa": cohen_kappa([by_annotator[a][u] for u in order], [by_annotator[b][u] for u in order]),
            "n": len(order),
        }
    return out


# --- proportions and intervals ----------------------------------------------------------------


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; n may be an effective (fractional) sample size."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def proportion(successes: int, n: int) -> dict:
    """{"estimate", "low", "high", "n"}: a share with its Wilson interval (None when n is 0)."""
    interval = wilson_interval(successes, n)
    return {
        "estimate": successes / n if n else None,
        "low": interval[0] if interval else None,
        "high": interval[1] if interval else None,
        "n": n,
    }


def ipw_proportion(y: np.ndarray, probability: np.ndarray) -> dict:
    """Hájek (self-normalised) inverse-probability-weighted share of y over units sampled with these
    inclusion probabilities, with a Wilson interval at Kish's effective sample size."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(probability, dtype=float)
    if y.shape != p.shape:
        raise ValueError("one inclusion probability per unit")
    keep = p > 0
    y, p = y[keep], p[keep]
    if len(y) == 0:
        return {"estimate": None, "low": None, "high": None, "n": 0, "n_eff": 0.0}
    w = 1.0 / p
    estimate = float((w * y).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w * w).sum())
    low, high = wilson_interval(estimate * n_eff, n_eff)
    return {"estimate": estimate, "low": low, "high": high, "n": len(y), "n_eff": n_eff}


def shares(values: Iterable[Hashable]) -> dict:
    """{value: share of all values}."""
    counts = Counter(values)
    total = sum(counts.values())
    return {v: c / total for v, c in counts.items()} if total else {}


# --- detectors against a reference ---------------------------------------------------------


def confusion_rates(predicted: Sequence[bool], actual: Sequence[bool]) -> dict:
    """False-positive and false-negative rates, precision and recall of a binary detector.

    fpr = FP / (FP + TN), fnr = FN / (FN + TP), precision = TP / (TP + FP), recall = 1 − fnr;
    a rate whose denominator is 0 is None. `n` counts the units compared.
    """
    pred = np.asarray(predicted, dtype=bool)
    act = np.asarray(actual, dtype=bool)
    if pred.shape != act.shape:
        raise ValueError("one prediction per reference answer")
    tp = int((pred & act).sum())
    fp = int((pred & ~act).sum())
    fn = int((~pred & act).sum())
    tn = int((~pred & ~act).sum())

    def ratio(a, b):
        return a / b if b else None

    return {
        "fpr": ratio(fp, fp + tn),
        "fnr": ratio(fn, fn + tp),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "n": int(pred.size),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def one_vs_rest(predicted: Sequence[Hashable], actual: Sequence[Hashable], options: Iterable[Hashable]) -> dict:
    """confusion_rates for each option as the positive class against all others."""
    return {
        option: confusion_rates([p == option for p in predicted], [a == option for a in actual]) for option in options
    }


# --- pairwise outcomes ----------------------------------------------------------------------


def position_bias(left_chosen: int, decisive: int) -> dict:
    """Share of decisive (non-tie) pairwise choices that went to the left-hand response; 0.5 is unbiased."""
    return proportion(left_chosen, decisive)


def _bt_counts(winners, losers, n_models: int, ties, weight=None) -> tuple[np.ndarray, np.ndarray]:
    """Win totals (a tie half to each side) and the symmetric games matrix of comparisons."""
    weight = np.ones(len(winners)) if weight is None else np.asarray(weight, dtype=float)
    wins = np.zeros(n_models)
    games = np.zeros((n_models, n_models))
    np.add.at(wins, winners, np.where(ties, 0.5, 1.0) * weight)
    np.add.at(wins, losers, np.where(ties, 0.5, 0.0) * weight)
    np.add.at(games, (winners, losers), weight)
    return wins, games + games.T


def _bt_fit(wins, games, prior: float, iterations: int, tol: float, start=None) -> np.ndarray:
    """Maximise the Bradley-Terry log-likelihood (plus the prior) by damped Newton steps on
    log-strengths; returns strengths p = exp(θ).

    The objective is concave, so Newton converges in a handful of steps even where the games
    graph is weakly connected (where the classic MM iteration crawls).
    """
    n_models = len(wins)
    theta = np.zeros(n_models) if start is None else np.log(start)
    for _ in range(iterations):
        s = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))  # p(i beats j)
        grad = wins - (games * s).sum(axis=1)
        curv = games * s * (1.0 - s)
        hess = curv - np.diag(curv.sum(axis=1))
        if prior:
            sig = 1.0 / (1.0 + np.exp(-theta))
            grad += prior * (1.0 - 2.0 * sig)
            hess -= np.diag(2.0 * prior * sig * (1.0 - sig))
        step = np.linalg.lstsq(hess, -grad, rcond=None)[0]
        largest = np.max(np.abs(step)) if n_models else 0.0
        if largest > 2.0:
            step *= 2.0 / largest
        theta = theta + step
        if not prior:
            theta -= theta.mean()  # the likelihood alone fixes strengths up to a shift
        if largest < tol:
            break
    return np.exp(theta)


def _centred_log(p: np.ndarray) -> np.ndarray:
    log_p = np.log(p)
    return log_p - log_p.mean()


def bradley_terry(
    winners: np.ndarray,
    losers: np.ndarray,
    n_models: int,
    *,
    ties: np.ndarray | None = None,
    prior: float = 1.0,
    iterations: int = 100,
    tol: float = 1e-12,
) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) from comparisons, by maximum (penalised) likelihood.

    `winners[k]` beat `losers[k]`; where `ties[k]` is true the comparison counts half a win to
    each side. `prior` adds that many virtual wins and losses of each model against a virtual
    opponent of strength 1, so a model that never lost keeps a finite strength (0: plain MLE).
    """
    winners = np.asarray(winners, dtype=int)
    losers = np.asarray(losers, dtype=int)
    tie = np.zeros(len(winners), dtype=bool) if ties is None else np.asarray(ties, dtype=bool)
    wins, games = _bt_counts(winners, losers, n_models, tie)
    return _centred_log(_bt_fit(wins, games, prior, iterations, tol))


def bradley_terry_intervals(
    winners: np.ndarray,
    losers: np.ndarray,
    n_models: int,
    rng: np.random.Generator,
    *,
    ties: np.ndarray | None = None,
    prior: float = 1.0,
    rounds: int = 200,
    level: float = 0.95,
) -> dict:
    """Strengths with percentile bootstrap intervals (comparisons resampled with replacement).

    Resampling n comparisons with replacement draws each distinct outcome (winner, loser, tie)
    a multinomial number of times, so each round refits on a few aggregated counts, starting
    from the full-data solution.
    """
    winners = np.asarray(winners, dtype=int)
    losers = np.asarray(losers, dtype=int)
    ties = np.zeros(len(winners), dtype=bool) if ties is None else np.asarray(ties, dtype=bool)
    wins, games = _bt_counts(winners, losers, n_models, ties)
    p = _bt_fit(wins, games, prior, 100, 1e-12)
    strength = _centred_log(p)
    n = len(winners)
    if n == 0:
        return {"strength": strength, "low": strength.copy(), "high": strength.copy()}
    outcomes, counts = np.unique(np.stack([winners, losers, ties.astype(int)], axis=1), axis=0, return_counts=True)
    samples = np.empty((rounds, n_models))
    for r in range(rounds):
        weight = rng.multinomial(n, counts / n)
        w, g = _bt_counts(outcomes[:, 0], outcomes[:, 1], n_models, outcomes[:, 2].astype(bool), weight)
        samples[r] = _centred_log(_bt_fit(w, g, prior, 50, 1e-9, start=p))
    tail = (1 - level) / 2
    return {
        "strength": strength,
        "low": np.quantile(samples, tail, axis=0),
        "high": np.quantile(samples, 1 - tail, axis=0),
    }


# --- labelers, throughput, calibration, distributions ---------------------------------------


def overturn_rate(pairs: Iterable[tuple[Hashable, Hashable]]) -> dict:
    """Share of a labeler's answers that the lead's adjudicated answer contradicts: pairs (labeler, lead)."""
    pairs = list(pairs)
    overturned = sum(1 for mine, final in pairs if mine != final)
    return {**proportion(overturned, len(pairs)), "overturned": overturned}


def throughput(timestamps: np.ndarray, start: float, end: float, bucket_seconds: float = 86400.0) -> dict:
    """Counts per bucket of [start, end) (POSIX seconds) and the mean rate per bucket."""
    ts = np.asarray(timestamps, dtype=float)
    n_buckets = max(1, int(np.ceil((end - start) / bucket_seconds)))
    inside = ts[(ts >= start) & (ts < end)]
    counts = np.bincount(((inside - start) // bucket_seconds).astype(int), minlength=n_buckets)[:n_buckets]
    return {"counts": counts.astype(int).tolist(), "per_bucket": float(counts.mean()), "total": int(counts.sum())}


def time_per_judgment(milliseconds: Iterable[float]) -> dict:
    """Median and mean seconds per judgment (None without timings)."""
    ms = np.asarray([m for m in milliseconds if m is not None], dtype=float)
    if ms.size == 0:
        return {"median_s": None, "mean_s": None, "n": 0}
    return {"median_s": float(np.median(ms) / 1000), "mean_s": float(ms.mean() / 1000), "n": int(ms.size)}


def calibration(probability: np.ndarray, outcome: np.ndarray, bins: int = 10) -> dict:
    """Reliability table (equal-width bins of predicted probability), expected calibration error and Brier score."""
    p = np.asarray(probability, dtype=float)
    y = np.asarray(outcome, dtype=float)
    if p.size == 0:
        return {"bins": [], "ece": None, "brier": None, "n": 0}
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if not count:
            continue
        predicted, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += count / p.size * abs(predicted - observed)
        rows.append({"low": b / bins, "high": (b + 1) / bins, "predicted": predicted, "observed": observed, "n": count})
    return {"bins": rows, "ece": float(ece), "brier": float(((p - y) ** 2).mean()), "n": int(p.size)}


def histogram(values: np.ndarray, bins: int = 20, value_range: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Counts per equal-width bin over value_range (values outside are clipped into the end bins)."""
    v = np.clip(np.asarray(values, dtype=float), value_range[0], value_range[1])
    counts, edges = np.histogram(v, bins=bins, range=value_range)
    return {"counts": counts.astype(int).tolist(), "edges": [float(e) for e in edges]}


def summary(values: np.ndarray) -> dict:
    """n, mean and quartiles (None when empty)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "p25": None, "median": None, "p75": None}
    q = np.quantile(v, [0.25, 0.5, 0.75])
    return {"n": int(v.size), "mean": float(v.mean()), "p25": float(q[0]), "median": float(q[1]), "p75": float(q[2])}
