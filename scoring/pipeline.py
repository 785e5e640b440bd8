"""The scoring pipeline, pure numpy: from per-item arrays to r, h, d and their inputs.

The scoring run (`scoring/rescorer.py`, chunk by chunk from the database) and the offline replay
(`scoring/replay.py`, from a pool file) both call these functions, so what the replay measures
is what a run does. The steps:

1. `fit_basis`: the pool's mean text vector, a PCA basis of its texts (BASIS_DIM) and its most
   frequent tags; fixed for the run, so every chunk is featurized alike.
2. `featurize`: per item, the automated labels' posteriors (`scoring.evidence`), then the
   reward model's antisymmetric pair features, the tie model's symmetric ones, the risk
   model's, and the diversity embedding.
3. `train`: the three models, from what people decided (final answers).
4. `score`: r, h and the reward model's p per item (README "Scoring" has the formulas).

Tags are the pool's strata: the basis keeps the 8 most frequent partial tags and each tag
combination's share of the pool. The reward model weighs its training pairs so that each
combination counts as much as it does in the pool (utility labels risky items first, and
a model fitted to that sample answers for it, not for the pool), and it does not extrapolate
to a tag none of its pairs carries: there it says nothing (p from the automated judges, else
0.5), which also makes those items the most uncertain.
"""

import io
import json
from dataclasses import dataclass, field

import numpy as np

from scoring import evidence, features, models

BASIS_DIM = 32  # PCA components of the texts' semantic vectors
INTERACTION_DIM = 16  # of which the first this many interact with the tags
MAX_TAGS = 8  # most frequent tags (not carried by every item) that become features
TAG_WEIGHT = 1.0  # the tags' share of the diversity embedding, against the text's unit vector
EMBEDDING_DIM = features.SEMANTIC + MAX_TAGS  # the diversity embedding: text, then tags
RISK_OFFSET_CLIP = 0.02  # the automated risk log-odds are clipped to logit(0.02)..logit(0.98)
BASIS_SAMPLE = 5000  # items the basis is fitted on
UNCERTAINTY_MODES = ("entropy", "fisher")
PAIR = 0  # evidence criterion index of the pairwise criterion (values: 0 = A preferred, 1 = B)
A_SIDE, B_SIDE, ITEM_SIDE = 0, 1, 2


@dataclass(frozen=True)
class Criterion:
    """A choice criterion of the rubric, as the pipeline needs it."""

    slug: str
    values: tuple[str, ...]
    per_response: bool
    risk_values: frozenset = frozenset()


@dataclass
class Layout:
    """The targets every item has: its pair, then one slot per choice criterion and side.

    Evidence criterion 0 is the pairwise preference (A or B); criterion j ≥ 1 is choice
    criterion j − 1. A per-response criterion has two slots (A and B), an item-level one one.
    """

    criteria: list[Criterion]
    slot_criterion: np.ndarray = field(init=False)  # evidence criterion index per slot
    slot_side: np.ndarray = field(init=False)

    def __post_init__(self):
        crit, side = [], []
        for j, c in enumerate(self.criteria, start=1):
            for s in (A_SIDE, B_SIDE) if c.per_response else (ITEM_SIDE,):
                crit.append(j)
                side.append(s)
        self.slot_criterion = np.array(crit, dtype=np.int64)
        self.slot_side = np.array(side, dtype=np.int64)

    @property
    def n_values(self) -> list[int]:
        return [2, *(len(c.values) for c in self.criteria)]

    @property
    def n_slots(self) -> int:
        return len(self.slot_criterion)

    @property
    def width(self) -> int:
        return max(self.n_values)

    def risk_mask(self, n_items: int) -> np.ndarray:
        """(n, S, M) the rubric's risk options per slot (callers may add their own)."""
        mask = np.zeros((n_items, self.n_slots, self.width), dtype=bool)
        for s, j in enumerate(self.slot_criterion):
            c = self.criteria[j - 1]
            for v, value in enumerate(c.values):
                mask[:, s, v] = value in c.risk_values
        return mask


@dataclass
class Block:
    """A set of items (a chunk, the training items, or a whole replayed pool).

    Choice targets are shared: a response shown by two items is one target. `target_*` arrays
    describe the block's T targets, `slot_target` (n, S) maps each item's slots to them (−1: no
    such target). Human votes and final answers are per target; automated labels reference
    targets (`slot_labels`) or item rows (`pair_labels`, value 0 = A, 1 = B).
    """

    prompt: np.ndarray  # (n, DIM) text features
    a: np.ndarray
    b: np.ndarray
    tags: list  # list of tag lists, one per item
    risk_prior: np.ndarray  # (n,)
    pair_votes: np.ndarray  # (n, 2) human votes for A and B, a tie half to each
    target_criterion: np.ndarray  # (T,) evidence criterion index
    target_votes: np.ndarray  # (T, M) human votes per value
    target_final: np.ndarray  # (T,) final value index, −1 undecided
    slot_target: np.ndarray  # (n, S)
    slot_labels: evidence.Labels
    pair_labels: evidence.Labels
    risk_mask: np.ndarray  # (n, S, M) values that are risk outcomes for that slot

    def __len__(self) -> int:
        return len(self.prompt)


@dataclass
class Basis:
    center: np.ndarray  # (256,) mean semantic vector of the pool's texts
    components: np.ndarray  # (256, BASIS_DIM)
    tags: list[str]
    # The pool's strata: sorted keys (`stratum_keys` of the tags) and each one's share of the items.
    strata: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    strata_share: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_arrays(self) -> dict:
        return {
            "center": self.center,
            "components": self.components,
            "tags": np.array(json.dumps(self.tags)),
            "strata": self.strata,
            "strata_share": self.strata_share,
        }

    @classmethod
    def from_arrays(cls, data) -> "Basis":
        # A basis stored before strata existed (a chunk job queued across an upgrade) has none:
        # its pairs are weighed equally.
        strata = data["strata"] if "strata" in data else np.zeros(0, dtype=np.int64)
        share = data["strata_share"] if "strata_share" in data else np.zeros(0)
        return cls(data["center"], data["components"], json.loads(str(data["tags"])), strata, share)

    def tag_matrix(self, tags: list) -> np.ndarray:
        """(n, MAX_TAGS) 1.0 where item i carries basis tag k; always MAX_TAGS wide."""
        out = np.zeros((len(tags), MAX_TAGS))
        for k, tag in enumerate(self.tags[:MAX_TAGS]):
            out[:, k] = [tag in item_tags for item_tags in tags]
        return out


def stratum_keys(tag_matrix: np.ndarray) -> np.ndarray:
    """Each item's combination of basis tags as a bit mask (0: none of them)."""
    return (tag_matrix > 0).astype(np.int64) @ (1 << np.arange(tag_matrix.shape[1], dtype=np.int64))


def fit_basis(texts: np.ndarray, tags: list, rng: np.random.Generator) -> Basis:
    """Center and PCA basis of (a sample of) the pool's text vectors; its most frequent partial tags."""
    sem = features.semantic(texts).astype(np.float64)
    if len(sem) > 3 * BASIS_SAMPLE:
        sem = sem[rng.choice(len(sem), 3 * BASIS_SAMPLE, replace=False)]
    center = sem.mean(axis=0) if len(sem) else np.zeros(features.SEMANTIC)
    components = np.zeros((features.SEMANTIC, BASIS_DIM))
    if len(sem) > 1:
        _, _, vt = np.linalg.svd(sem - center, full_matrices=False)
        k = min(BASIS_DIM, len(vt))
        components[:, :k] = vt[:k].T
    counts: dict[str, int] = {}
    for item_tags in tags:
        for t in set(item_tags):
            counts[t] = counts.get(t, 0) + 1
    n = len(tags)
    partial = sorted((t for t, c in counts.items() if c < n), key=lambda t: (-counts[t], t))
    basis = Basis(center, components, partial[:MAX_TAGS])
    if n:
        basis.strata, counts_per = np.unique(stratum_keys(basis.tag_matrix(tags)), return_counts=True)
        basis.strata_share = counts_per / n
    return basis


@dataclass
class Featurized:
    """Everything `train` and `score` need about a block's items."""

    pair_x: np.ndarray  # (n, P) antisymmetric: x(A, B) = −x(B, A)
    pair_blocks: dict  # block name -> column mask of pair_x
    sym_x: np.ndarray  # (n, Q) symmetric pair features for the tie model
    risk_x: np.ndarray  # (n, R)
    embedding: np.ndarray  # (n, 256) unit rows for diversity
    slot_post: np.ndarray  # (n, S, M) the automated posterior per slot (class prior where no label)
    slot_auto: np.ndarray  # (n, S) automated labels behind each slot's posterior
    slot_open: np.ndarray  # (n, S) the slot has a target that people have not decided
    judge: np.ndarray  # (n,) automated P(A ≻ B), 0.5 without labels
    judge_labels: np.ndarray  # (n,)
    r_auto: np.ndarray  # (n,) risk from automated labels alone
    groups: np.ndarray  # (n, MAX_TAGS + 1) bool: the item's basis tags, then "none of them"
    stratum: np.ndarray  # (n,) the item's tag combination (stratum_keys)
    risk_offset: np.ndarray  # (n,) the risk model's prior log-odds: logit(r_auto) where labels speak to risk


def featurize(basis: Basis, confusions: evidence.Confusions, layout: Layout, block: Block) -> Featurized:
    n, S, M = len(block), layout.n_slots, layout.width
    target_post, target_auto = confusions.posterior(block.target_criterion, block.slot_labels)
    slot_post = np.zeros((n, S, M))
    slot_auto = np.zeros((n, S))
    slot_open = np.zeros((n, S), dtype=bool)
    has = block.slot_target >= 0
    rows, cols = np.nonzero(has)
    tgt = block.slot_target[rows, cols]
    slot_post[rows, cols] = target_post[tgt][:, :M]
    slot_auto[rows, cols] = target_auto[tgt]
    slot_open[rows, cols] = block.target_final[tgt] < 0
    pair_post, judge_labels = confusions.posterior(np.full(n, PAIR), block.pair_labels)
    judge = np.where(judge_labels > 0, pair_post[:, 0], 0.5)

    # r from automated labels: noisy-OR over the slots they speak to of P(a risk value).
    risky = np.sum(slot_post * block.risk_mask, axis=2) * (slot_auto > 0)
    r_auto = models.noisy_or(*risky.T) if S else np.zeros(n)

    sem = [features.semantic(x) - basis.center for x in (block.prompt, block.a, block.b)]
    pca = [s @ basis.components for s in sem]
    sca = [features.scalars(x) for x in (block.prompt, block.a, block.b)]
    tags = basis.tag_matrix(block.tags)

    # Evidence per response side: the posterior of each per-response slot, A minus B.
    per_response = [s for s in range(S) if layout.slot_side[s] == A_SIDE]
    d_post = [slot_post[:, s] - slot_post[:, s + 1] for s in per_response]
    s_post = [slot_post[:, s] + slot_post[:, s + 1] for s in per_response]
    item_post = [slot_post[:, s] for s in range(S) if layout.slot_side[s] == ITEM_SIDE]
    d_evidence = np.hstack([*d_post, (2 * judge - 1)[:, None]])
    d_scalar = sca[1] - sca[2]
    d_pca = pca[1] - pca[2]
    interaction = _outer(tags, np.hstack([d_pca[:, :INTERACTION_DIM], d_scalar, d_evidence]))
    parts = {
        "length": d_scalar[:, :1],
        "structure": d_scalar[:, 1:],
        "evidence": d_evidence,
        "semantic": d_pca,
        "interaction": interaction,
    }
    pair_x = np.hstack(list(parts.values()))
    pair_blocks, start = {}, 0
    for name, part in parts.items():
        mask = np.zeros(pair_x.shape[1], dtype=bool)
        mask[start : start + part.shape[1]] = True
        pair_blocks[name] = mask
        start += part.shape[1]

    abs_evidence = np.abs(d_evidence)
    sym_x = np.hstack([np.abs(d_scalar), np.abs(d_pca), abs_evidence, tags, _outer(tags, abs_evidence)])
    # The risk model corrects the automated labels' log-odds (clipped, so people's answers can
    # overrule them) where those labels answer a criterion that has risk outcomes (a "no" counts
    # as much as a "yes"); elsewhere it starts from its intercept.
    risk_bearing = block.risk_mask.any(axis=(0, 2))  # slots whose criterion has risk outcomes at all
    speaks = np.any((slot_auto > 0) & risk_bearing[None, :], axis=1)
    clipped = np.clip(r_auto, RISK_OFFSET_CLIP, 1 - RISK_OFFSET_CLIP)
    risk_offset = np.where(speaks, np.log(clipped / (1 - clipped)), 0.0)
    sum_evidence = np.hstack([*s_post, *item_post]) if (s_post or item_post) else np.zeros((n, 0))
    risk_x = np.hstack(
        [
            pca[0],
            (pca[1] + pca[2]) / 2,
            np.abs(d_pca),
            sca[1] + sca[2],
            np.abs(d_scalar),
            tags,
            sum_evidence,
            _outer(tags, sum_evidence),
        ]
    )
    # Diversity embeds the text and the tags: an item of a kind nobody labeled yet is far from the
    # labeled ones even when its wording is close (XSTest's safe/unsafe contrasts are).
    text = features.unit_rows((sem[0] + sem[1] + sem[2]).astype(np.float32))
    embedding = features.unit_rows(np.hstack([text, TAG_WEIGHT * features.unit_rows(tags.astype(np.float32))]))
    return Featurized(
        pair_x=pair_x,
        pair_blocks=pair_blocks,
        sym_x=sym_x,
        risk_x=risk_x,
        embedding=embedding,
        slot_post=slot_post,
        slot_auto=slot_auto,
        slot_open=slot_open,
        judge=judge,
        judge_labels=judge_labels,
        r_auto=r_auto,
        groups=np.hstack([tags > 0, ~(tags > 0).any(axis=1, keepdims=True)]),
        stratum=stratum_keys(tags),
        risk_offset=risk_offset,
    )


def _outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise outer product, flattened: every column of `a` times every column of `b`."""
    return np.einsum("ni,nj->nij", a, b).reshape(len(a), a.shape[1] * b.shape[1])


@dataclass
class Trained:
    """A run's fitted state: what every chunk is scored with (and what travels between jobs)."""

    basis: Basis
    confusions: evidence.Confusions
    informative: np.ndarray  # (S,) slots whose criterion has automated labels: they enter h
    risk: models.Linear
    reward: models.Linear
    tie: models.Linear
    uncertainty: str = "entropy"
    # Fisher mode: L⁻¹ of the reward model's information matrix over the columns it uses.
    whitener: np.ndarray | None = None
    fisher_columns: np.ndarray | None = None
    # Featurized.groups columns the reward model has decided pairs of (None: every one).
    reward_groups: np.ndarray | None = None

    def reward_p(self, feats: "Featurized") -> np.ndarray:
        """P(A ≻ B) per item: the reward model where every tag group of the item is among its
        training pairs' (`reward_groups`); elsewhere, and while it is untrained, the automated
        judges' posterior (0.5 without one). It does not extrapolate to a kind of item it has
        no decided pair of: a model fitted on unsafe prompts alone would say "the refusal wins"
        on safe ones too."""
        if not self.reward.trained:
            return feats.judge
        return np.where(self.reward_covers(feats), self.reward.predict(feats.pair_x), feats.judge)

    def reward_covers(self, feats: "Featurized") -> np.ndarray:
        """(n,) bool: every tag group of the item is among the reward model's training pairs'."""
        if self.reward_groups is None:
            return np.ones(len(feats.groups), dtype=bool)
        return ~(feats.groups & ~self.reward_groups[None, :]).any(axis=1)

    def whiten(self, pair_x: np.ndarray) -> np.ndarray:
        """z with z_i·z_j = x_iᵀ A⁻¹ x_j (models.information_gain, models.absorb)."""
        return pair_x[:, self.fisher_columns] @ self.whitener.T

    def describe(self, labelers: dict | None = None, criteria: list[str] | None = None) -> dict:
        """What the run recorded; `labelers` names the sources, `criteria` the evidence criteria (by index)."""
        checked = self.confusions.describe(labelers)
        if criteria is not None:
            for row in checked:
                row["criterion"] = criteria[row["criterion"]]
        return {
            "risk": self.risk.describe(),
            "reward": self.reward.describe(),
            "tie": self.tie.describe(),
            "uncertainty": self.uncertainty,
            "tags": self.basis.tags,
            "automated_labelers": checked,
        }

    def to_bytes(self) -> bytes:
        arrays = {**self.basis.to_arrays(), **self.confusions.to_arrays("ev_"), "informative": self.informative}
        meta = {"uncertainty": self.uncertainty}
        for name in ("risk", "reward", "tie"):
            model = getattr(self, name)
            if model.trained:
                arrays[f"{name}_w"] = model.weights
            meta[name] = {
                "bias": model.bias,
                "trained_on": model.trained_on,
                "held_out_accuracy": model.held_out_accuracy,
                "skipped": model.skipped,
                "info": model.info,
                "penalty": model.penalty,
            }
        if self.whitener is not None:
            arrays["whitener"] = self.whitener
            arrays["fisher_columns"] = self.fisher_columns
        if self.reward_groups is not None:
            arrays["reward_groups"] = self.reward_groups
        arrays["meta"] = np.array(json.dumps(meta))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Trained":
        with np.load(io.BytesIO(blob)) as data:
            meta = json.loads(str(data["meta"]))
            fitted = {}
            for name in ("risk", "reward", "tie"):
                m = meta[name]
                weights = data.get(f"{name}_w")
                fitted[name] = models.Linear(
                    weights, m["bias"], m["trained_on"], m["held_out_accuracy"], m["skipped"], m["info"], m["penalty"]
                )
            return cls(
                basis=Basis.from_arrays(data),
                confusions=evidence.Confusions.from_arrays(data, "ev_"),
                informative=data["informative"],
                uncertainty=meta["uncertainty"],
                whitener=data.get("whitener"),
                fisher_columns=data.get("fisher_columns"),
                reward_groups=data.get("reward_groups"),
                **fitted,
            )


def train(
    basis: Basis,
    confusions: evidence.Confusions,
    layout: Layout,
    feats: Featurized,
    risk_rows: np.ndarray,
    risk_y: np.ndarray,
    pair_rows: np.ndarray,
    pair_outcome: np.ndarray,
    rng: np.random.Generator,
    *,
    uncertainty: str = "entropy",
    informative: np.ndarray | None = None,
    held_out: bool = True,
) -> Trained:
    """Fit the risk model (`risk_rows` of `feats`, labels `risk_y`), the reward model on the
    decided pairs (post-stratified to the pool's tag combinations) and the tie model on all
    decided-or-tied pairs (`pair_rows`, outcome 1 = A preferred, 0 = B, 0.5 = tie)."""
    if uncertainty not in UNCERTAINTY_MODES:
        raise ValueError(f"unknown uncertainty mode {uncertainty!r}: expected one of {UNCERTAINTY_MODES}")
    risk = models.train_risk(
        feats.risk_x[risk_rows], risk_y.astype(int), rng, offset=feats.risk_offset[risk_rows], held_out=held_out
    )
    decided = pair_outcome != 0.5
    reward_rows = pair_rows[decided]
    reward = models.train_bradley_terry(
        feats.pair_x[reward_rows],
        (pair_outcome[decided] == 1.0).astype(int),
        rng,
        feats.pair_blocks,
        held_out=held_out,
        weight=models.poststratification_weights(feats.stratum[reward_rows], basis.strata, basis.strata_share),
    )
    support = feats.groups[reward_rows].sum(axis=0)
    tags = basis.tags[:MAX_TAGS]
    names = [*tags, *[None] * (MAX_TAGS - len(tags)), "(no tag)"]
    reward.info["group_pairs"] = {name: c for name, c in zip(names, support.tolist(), strict=True) if name}
    tie = models.train_tie(feats.sym_x[pair_rows], decided)
    if informative is None:
        informative = np.zeros(layout.n_slots, dtype=bool)
    whitener = columns = None
    if uncertainty == "fisher":
        # Over every candidate column, not only the blocks the model chose: what it has not seen
        # (a tag's interaction terms, say) is exactly where a label tells most.
        columns = np.ones(feats.pair_x.shape[1], dtype=bool)
        X = feats.pair_x[pair_rows[decided]]
        p = reward.predict(X) if reward.trained else np.full(len(X), 0.5)
        whitener = models.whitener(X[:, columns], p, reward.penalty)
    return Trained(basis, confusions, informative, risk, reward, tie, uncertainty, whitener, columns, support > 0)


@dataclass
class Scores:
    """Per item: r, h, the reward model's p, and what selection needs to update h in Fisher mode."""

    r: np.ndarray
    h: np.ndarray
    p: np.ndarray  # P(A ≻ B) before votes: the reward model, else the automated judges, else 0.5
    embedding: np.ndarray
    q: np.ndarray  # P(the pair is decided, not a tie)
    h_keep: np.ndarray  # Π(1 − h_slot) over the choice slots: h = 1 − (1 − h_pair)·h_keep
    slot_answer: np.ndarray  # (n, S) the most probable value per slot (people's, else the evidence)
    slot_post: np.ndarray  # (n, S, M) after human votes


def score(trained: Trained, layout: Layout, block: Block, feats: Featurized, kappa: float = models.KAPPA) -> Scores:
    """r, h and p for each item of a featurized block (README "Scoring")."""
    n = len(block)
    p = trained.reward_p(feats)
    if trained.tie.trained:
        q = trained.tie.predict(feats.sym_x)
    else:
        share = trained.tie.info.get("decided_share")
        q = np.full(n, 1.0 if share is None else max(share, 0.05))
    n_a, n_b = block.pair_votes[:, 0], block.pair_votes[:, 1]
    if trained.uncertainty == "fisher":
        h_pair = q * models.information_gain(trained.whiten(feats.pair_x), p)
    else:
        h_pair = q * models.posterior_uncertainty(n_a, n_b, p, kappa)

    # Choice slots: the automated posterior as κ pseudo-votes beside people's votes; decided → certain.
    slot_post = feats.slot_post.copy()
    has = block.slot_target >= 0
    rows, cols = np.nonzero(has)
    tgt = block.slot_target[rows, cols]
    votes = block.target_votes[tgt][:, : layout.width]
    mixed = (votes + kappa * slot_post[rows, cols]) / (votes.sum(axis=1, keepdims=True) + kappa)
    final = block.target_final[tgt]
    decided = final >= 0
    mixed[decided] = 0.0
    mixed[decided, final[decided]] = 1.0
    slot_post[rows, cols] = mixed
    n_values = np.array(layout.n_values)[layout.slot_criterion]
    slot_h = evidence.normalized_entropy(slot_post, n_values[None, :]) if layout.n_slots else np.zeros((n, 0))
    counted = has & trained.informative[None, :]
    h_keep = np.prod(1.0 - slot_h * counted, axis=1)
    # While nothing predicts the preference (no reward model, no judge, no votes), its entropy is 1
    # for every item: it cannot rank them, and beside the choice slots it would hide theirs.
    pair_speaks = (
        trained.reward.trained
        | (trained.uncertainty == "fisher")
        | (feats.judge_labels > 0)
        | (block.pair_votes.sum(axis=1) > 0)
        | ~counted.any(axis=1)
    )
    h = np.where(pair_speaks, 1.0 - (1.0 - h_pair) * h_keep, 1.0 - h_keep)

    r_model = trained.risk.predict(feats.risk_x, feats.risk_offset) if trained.risk.trained else feats.r_auto
    r = models.noisy_or(block.risk_prior, r_model)
    return Scores(
        r=r,
        h=h,
        p=p,
        embedding=feats.embedding,
        q=q,
        h_keep=h_keep,
        slot_answer=np.argmax(slot_post, axis=2),
        slot_post=slot_post,
    )
