"""The utility and the budgeted choice of the active set, with an audit share drawn at random."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scoring import diversity, models
from scoring.diversity import greedy_farthest_first

# Greedy farthest-first runs on this many picks among the best `CANDIDATE_FACTOR` times as
# many items by utility; later picks follow the utility order (their d is against labeled items).
GREEDY_PICKS = 1000
CANDIDATE_FACTOR = 4


@dataclass(frozen=True)
class Weights:
    risk: float = 1.0
    uncertainty: float = 1.0
    diversity: float = 1.0


def utility(r: np.ndarray, h: np.ndarray, d: np.ndarray, w: Weights) -> np.ndarray:
    """u = λ_risk·r + λ_unc·h + λ_div·d."""
    return w.risk * r + w.uncertainty * h + w.diversity * d


@dataclass
class Fisher:
    """Fisher mode's parts of h (pipeline.Scores), so that each greedy pick can lower the
    information gain of the pairs like it: h = 1 − (1 − q·gain(z, p))·h_keep."""

    p: np.ndarray
    q: np.ndarray
    h_keep: np.ndarray
    whiten: Callable[[np.ndarray], np.ndarray]  # item indices -> their whitened pair features z


@dataclass
class Selection:
    """The active set: `rank` (serving order, −1 = not selected), `audit`, `probability`, and the
    final `diversity` and `uncertainty` (a greedy pick's values at the moment it was picked)."""

    rank: np.ndarray
    audit: np.ndarray
    probability: np.ndarray
    diversity: np.ndarray
    uncertainty: np.ndarray

    @property
    def selected(self) -> np.ndarray:
        return self.rank >= 0


def select_active(
    r: np.ndarray,
    h: np.ndarray,
    d: np.ndarray,
    embeddings: np.ndarray,
    eligible: np.ndarray,
    budget: float | None,
    cost: np.ndarray,
    in_progress: np.ndarray,
    weights: Weights,
    audit_share: float,
    rng: np.random.Generator,
    greedy_picks: int = GREEDY_PICKS,
    fisher: Fisher | None = None,
) -> Selection:
    """Choose the eligible items whose judgments the budget covers (None = no cap: all of them).

    `cost` is the judgments each item still needs (k minus those it has). Items `in_progress`
    (judged by some, not yet by k) come first, so that judgments spent on them are not wasted; of the rest, (1 − ε)
    of the remaining budget goes to the highest utility, greedily diversified, and ε to a
    uniform random sample of the items not chosen by utility. Each selected item records the
    probability with which it was selected: 1 for in-progress and utility picks, n_audit / N_rest
    for an audit pick, so that pool-level rates can be estimated by inverse-probability weighting.
    """
    n = len(r)
    rank = np.full(n, -1, dtype=np.int64)
    audit = np.zeros(n, dtype=bool)
    probability = np.zeros(n, dtype=np.float64)
    d = d.astype(np.float64).copy()
    base = weights.risk * r + weights.uncertainty * h
    u = base + weights.diversity * d
    pool = np.flatnonzero(eligible)
    by_utility = pool[np.argsort(-u[pool], kind="stable")]
    started = by_utility[in_progress[by_utility]]
    fresh = by_utility[~in_progress[by_utility]]
    remaining = np.inf if budget is None else float(budget)
    serve = _within_budget(started, cost, remaining)
    remaining -= cost[serve].sum()
    capped = budget is not None and remaining < cost[fresh].sum()
    audit_budget = round(audit_share * remaining) if capped else 0
    utility_budget = remaining - audit_budget

    greedy_n = min(len(fresh), greedy_picks)
    if np.isfinite(utility_budget):
        # No more greedy picks than the budget can pay for (at the cheapest items' cost).
        greedy_n = min(greedy_n, int(np.searchsorted(np.cumsum(np.sort(cost[fresh])), utility_budget, side="right")))
    candidates = fresh[: max(greedy_n * CANDIDATE_FACTOR, greedy_n)]
    h = h.astype(np.float64).copy()
    after_pick, h_now = None, None
    if fisher is not None and len(candidates):
        state = {"z": fisher.whiten(candidates)}
        p, q = fisher.p[candidates], fisher.q[candidates]
        h_keep, r_c = fisher.h_keep[candidates], r[candidates]
        h_now = h[candidates].copy()

        def after_pick(i):
            state["z"] = models.absorb(state["z"], i, float(p[i]))
            h_now[:] = 1.0 - (1.0 - q * models.information_gain(state["z"], p)) * h_keep
            return weights.risk * r_c + weights.uncertainty * h_now

    order, d_at_pick, h_at_pick = _greedy(
        base[candidates], weights.diversity, d[candidates], embeddings[candidates], greedy_n, after_pick, h_now
    )
    greedy = candidates[order]
    d[greedy] = d_at_pick
    if h_at_pick is not None:
        h[greedy] = h_at_pick
    rest = fresh[~np.isin(fresh, greedy)]
    utility_picks = _within_budget(np.concatenate([greedy, rest]), cost, utility_budget)
    probability[serve] = 1.0
    probability[utility_picks] = 1.0

    leftover = fresh[~np.isin(fresh, utility_picks)]
    audit_picks = _within_budget(rng.permutation(leftover), cost, audit_budget)
    audit[audit_picks] = True
    if len(leftover):
        probability[audit_picks] = len(audit_picks) / len(leftover)

    # Serve in-progress items first, then utility picks with the audit items spread evenly
    # through them, so the audit share is spent alongside the budget rather than after it.
    later = list(utility_picks)
    for j, item in enumerate(audit_picks):
        later.insert(int((j + 1) * len(later) / (len(audit_picks) + 1)), item)
    order_all = np.concatenate([serve, np.array(later, dtype=np.int64)]).astype(np.int64)
    rank[order_all] = np.arange(len(order_all))
    return Selection(rank, audit, probability, d, h)


def _greedy(base, lambda_div, d, embeddings, picks, after_pick, h_now):
    """greedy_farthest_first, also noting each pick's h when a Fisher update changes it."""
    if after_pick is None:
        order, d_at_pick = greedy_farthest_first(base, lambda_div, d, embeddings, picks)
        return order, d_at_pick, None
    h_at_pick = []

    def note(i):
        h_at_pick.append(float(h_now[i]))
        return after_pick(i)

    order, d_at_pick = greedy_farthest_first(base, lambda_div, d, embeddings, picks, note)
    return order, d_at_pick, np.array(h_at_pick)


def _within_budget(ordered: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """The longest prefix of `ordered` whose summed cost fits the budget."""
    if len(ordered) == 0 or budget <= 0:
        return ordered[:0].astype(np.int64)
    fits = np.cumsum(cost[ordered]) <= budget
    return ordered[: int(np.argmin(fits)) if not fits.all() else len(ordered)].astype(np.int64)


def choose(
    r: np.ndarray,
    h: np.ndarray,
    embeddings: np.ndarray,
    labeled: np.ndarray,
    eligible: np.ndarray,
    budget: float | None,
    cost: np.ndarray,
    in_progress: np.ndarray,
    weights: Weights,
    audit_share: float,
    rng: np.random.Generator,
    max_representatives: int,
    fisher: Fisher | None = None,
) -> Selection:
    """The whole choice a run (and the replay) makes: d against a bounded sample of the labeled
    items' embeddings, then `select_active`. The scoring job and the offline replay both call it."""
    refs = diversity.representatives(embeddings[labeled], max_representatives, rng)
    d = diversity.min_cosine_distance(embeddings, refs) if len(embeddings) else np.zeros(0)
    return select_active(
        r, h, d, embeddings, eligible, budget, cost, in_progress, weights, audit_share, rng, fisher=fisher
    )
