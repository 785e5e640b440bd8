"""Diversity d_i = min_j (1 − cos(e_i, e_j)) against labeled (and already picked) items."""

import numpy as np

CHUNK = 8192


def min_cosine_distance(embeddings: np.ndarray, references: np.ndarray) -> np.ndarray:
    """For unit rows: min over references of (1 − cos), clipped to [0, 1]; 1 with no references."""
    n = len(embeddings)
    if len(references) == 0:
        return np.ones(n, dtype=np.float64)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, CHUNK):
        sims = embeddings[start : start + CHUNK] @ references.T
        out[start : start + CHUNK] = 1.0 - sims.max(axis=1)
    return np.clip(out, 0.0, 1.0)


def representatives(embeddings: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` reference rows: all of them, or a uniform sample (bounded cost per run)."""
    if len(embeddings) <= limit:
        return embeddings
    return embeddings[np.sort(rng.choice(len(embeddings), size=limit, replace=False))]


def greedy_farthest_first(
    base: np.ndarray, lambda_div: float, diversity: np.ndarray, embeddings: np.ndarray, picks: int, after_pick=None
) -> tuple[np.ndarray, np.ndarray]:
    """Pick `picks` rows maximizing base + λ_div·d, updating d after each pick.

    `base` is λ_risk·r + λ_unc·h. Returns the picked indices in order and each pick's d at
    the moment it was picked, so near-duplicates of an earlier pick lose their diversity bonus.
    `after_pick(i)`, when given, returns the new base after row i was picked (Fisher mode: a
    pick lowers the information of pairs like it).
    """
    d = diversity.astype(np.float64).copy()
    chosen = np.zeros(len(base), dtype=bool)
    order, d_at_pick = [], []
    for _ in range(min(picks, len(base))):
        score = np.where(chosen, -np.inf, base + lambda_div * d)
        i = int(np.argmax(score))
        order.append(i)
        d_at_pick.append(d[i])
        chosen[i] = True
        d = np.minimum(d, np.clip(1.0 - embeddings @ embeddings[i], 0.0, 1.0))
        if after_pick is not None:
            base = after_pick(i)
    return np.array(order, dtype=np.int64), np.array(d_at_pick)
