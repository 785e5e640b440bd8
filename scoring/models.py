"""The learned parts of a scoring run: risk classifier, Bradley-Terry reward model, tie model.

All are L2-regularized logistic models (scikit-learn's lbfgs), returned as plain arrays.
The reward model picks its feature blocks by cross-validation (`train_bradley_terry`), so a
set whose preference is mostly length keeps a length-only model and a set whose preference
depends on the prompt's kind uses the interaction blocks.
"""

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

MIN_LABELS = 20  # fewer examples than this: the model is not trained (reason recorded)
MIN_TIE_CLASS = 10  # the tie model needs this many decided pairs and this many ties
HELD_OUT_SHARE = 0.2
KAPPA = 2.0
RISK_C = 1.0
TIE_C = 1.0
# The reward model's candidates: feature blocks and L2 strength; cross-validated log-loss picks one.
REWARD_CANDIDATES = (
    (("length", "evidence"), 1.0),
    (("length", "structure", "evidence"), 1.0),
    (("length", "evidence", "semantic"), 0.3),
    (("length", "evidence", "interaction"), 0.3),
    (("length", "structure", "evidence", "semantic", "interaction"), 0.3),
)
CV_FOLDS = 4
CV_MAX_PAIRS = 2000  # model selection looks at a sample of at most this many pairs
# Post-stratification: a training pair's weight is its stratum's pool share over its training
# share, kept within [1/cap, cap] so that one pair of a rare stratum cannot carry the fit.
STRATUM_WEIGHT_CAP = 5.0


@dataclass
class Linear:
    """A trained logistic model as plain arrays; `None` weights mean 'not trained'."""

    weights: np.ndarray | None = None
    bias: float = 0.0
    trained_on: int = 0
    held_out_accuracy: float | None = None
    skipped: str = ""
    info: dict = field(default_factory=dict)
    # The L2 penalty the weights were fitted under (1/C), for the Fisher information.
    penalty: float = 1.0

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def predict(self, X: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """P(y = 1), with a fixed per-row log-odds `offset` if the model was fitted with one;
        callers decide what an untrained model means."""
        z = X @ self.weights + self.bias
        return sigmoid(z if offset is None else z + offset)

    def describe(self) -> dict:
        return {
            "trained": self.trained,
            "trained_on": self.trained_on,
            "held_out_accuracy": self.held_out_accuracy,
            "skipped": self.skipped,
            **self.info,
        }


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def _fit(X, y, *, intercept: bool, C: float, weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    # Newton steps on the Cholesky factor: a few iterations for a few hundred features, where
    # lbfgs took hundreds on the scaled interaction blocks.
    model = LogisticRegression(C=C, fit_intercept=intercept, solver="newton-cholesky", max_iter=100)
    model.fit(X, y, sample_weight=weight)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0]) if intercept else 0.0


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_test = max(1, round(HELD_OUT_SHARE * n))
    return order[:n_test], order[n_test:]


def fit_with_offset(X: np.ndarray, y: np.ndarray, offset: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """L2 logistic regression (intercept unpenalized) on top of a fixed log-odds `offset` per row:
    the model learns corrections to a prior, and with few examples the corrections stay small.
    Newton's method with step halving (scikit-learn has no offsets)."""
    n, d = X.shape
    Xa = np.hstack([X, np.ones((n, 1))])
    penalty = np.full(d + 1, 1.0 / C)
    penalty[-1] = 0.0
    w = np.zeros(d + 1)

    def loss(w):
        z = Xa @ w + offset
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * np.sum(penalty * w * w))

    current = loss(w)
    for _ in range(50):
        p = sigmoid(Xa @ w + offset)
        grad = Xa.T @ (p - y) + penalty * w
        hess = (Xa * (p * (1 - p))[:, None]).T @ Xa + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-4:
            trial = loss(w - scale * step)
            if trial <= current:
                break
            scale /= 2
        w, previous, current = w - scale * step, current, trial
        if previous - current < 1e-9 * max(1.0, abs(current)):
            break
    return w[:-1], float(w[-1])


def train_risk(
    X: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, offset: np.ndarray | None = None, held_out: bool = True
) -> Linear:
    """Logistic regression for P(risk event | item features) on top of the automated labels'
    log-odds (`offset`), with held-out accuracy."""
    n, positives = len(y), int(np.sum(y))
    if n < MIN_LABELS:
        return Linear(skipped=f"{n} resolved items, fewer than {MIN_LABELS}", trained_on=n)
    if positives in (0, n):
        return Linear(skipped=f"all {n} resolved items are {'positive' if positives else 'negative'}", trained_on=n)
    offset = np.zeros(n) if offset is None else offset
    accuracy = None
    if held_out:
        test, train = _split(n, rng)
        if len(np.unique(y[train])) == 2:
            w, b = fit_with_offset(X[train], y[train], offset[train], RISK_C)
            accuracy = float(np.mean((sigmoid(X[test] @ w + b + offset[test]) >= 0.5) == (y[test] == 1)))
    w, b = fit_with_offset(X, y, offset, RISK_C)
    return Linear(w, b, trained_on=n, held_out_accuracy=accuracy, info={"positives": positives}, penalty=1 / RISK_C)


def train_tie(X: np.ndarray, decided: np.ndarray) -> Linear:
    """P(the pair has a preference, not a tie | symmetric pair features)."""
    n, n_decided = len(decided), int(np.sum(decided))
    if min(n_decided, n - n_decided) < MIN_TIE_CLASS:
        return Linear(
            skipped=f"{n_decided} decided pairs and {n - n_decided} ties; needs {MIN_TIE_CLASS} of each",
            trained_on=n,
            info={"decided_share": n_decided / n if n else None},
        )
    w, b = _fit(X, decided.astype(int), intercept=True, C=TIE_C)
    return Linear(w, b, trained_on=n, info={"decided_share": n_decided / n}, penalty=1 / TIE_C)


def _antisymmetric(X: np.ndarray, a_wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows re-oriented so that both classes appear (alternately): a pair and its mirror image
    have the same likelihood under an intercept-free antisymmetric model, so this is the
    mirrored fit at half the rows, and it never leaves one class only."""
    y = np.arange(len(a_wins)) % 2
    flip = y != a_wins
    return np.where(flip[:, None], -X, X), y


def pair_accuracy(p: np.ndarray, a_wins: np.ndarray) -> float:
    """Share of pairs whose preferred side `p` = P(A ≻ B) gets right; p = 0.5 exactly (nothing to
    say about the pair) counts half, as a coin flip would, rather than as a vote for A."""
    if len(p) == 0:
        return float("nan")
    right = np.where(p == 0.5, 0.5, (p > 0.5) == (np.asarray(a_wins) == 1))
    return float(np.mean(right))


def poststratification_weights(keys: np.ndarray, pool_keys: np.ndarray, pool_share: np.ndarray) -> np.ndarray:
    """Per training row: (its stratum's share of the pool) / (its share of the training rows),
    clipped to [1/STRATUM_WEIGHT_CAP, STRATUM_WEIGHT_CAP] and scaled to mean 1; a stratum the pool
    sample does not know keeps weight 1. Utility-chosen labels over-represent some kinds of item
    (risky ones first); weighted so, the fit answers for the pool, not for the labeled sample."""
    keys = np.asarray(keys, dtype=np.int64)
    if len(keys) == 0:
        return np.ones(0)
    train_keys, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    train_share = counts / len(keys)
    ratio = np.ones(len(train_keys))
    if len(pool_keys):
        pos = np.minimum(np.searchsorted(pool_keys, train_keys), len(pool_keys) - 1)
        known = pool_keys[pos] == train_keys
        ratio[known] = pool_share[pos[known]] / train_share[known]
    weight = np.clip(ratio, 1.0 / STRATUM_WEIGHT_CAP, STRATUM_WEIGHT_CAP)[inverse.reshape(-1)]
    return weight / weight.mean()


def _pair_log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def train_bradley_terry(
    X: np.ndarray,
    a_wins: np.ndarray,
    rng: np.random.Generator,
    blocks: dict[str, np.ndarray] | None = None,
    *,
    held_out: bool = True,
    weight: np.ndarray | None = None,
) -> Linear:
    """P(A ≻ B) = σ(w·x), x antisymmetric pair features, fitted on decided (non-tie) pairs.

    `blocks` names column masks of X; of the candidates in REWARD_CANDIDATES, the simplest whose
    cross-validated log-loss is within one standard error of the best is fitted (columns outside
    its blocks get weight 0). Without blocks every column is used. `weight` (mean 1) weighs the
    pairs in every fit and in the cross-validated loss.
    """
    n = len(a_wins)
    if n < MIN_LABELS:
        return Linear(skipped=f"{n} decided pairs, fewer than {MIN_LABELS}", trained_on=n)
    Xo, y = _antisymmetric(X, np.asarray(a_wins, dtype=int))
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    candidates = _candidates(X.shape[1], blocks)
    chosen, losses = candidates[0], {}
    if len(candidates) > 1:
        sample = rng.permutation(n)[:CV_MAX_PAIRS]
        folds = np.arange(len(sample)) % CV_FOLDS
        per_pair = {}
        for name, mask, C in candidates:
            p = np.zeros(len(sample))
            for f in range(CV_FOLDS):
                test, train = sample[folds == f], sample[folds != f]
                w, _ = _fit(Xo[train][:, mask], y[train], intercept=False, C=C, weight=weight[train])
                p[folds == f] = sigmoid(Xo[test][:, mask] @ w)
            per_pair[name] = _pair_log_loss(p, y[sample]) * weight[sample]
            losses[name] = round(float(per_pair[name].mean()), 4)
        # The one-standard-error rule: the simplest candidate (they are listed simplest first)
        # whose cross-validated loss is within one standard error of the best one's.
        best = min(per_pair, key=lambda k: per_pair[k].mean())
        bar = per_pair[best].mean() + per_pair[best].std() / np.sqrt(len(sample))
        chosen = next(c for c in candidates if per_pair[c[0]].mean() <= bar)
    name, mask, C = chosen
    accuracy = None
    if held_out:
        test, train = _split(n, rng)
        w, _ = _fit(Xo[train][:, mask], y[train], intercept=False, C=C, weight=weight[train])
        accuracy = pair_accuracy(sigmoid(Xo[test][:, mask] @ w), y[test])
    w_sub, _ = _fit(Xo[:, mask], y, intercept=False, C=C, weight=weight)
    weights = np.zeros(X.shape[1])
    weights[mask] = w_sub
    return Linear(
        weights,
        0.0,
        trained_on=n,
        held_out_accuracy=accuracy,
        info={
            "blocks": name,
            "cv_log_loss": losses,
            "pair_weights": [round(float(weight.min()), 3), round(float(weight.max()), 3)],
        },
        penalty=1 / C,
    )


def _candidates(width: int, blocks: dict[str, np.ndarray] | None) -> list[tuple[str, np.ndarray, float]]:
    if not blocks:
        return [("all", np.ones(width, dtype=bool), 1.0)]
    out = []
    for names, C in REWARD_CANDIDATES:
        if not all(b in blocks for b in names):
            continue
        mask = np.zeros(width, dtype=bool)
        for b in names:
            mask |= blocks[b]
        out.append(("+".join(names), mask, C))
    return out


def noisy_or(*terms: np.ndarray) -> np.ndarray:
    """r = 1 − Π(1 − term): any one source alone can make an item risky."""
    out = np.ones_like(np.asarray(terms[0], dtype=np.float64))
    for t in terms:
        out = out * (1.0 - t)
    return 1.0 - out


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in bits, with H(0) = H(1) = 0."""
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -p * np.log2(p) - (1 - p) * np.log2(1 - p)
    return np.nan_to_num(h, nan=0.0)


def posterior_mean(n_a: np.ndarray, n_b: np.ndarray, prior: np.ndarray, kappa: float = KAPPA) -> np.ndarray:
    """p̂ = (n_A + κ·p) / (n_A + n_B + κ); ties count half to each side."""
    return (n_a + kappa * prior) / (n_a + n_b + kappa)


def posterior_uncertainty(n_a: np.ndarray, n_b: np.ndarray, prior: np.ndarray, kappa: float = KAPPA) -> np.ndarray:
    """h = H(p̂) with p̂ = (n_A + κ·p) / (n_A + n_B + κ); ties count half to each side."""
    return binary_entropy(posterior_mean(n_a, n_b, prior, kappa))


# -- information-based uncertainty (D-optimal design for the Bradley-Terry model) ------------


def whitener(X_train: np.ndarray, p_train: np.ndarray, penalty: float) -> np.ndarray:
    """L⁻¹ with L·Lᵀ = A = penalty·I + Σ p(1−p)·x xᵀ over the training pairs (the Bradley-Terry
    model's Fisher information plus its prior): z = L⁻¹x gives z_i·z_j = x_iᵀ A⁻¹ x_j."""
    c = p_train * (1.0 - p_train)
    A = penalty * np.eye(X_train.shape[1]) + (X_train * c[:, None]).T @ X_train
    return np.linalg.inv(np.linalg.cholesky(A))


def information_gain(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Bits a vote on the pair tells about the weights: ½·log2(1 + p(1−p)·xᵀA⁻¹x), clipped to [0, 1]."""
    g = p * (1.0 - p) * np.einsum("ij,ij->i", z, z)
    return np.clip(0.5 * np.log2(1.0 + g), 0.0, 1.0)


def absorb(z: np.ndarray, j: int, p_j: float) -> np.ndarray:
    """Z after adding pair j to A (Sherman-Morrison in the whitened frame): every z_i loses part
    of its component along z_j, so the gains of pairs like j fall after j is picked."""
    zj = z[j].copy()
    norm2 = float(zj @ zj)
    if norm2 <= 0:
        return z
    c = p_j * (1.0 - p_j)
    shrink = 1.0 - 1.0 / np.sqrt(1.0 + c * norm2)
    unit = zj / np.sqrt(norm2)
    return z - shrink * np.outer(z @ unit, unit)
