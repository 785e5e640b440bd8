"""The utility and the budgeted choice of the active set, with an audit share drawn at random."""

from dataclasses import dataclass

import numpy as np

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
class Selection:
    """The active set: `rank` (serving order, −1 = not selected), `audit`, `probability`, final `diversity`."""

    rank: np.ndarray
    audit: np.ndarray
    probability: np.ndarray
    diversity: np.ndarray

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
    candidates = fresh[: max(greedy_n * CANDIDATE_FACTOR, greedy_n)]
    order, d_at_pick = greedy_farthest_first(
        base[candidates], weights.diversity, d[candidates], embeddings[candidates], greedy_n
    )
    greedy = candidates[order]
    d[greedy] = d_at_pick
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
    return Selection(rank, audit, probability, d)


def _within_budget(ordered: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """The longest prefix of `ordered` whose summed cost fits the budget."""
    if len(ordered) == 0 or budget <= 0:
        return ordered[:0].astype(np.int64)
    fits = np.cumsum(cost[ordered]) <= budget
    return ordered[: int(np.argmin(fits)) if not fits.all() else len(ordered)].astype(np.int64)
