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
    slots: int | None,
    weights: Weights,
    audit_share: float,
    rng: np.random.Generator,
    greedy_picks: int = GREEDY_PICKS,
) -> Selection:
    """Choose up to `slots` eligible items (None = no budget cap: all of them).

    (1 − ε) of the slots go to the highest utility, greedily diversified; ε to a uniform
    random sample of the eligible items not chosen by utility. Each selected item records
    the probability with which it was selected: 1 for a utility pick, n_audit / N_rest for
    an audit pick, so that pool-level rates can be estimated by inverse-probability weighting.
    """
    n = len(r)
    rank = np.full(n, -1, dtype=np.int64)
    audit = np.zeros(n, dtype=bool)
    probability = np.zeros(n, dtype=np.float64)
    d = d.astype(np.float64).copy()
    pool = np.flatnonzero(eligible)
    if slots is None or slots >= len(pool):
        slots = len(pool)
    if slots <= 0:
        return Selection(rank, audit, probability, d)
    n_audit = round(audit_share * slots) if slots < len(pool) else 0
    n_util = slots - n_audit

    base = weights.risk * r + weights.uncertainty * h
    u = base + weights.diversity * d
    by_utility = pool[np.argsort(-u[pool], kind="stable")]
    greedy_n = min(n_util, greedy_picks)
    candidates = by_utility[: max(greedy_n * CANDIDATE_FACTOR, greedy_n)]
    order, d_at_pick = greedy_farthest_first(
        base[candidates], weights.diversity, d[candidates], embeddings[candidates], greedy_n
    )
    greedy = candidates[order]
    d[greedy] = d_at_pick
    picked = set(greedy.tolist())
    rest = [i for i in by_utility if i not in picked][: n_util - greedy_n]
    utility_picks = np.concatenate([greedy, np.array(rest, dtype=np.int64)])
    probability[utility_picks] = 1.0

    remaining = np.setdiff1d(pool, utility_picks, assume_unique=True)
    audit_picks = rng.choice(remaining, size=min(n_audit, len(remaining)), replace=False)
    audit[audit_picks] = True
    if len(remaining):
        probability[audit_picks] = len(audit_picks) / len(remaining)

    # Serve audit items spread evenly through the utility order, so the audit share is
    # spent alongside the budget rather than after it.
    serve = list(utility_picks)
    for j, item in enumerate(audit_picks):
        serve.insert(int((j + 1) * len(serve) / (len(audit_picks) + 1)), item)
    rank[np.array(serve, dtype=np.int64)] = np.arange(len(serve))
    return Selection(rank, audit, probability, d)
