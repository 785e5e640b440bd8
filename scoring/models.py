"""The risk classifier and the Bradley-Terry reward model, trained from resolved items."""

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression

MIN_LABELS = 20  # fewer resolved examples than this: the model is not trained (reason recorded)
HELD_OUT_SHARE = 0.2
KAPPA = 2.0


@dataclass
class Linear:
    """A trained logistic model as plain arrays; `None` weights mean 'not trained'."""

    weights: np.ndarray | None = None
    bias: float = 0.0
    trained_on: int = 0
    held_out_accuracy: float | None = None
    skipped: str = ""
    info: dict = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        return self.weights is not None

    def predict(self, X: np.ndarray) -> np.ndarray:
        """P(y = 1); callers decide what an untrained model means."""
        return sigmoid(X @ self.weights + self.bias)

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


def _fit(X, y, *, intercept: bool, C: float = 1.0) -> LogisticRegression:
    model = LogisticRegression(C=C, fit_intercept=intercept, max_iter=500)
    model.fit(X, y)
    return model


def _held_out(X, y, rng: np.random.Generator, fit, predict) -> float | None:
    """Accuracy on a random held-out share, with the model fitted on the rest."""
    n = len(y)
    order = rng.permutation(n)
    n_test = max(1, round(HELD_OUT_SHARE * n))
    test, train = order[:n_test], order[n_test:]
    if len(np.unique(y[train])) < 2:
        return None
    model = fit(X[train], y[train])
    return float(np.mean((predict(model, X[test]) >= 0.5) == (y[test] == 1)))


def train_risk(X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> Linear:
    """Logistic regression for P(risk event | item text), with held-out accuracy."""
    n, positives = len(y), int(np.sum(y))
    if n < MIN_LABELS:
        return Linear(skipped=f"{n} resolved items, fewer than {MIN_LABELS}", trained_on=n)
    if positives in (0, n):
        return Linear(skipped=f"all {n} resolved items are {'positive' if positives else 'negative'}", trained_on=n)

    def fit(Xs, ys):
        return _fit(Xs, ys, intercept=True)

    accuracy = _held_out(X, y, rng, fit, lambda m, Xs: m.predict_proba(Xs)[:, 1])
    model = fit(X, y)
    return Linear(
        model.coef_[0].astype(np.float64),
        float(model.intercept_[0]),
        trained_on=n,
        held_out_accuracy=accuracy,
        info={"positives": positives},
    )


def train_bradley_terry(diffs: np.ndarray, a_wins: np.ndarray, rng: np.random.Generator) -> Linear:
    """P(A ≻ B) = σ(w·(φ_A − φ_B)), fitted on decided (non-tie) pairs, mirrored so the model has no side bias."""
    n = len(a_wins)
    if n < MIN_LABELS:
        return Linear(skipped=f"{n} decided pairs, fewer than {MIN_LABELS}", trained_on=n)
    X = np.vstack([diffs, -diffs])
    y = np.concatenate([a_wins, 1 - a_wins]).astype(int)

    def fit(Xs, ys):
        return _fit(Xs, ys, intercept=False)

    def predict(model, Xs):
        return model.predict_proba(Xs)[:, 1]

    # Hold out pairs, not mirrored rows: both copies of a pair go to the same side.
    order = rng.permutation(n)
    n_test = max(1, round(HELD_OUT_SHARE * n))
    test, train = order[:n_test], order[n_test:]
    accuracy = None
    if len(np.unique(a_wins[train])) == 2:
        model = fit(np.vstack([diffs[train], -diffs[train]]), np.concatenate([a_wins[train], 1 - a_wins[train]]))
        accuracy = float(np.mean((predict(model, diffs[test]) >= 0.5) == (a_wins[test] == 1)))
    model = fit(X, y)
    return Linear(model.coef_[0].astype(np.float64), 0.0, trained_on=n, held_out_accuracy=accuracy)


def noisy_or(prior: np.ndarray, model: np.ndarray) -> np.ndarray:
    """r = 1 − (1 − prior)(1 − model): either source alone can make an item risky."""
    return 1.0 - (1.0 - prior) * (1.0 - model)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in bits, with H(0) = H(1) = 0."""
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -p * np.log2(p) - (1 - p) * np.log2(1 - p)
    return np.nan_to_num(h, nan=0.0)


def posterior_uncertainty(n_a: np.ndarray, n_b: np.ndarray, prior: np.ndarray, kappa: float = KAPPA) -> np.ndarray:
    """h = H(p̂) with p̂ = (n_A + κ·p) / (n_A + n_B + κ); ties count half to each side."""
    p_hat = (n_a + kappa * prior) / (n_a + n_b + kappa)
    return binary_entropy(p_hat)
