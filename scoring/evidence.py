"""Automated labels as evidence: each labeler's measured confusion, and a posterior per target.

An automated labeler (an LLM judge, a guardrail classifier, a string matcher) answers some
criterion for some targets (a response, or an item's pair). Where people have since decided
the final answer, its labels are checked against it: for each (criterion, labeler, confidence
bin) a confusion matrix `C[v, l] = P(label l | truth v)` is estimated (`fit`: semi-supervised
EM, decided targets with their answer, the others with their posterior), smoothed toward a prior
that trusts the labeler moderately (PRIOR_ACCURACY) and, per confidence bin, toward the
labeler's own overall matrix. For a target that people have not decided, the posterior over its
value is then (a supervised Dawid-Skene model)

    P(v | labels) ∝ π(v) · Π_labels C_label[v, l]

with π the criterion's class prior. Two labelers that disagree leave the posterior split; a
low-confidence label or a labeler with a measured error rate moves it less; with no final
answers yet, the priors and the labelers' agreement with each other apply (cold start).
"""

from dataclasses import dataclass, field

import numpy as np

N_BINS = 3  # confidence in [0, 1/3), [1/3, 2/3), [2/3, 1]
NO_CONFIDENCE = N_BINS  # the bin of labels that carry no confidence
# Prior accuracy of a labeler per bin (low, middle, high confidence, none), before any check.
PRIOR_ACCURACY = (0.55, 0.7, 0.85, 0.7)
PRIOR_STRENGTH = 4.0  # pseudo-labels per truth row behind that prior
SHRINK_STRENGTH = 4.0  # pseudo-labels per truth row pulling a bin toward its labeler's overall matrix
_SOURCE_BITS = 40


def confidence_bin(confidence: np.ndarray) -> np.ndarray:
    """Bin index per label: NO_CONFIDENCE for NaN, else floor(3·c) clipped to 0..2."""
    confidence = np.asarray(confidence, dtype=np.float64)
    bins = np.full(len(confidence), NO_CONFIDENCE, dtype=np.int64)
    known = ~np.isnan(confidence)
    bins[known] = np.clip(np.floor(confidence[known] * N_BINS), 0, N_BINS - 1).astype(np.int64)
    return bins


def prior_matrix(m: int, accuracy: float) -> np.ndarray:
    """Row-stochastic m×m matrix with `accuracy` on the diagonal, the rest spread evenly."""
    if m == 1:
        return np.ones((1, 1))
    out = np.full((m, m), (1.0 - accuracy) / (m - 1))
    np.fill_diagonal(out, accuracy)
    return out


@dataclass
class Labels:
    """Automated labels, one row each: target index, criterion index, source (labeler) id, value index, confidence."""

    target: np.ndarray
    criterion: np.ndarray
    source: np.ndarray
    value: np.ndarray
    confidence: np.ndarray

    @classmethod
    def empty(cls) -> "Labels":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, np.zeros(0))

    @classmethod
    def of(cls, rows) -> "Labels":
        """From (target, criterion, source, value, confidence or None) tuples."""
        rows = list(rows)
        if not rows:
            return cls.empty()
        t, c, s, v, conf = zip(*rows, strict=True)
        return cls(
            np.array(t, dtype=np.int64),
            np.array(c, dtype=np.int64),
            np.array(s, dtype=np.int64),
            np.array(v, dtype=np.int64),
            np.array([np.nan if x is None else x for x in conf], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.target)

    def take(self, mask: np.ndarray) -> "Labels":
        return Labels(
            self.target[mask], self.criterion[mask], self.source[mask], self.value[mask], self.confidence[mask]
        )


def _key(criterion: np.ndarray, source: np.ndarray, bins: np.ndarray) -> np.ndarray:
    return (criterion.astype(np.int64) * (N_BINS + 1) + bins) * (1 << _SOURCE_BITS) + source.astype(np.int64)


@dataclass
class Confusions:
    """Measured confusions per (criterion, labeler, bin), as logs, and the class priors."""

    n_values: np.ndarray  # options per criterion
    log_prior: np.ndarray  # (C, M) log π; −inf past a criterion's options
    keys: np.ndarray  # sorted label keys that have a fitted matrix
    log_matrices: np.ndarray  # (K, M, M) log C[v, l] for those keys
    log_defaults: np.ndarray  # (C, N_BINS + 1, M, M) the prior matrices, for labelers never checked
    checked: dict = field(default_factory=dict)  # (criterion, source) -> (labels checked, correct)

    @property
    def width(self) -> int:
        return self.log_prior.shape[1]

    def label_log_likelihood(self, labels: Labels) -> np.ndarray:
        """(L, M): log P(this label | truth v) for every v."""
        bins = confidence_bin(labels.confidence)
        keys = _key(labels.criterion, labels.source, bins)
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(len(self.keys) - 1, 0))
        fitted = (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), dtype=bool)
        out = self.log_defaults[labels.criterion, bins, :, labels.value]
        if fitted.any():
            out[fitted] = self.log_matrices[pos[fitted], :, labels.value[fitted]]
        return out

    def posterior(self, target_criterion: np.ndarray, labels: Labels) -> tuple[np.ndarray, np.ndarray]:
        """(T, M) posterior over each target's value, and (T,) the number of labels behind it."""
        logp = self.log_prior[target_criterion].copy()
        if len(labels):
            np.add.at(logp, labels.target, self.label_log_likelihood(labels))
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        p /= p.sum(axis=1, keepdims=True)
        return p, np.bincount(labels.target, minlength=len(target_criterion))

    def describe(self, names: dict | None = None) -> list[dict]:
        """Measured accuracy of every checked (criterion, labeler): the figures behind the matrices."""
        names = names or {}
        return [
            {
                "criterion": int(c),
                "source": names.get(s, int(s)),
                "checked": n,
                "accuracy": round(correct / n, 4) if n else None,
            }
            for (c, s), (n, correct) in sorted(self.checked.items())
        ]

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        checked = np.array([(c, s, n, k) for (c, s), (n, k) in self.checked.items()], dtype=np.int64).reshape(-1, 4)
        return {
            f"{prefix}n_values": self.n_values,
            f"{prefix}log_prior": self.log_prior,
            f"{prefix}keys": self.keys,
            f"{prefix}log_matrices": self.log_matrices,
            f"{prefix}log_defaults": self.log_defaults,
            f"{prefix}checked": checked,
        }

    @classmethod
    def from_arrays(cls, data, prefix: str) -> "Confusions":
        checked = {(int(c), int(s)): (int(n), int(k)) for c, s, n, k in data[f"{prefix}checked"]}
        return cls(
            data[f"{prefix}n_values"],
            data[f"{prefix}log_prior"],
            data[f"{prefix}keys"],
            data[f"{prefix}log_matrices"],
            data[f"{prefix}log_defaults"],
            checked,
        )


EM_ITERATIONS = 8


def fit(
    n_values: list[int],
    labels: Labels,
    target_criterion: np.ndarray,
    target_truth: np.ndarray,
    iterations: int = EM_ITERATIONS,
) -> Confusions:
    """Each labeler's confusions, by semi-supervised EM over every labeled target.

    Targets whose final answer is known (`target_truth` ≥ 0) count with that answer; the others
    with their current posterior (E-step), and the matrices and class priors are recounted from
    both (M-step). Counting only the decided targets would be biased whenever what people were
    asked depended on the labels themselves (utility picks the targets where labelers disagree,
    where each is right half the time): the labels of all targets are observed, so using them
    all keeps the estimate honest under that selection.
    """
    n_values = np.asarray(n_values, dtype=np.int64)
    target_criterion = np.asarray(target_criterion, dtype=np.int64)
    target_truth = np.asarray(target_truth, dtype=np.int64)
    n_crit, width = len(n_values), int(max(n_values.max(initial=1), 1))
    valid = np.arange(width)[None, :] < n_values[:, None]
    defaults = np.zeros((n_crit, N_BINS + 1, width, width))
    for c, m in enumerate(n_values):
        for b in range(N_BINS + 1):
            defaults[c, b, :m, :m] = prior_matrix(int(m), PRIOR_ACCURACY[b])

    bins = confidence_bin(labels.confidence)
    label_keys = _key(labels.criterion, labels.source, bins)
    keys, key_index = np.unique(label_keys, return_inverse=True)
    key_crit = keys // (1 << _SOURCE_BITS) // (N_BINS + 1)
    key_bin = keys // (1 << _SOURCE_BITS) % (N_BINS + 1)
    key_source = keys % (1 << _SOURCE_BITS)
    pairs, pair_index = np.unique(np.stack([key_crit, key_source], axis=1), axis=0, return_inverse=True)
    pair_index = pair_index.reshape(-1)

    known = target_truth >= 0
    clamp = np.zeros((len(target_truth), width))
    clamp[np.flatnonzero(known), target_truth[known]] = 1.0
    # Targets that neither a label nor a final answer speaks to tell nothing: leave them out of π.
    spoken = known.copy()
    spoken[labels.target] = True

    # Start from the priors' posterior (a soft majority vote), not from the decided targets alone:
    # begun from a biased sample of decided targets, EM can settle where the labelers look like
    # coin flips and then flip the answers they agree on.
    uniform = np.where(valid, 0.0, -np.inf)
    start = Confusions(n_values, uniform, np.zeros(0, dtype=np.int64), np.zeros((0, width, width)), _log_rows(defaults))
    post, _ = start.posterior(target_criterion, labels)
    post[known] = clamp[known]
    confusions = None
    for step in range(iterations + 1):
        weights = post[labels.target]  # (L, M): P(truth = v) behind each label
        counts = np.zeros((len(keys), width, width))
        np.add.at(counts, (key_index[:, None], np.arange(width)[None, :], labels.value[:, None]), weights)
        pair_counts = np.zeros((len(pairs), width, width))
        np.add.at(pair_counts, pair_index, counts)
        # Each bin shrinks toward its labeler's overall counts under the bin's own prior accuracy.
        overall = pair_counts[pair_index] + PRIOR_STRENGTH * defaults[key_crit, key_bin]
        overall /= np.maximum(overall.sum(axis=2, keepdims=True), 1e-12)
        matrices = counts + SHRINK_STRENGTH * overall
        class_counts = np.zeros((n_crit, width))
        np.add.at(class_counts, target_criterion[spoken], post[spoken])
        with np.errstate(divide="ignore"):
            log_prior = np.where(valid, np.log(np.where(valid, class_counts + 1.0, 1.0)), -np.inf)
        log_prior -= np.log(np.sum(np.where(valid, class_counts + 1.0, 0.0), axis=1, keepdims=True))
        confusions = Confusions(
            n_values=n_values,
            log_prior=log_prior,
            keys=keys,
            log_matrices=_log_rows(np.where(valid[key_crit][:, :, None] & valid[key_crit][:, None, :], matrices, 0.0)),
            log_defaults=_log_rows(defaults),
        )
        if step == iterations or not len(labels):
            break
        post, _ = confusions.posterior(target_criterion, labels)
        post[known] = clamp[known]
    # What the matrices rest on: each labeler's labels on decided targets, and how many were right.
    checked = {}
    on_known = known[labels.target]
    for c, s in pairs.tolist() if len(pairs) else []:
        mine = on_known & (labels.criterion == c) & (labels.source == s)
        right = labels.value[mine] == target_truth[labels.target[mine]]
        checked[(int(c), int(s))] = (int(mine.sum()), int(right.sum()))
    confusions.checked = checked
    return confusions


def _log_rows(matrices: np.ndarray) -> np.ndarray:
    """Normalize each row of the last two axes and take logs; all-zero (padding) rows become 0."""
    sums = matrices.sum(axis=-1, keepdims=True)
    p = np.divide(matrices, sums, out=np.zeros_like(matrices), where=sums > 0)
    with np.errstate(divide="ignore"):
        logs = np.log(p)
    return np.where(sums > 0, logs, 0.0)


def normalized_entropy(p: np.ndarray, n_values: np.ndarray) -> np.ndarray:
    """H(p) / log2(m) per row, in [0, 1]; 0 for a one-option criterion."""
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.nansum(np.where(p > 0, p * np.log2(p), 0.0), axis=-1)
    scale = np.log2(np.maximum(n_values, 2))
    return np.clip(h / scale, 0.0, 1.0) * (n_values > 1)
