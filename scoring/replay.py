"""Offline replay of a label budget: does ordering by utility earn its keep?

Pure numpy (no Django): a pool JSONL file (FORMATS.md section 1) and its rubric are read once
into the arrays of `scoring.pipeline`, then `replay` spends a label budget batch by batch under
a policy. After every batch the simulated labeler's answers become final answers, and the
automated labelers' confusions, the risk, reward and tie models are refitted and the pool
rescored with the same pipeline a scoring run uses (`pipeline.featurize / train / score`,
`selection.select_active`).

Ground truth
------------
- Per target (a response's answer to a per-response criterion, an item's answer to an
  item-level one, an item's preference): the latest `lead` label; else the strict majority of
  the `human` labels (one vote per annotator: a single human label is the answer, two that
  disagree are none); else unknown. `model` labels never decide, with one exception:
- The judge rule (AlpacaEval): a file with no human or lead labels at all, whose pairwise
  criterion is labeled by exactly one `model` annotator, takes that annotator's labels as the
  ground-truth preference; that judge is then not evidence. AlpacaEval carries only the GPT-4
  judge's preference, so there the replay measures agreement with that judge, not with people.
- Preference without pairwise labels (XSTest): from the responses' compliance answers, by the
  rubric's guideline "prefer the response that helps on safe requests and declines only what is
  truly unsafe": on `safe`-tagged prompts full_compliance > partial_refusal > full_refusal, on
  `unsafe`-tagged prompts the reverse; equal ranks → a tie.
- Risk positive: an item with a response whose answer is a risk option of the rubric, or an
  `unsafe`-tagged item with a fully complying response (XSTest's harm: compliance with an
  unsafe request). The same rule over the automated labels' posteriors gives r's cold start.

The labeler answers every target of the item it is given (flipped with probability `noise`:
a preference to the other side, a choice to another option at random), and the answer is final.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from scoring import evidence, features, models, pipeline, selection
from scoring.poolfile import canonical_json, prompt_text, sha256_hex

AUTO = "auto"
TIE = "tie"
COMPLIANCE = "compliance"
COMPLIANCE_RANK = {"full_compliance": 2, "partial_refusal": 1, "full_refusal": 0}
REFUSAL = ("compliance", "full_refusal", "safe")  # criterion, value, tag of the benign refusal rate
TEST_SHARE = 0.2
MAX_REPRESENTATIVES = 1000  # settings.SCORING_MAX_REPRESENTATIVES' default
POLICIES = ("utility", "random", "uncertainty", "utility-fisher")
POLICY_SETTINGS = {  # weights (λ_risk, λ_unc, λ_div) and uncertainty mode
    "utility": (selection.Weights(1.0, 1.0, 1.0), "entropy"),
    "utility-fisher": (selection.Weights(1.0, 1.0, 1.0), "fisher"),
    "uncertainty": (selection.Weights(0.0, 1.0, 0.0), "entropy"),
    "random": (selection.Weights(), "entropy"),
}


def ground_truth(labels: list[dict]) -> str | None:
    """The latest lead label, else the strict majority of human annotators' labels, else None."""
    leads = [(lab.get("created_at") or "", i, lab["value"]) for i, lab in enumerate(labels) if lab["kind"] == "lead"]
    if leads:
        return max(leads)[2]
    votes = {lab["annotator"]: lab["value"] for lab in labels if lab["kind"] == "human"}  # one vote per annotator
    if not votes:
        return None
    counts: dict[str, int] = defaultdict(int)
    for value in votes.values():
        counts[value] += 1
    value, n = max(counts.items(), key=lambda kv: kv[1])
    return value if 2 * n > len(votes) else None


def compliance_preference(a: str | None, b: str | None, tags) -> float:
    """1.0 if A follows the safe/unsafe guideline better, 0.0 if B does, 0.5 if equal, NaN if unknown."""
    safe, unsafe = "safe" in tags, "unsafe" in tags
    if a not in COMPLIANCE_RANK or b not in COMPLIANCE_RANK or safe == unsafe:
        return math.nan
    ra, rb = COMPLIANCE_RANK[a], COMPLIANCE_RANK[b]
    if unsafe:
        ra, rb = -ra, -rb
    return 0.5 if ra == rb else float(ra > rb)


def read_lines(path: str | Path) -> list[dict]:
    """The JSON objects of a pool file, with a line number in every error."""
    lines = []
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"line {n}: not JSON: {exc}") from None
            responses = obj.get("responses") if isinstance(obj, dict) else None
            if not isinstance(responses, list) or len(responses) != 2 or "prompt" not in obj:
                raise ValueError(f"line {n}: expected a prompt and exactly two responses")
            lines.append(obj)
    return lines


@dataclass
class RubricInfo:
    pairwise: str | None
    criteria: list[pipeline.Criterion]


def rubric_info(rubric: dict | None, lines: list[dict]) -> RubricInfo:
    """The pairwise criterion and the choice criteria: from the rubric, else inferred from the labels
    (values that are the item's response keys or `tie` make a pairwise criterion)."""
    if rubric is not None:
        pairwise = next((c["slug"] for c in rubric["criteria"] if c["kind"] == "pairwise"), None)
        criteria = [
            pipeline.Criterion(
                c["slug"],
                tuple(o["value"] for o in c["options"]),
                bool(c.get("per_response")),
                frozenset(o["value"] for o in c["options"] if o.get("risk")),
            )
            for c in rubric["criteria"]
            if c["kind"] == "choice"
        ]
        return RubricInfo(pairwise, criteria)
    values: dict[str, set] = defaultdict(set)
    per_response: dict[str, bool] = {}
    keyish: dict[str, bool] = defaultdict(lambda: True)
    for obj in lines:
        keys = {r["key"] for r in obj["responses"]} | {TIE}
        for lab in obj.get("labels") or []:
            c = lab["criterion"]
            values[c].add(str(lab["value"]))
            per_response[c] = per_response.get(c, False) or lab.get("response") is not None
            keyish[c] = keyish[c] and lab.get("response") is None and lab["value"] in keys
    pairwise = next((c for c in values if keyish[c]), None)
    criteria = [
        pipeline.Criterion(c, tuple(sorted(values[c])), per_response[c]) for c in sorted(values) if c != pairwise
    ]
    return RubricInfo(pairwise, criteria)


@dataclass
class PoolData:
    """A pool file as pipeline arrays plus its ground truth."""

    external_ids: list[str]
    layout: pipeline.Layout
    block: pipeline.Block  # with no final answers and no human votes: the replay fills them in
    pair_truth: np.ndarray  # (n,) 1.0: A preferred, 0.0: B, 0.5: tie, NaN: unknown
    target_truth: np.ndarray  # (T,) value index, −1 unknown
    target_model: list[str]  # (T,) the model behind a response target ("" for an item-level one)
    target_tags: list  # (T,) the tags of the target's prompt
    risk: np.ndarray  # (n,) bool
    answer_criteria: list[int]  # evidence criteria whose answers the file labels: the pool answers
    pair_answers: bool  # the file labels the preference itself
    source: str
    counts: dict = field(default_factory=dict)
    annotators: dict = field(default_factory=dict)  # source id -> automated labeler's name

    def __len__(self) -> int:
        return len(self.external_ids)


def load_pool(path: str | Path, rubric: dict | None = None, *, judge: str | None = AUTO) -> PoolData:
    """Read a pool file (and its rubric: given, else `rubric.json` beside it, else inferred).

    `judge`: AUTO applies the judge rule when it fits; None never counts model labels as truth;
    an annotator name takes that model annotator's pairwise labels wherever people gave no answer.
    """
    path = Path(path)
    lines = read_lines(path)
    if rubric is None and (path.parent / "rubric.json").is_file():
        rubric = orjson.loads((path.parent / "rubric.json").read_bytes())
    info = rubric_info(rubric, lines)
    layout = pipeline.Layout(info.criteria)
    crit_index = {c.slug: j for j, c in enumerate(info.criteria, start=1)}
    value_index = [{v: i for i, v in enumerate(c.values)} for c in info.criteria]

    prompt_ids, judges, has_people = [], set(), False
    target_ids: dict[tuple, int] = {}  # (prompt_id, response key or None, item, criterion) -> target
    target_labels: list[list[dict]] = []
    target_crit, target_model, target_tags = [], [], []
    slot_target = np.full((len(lines), layout.n_slots), -1, dtype=np.int64)
    pair_labels: list[list[dict]] = []
    for i, obj in enumerate(lines):
        prompt = obj["prompt"]
        pid = obj.get("prompt_id") or sha256_hex(prompt if isinstance(prompt, str) else canonical_json(prompt))
        prompt_ids.append(pid)
        keys = [r["key"] for r in obj["responses"]]
        for s, (j, side) in enumerate(zip(layout.slot_criterion, layout.slot_side, strict=True)):
            c = info.criteria[j - 1]
            key = keys[side] if side != pipeline.ITEM_SIDE else None
            ident = (pid, key, None if key else i, c.slug)
            if ident not in target_ids:
                target_ids[ident] = len(target_labels)
                target_labels.append([])
                target_crit.append(j)
                target_model.append(obj["responses"][side]["model"] if key else "")
                target_tags.append(tuple(obj.get("tags") or ()))
            slot_target[i, s] = target_ids[ident]
        mine = []
        for lab in obj.get("labels") or []:
            has_people |= lab["kind"] in ("human", "lead")
            c = lab["criterion"]
            if c == info.pairwise and lab.get("response") is None:
                mine.append(lab)
                if lab["kind"] == "model":
                    judges.add(lab["annotator"])
            elif c in crit_index:
                key = lab.get("response")
                ident = (pid, key, None if key else i, c)
                if ident in target_ids:
                    target_labels[target_ids[ident]].append(lab)
        pair_labels.append(mine)
    auto = judge == AUTO
    if auto:
        judge = judges.pop() if not has_people and len(judges) == 1 else None

    n, T = len(lines), len(target_labels)
    target_truth = np.full(T, -1, dtype=np.int64)
    for t, labs in enumerate(target_labels):
        value = ground_truth(labs)
        idx = value_index[target_crit[t] - 1].get(value) if value is not None else None
        if idx is not None:
            target_truth[t] = idx
    compliance = crit_index.get(COMPLIANCE)
    full = value_index[compliance - 1].get("full_compliance") if compliance else None
    pair_truth = np.full(n, np.nan)
    counts = {"pairwise": 0, "judge": 0, "compliance": 0}
    for i, obj in enumerate(lines):
        keys = [r["key"] for r in obj["responses"]]
        value = ground_truth(pair_labels[i])
        if value is not None:
            counts["pairwise"] += 1
        elif judge is not None and (theirs := [lab for lab in pair_labels[i] if lab["annotator"] == judge]):
            value = theirs[-1]["value"]
            counts["judge"] += 1
        if value is not None:
            pair_truth[i] = 1.0 if value == keys[0] else 0.0 if value == keys[1] else 0.5 if value == TIE else math.nan
        elif compliance is not None:
            names = info.criteria[compliance - 1].values
            ta, tb = (
                target_truth[slot_target[i, s]] for s in range(layout.n_slots) if layout.slot_criterion[s] == compliance
            )
            pair_truth[i] = compliance_preference(
                names[ta] if ta >= 0 else None, names[tb] if tb >= 0 else None, obj.get("tags") or []
            )
            counts["compliance"] += not math.isnan(pair_truth[i])

    # Risk: a risk option, or full compliance with an unsafe request; the same mask over evidence.
    risk_mask = layout.risk_mask(n)
    for i, obj in enumerate(lines):
        if full is not None and "unsafe" in (obj.get("tags") or []):
            for s in range(layout.n_slots):
                if layout.slot_criterion[s] == compliance:
                    risk_mask[i, s, full] = True
    truth_slots = np.where(slot_target >= 0, target_truth[np.maximum(slot_target, 0)], -1)
    risk = np.zeros(n, dtype=bool)
    for s in range(layout.n_slots):
        has = truth_slots[:, s] >= 0
        risk[has] |= risk_mask[np.flatnonzero(has), s, truth_slots[has, s]]

    # Automated labels: evidence (the judge of the judge rule excepted).
    names: dict[str, int] = {}
    slot_rows, pair_rows = [], []
    for t, labs in enumerate(target_labels):
        for lab in labs:
            v = value_index[target_crit[t] - 1].get(lab["value"])
            if lab["kind"] == "model" and v is not None:
                sid = names.setdefault(lab["annotator"], len(names))
                slot_rows.append((t, target_crit[t], sid, v, lab.get("confidence")))
    for i, obj in enumerate(lines):
        keys = [r["key"] for r in obj["responses"]]
        for lab in pair_labels[i]:
            if lab["kind"] == "model" and lab["annotator"] != judge and lab["value"] in keys:
                sid = names.setdefault(lab["annotator"], len(names))
                pair_rows.append((i, pipeline.PAIR, sid, keys.index(lab["value"]), lab.get("confidence")))

    p_feat = _features([prompt_text(obj["prompt"]) for obj in lines])
    a_feat = _features([obj["responses"][0]["text"] for obj in lines])
    b_feat = _features([obj["responses"][1]["text"] for obj in lines])
    block = pipeline.Block(
        prompt=p_feat,
        a=a_feat,
        b=b_feat,
        tags=[list(obj.get("tags") or []) for obj in lines],
        risk_prior=np.array([float(obj.get("risk_prior") or 0.0) for obj in lines]),
        pair_votes=np.zeros((n, 2)),
        target_criterion=np.array(target_crit, dtype=np.int64),
        target_votes=np.zeros((T, layout.width)),
        target_final=np.full(T, -1, dtype=np.int64),
        slot_target=slot_target,
        slot_labels=evidence.Labels.of(slot_rows),
        pair_labels=evidence.Labels.of(pair_rows),
        risk_mask=risk_mask,
    )
    labeled_criteria = sorted({target_crit[t] for t in range(T) if target_truth[t] >= 0})
    if judge is not None and auto:
        source = f"the judge {judge!r} (model labels: the file has no human or lead labels)"
    elif judge is not None:
        source = f"the judge {judge!r} (model labels, where no person gave a pairwise answer)"
    else:
        source = "final answers (lead, else a human majority); without a pairwise answer, the compliance rule"
    counts["known"] = int(np.sum(~np.isnan(pair_truth) & (pair_truth != 0.5)))
    counts["ties"] = int(np.sum(pair_truth == 0.5))
    counts["risk"] = int(risk.sum())
    counts["targets"] = int(np.sum(target_truth >= 0))
    counts["automated_labels"] = len(slot_rows) + len(pair_rows)
    return PoolData(
        external_ids=[str(obj.get("external_id", i)) for i, obj in enumerate(lines)],
        layout=layout,
        block=block,
        pair_truth=pair_truth,
        target_truth=target_truth,
        target_model=target_model,
        target_tags=target_tags,
        risk=risk,
        answer_criteria=labeled_criteria,
        pair_answers=counts["pairwise"] + counts["judge"] > 0,
        source=source,
        counts=counts,
        annotators={v: k for k, v in names.items()},
    )


def _features(texts: list[str]) -> np.ndarray:
    """features.text_features, once per distinct text (responses are shared between items)."""
    unique = list(dict.fromkeys(texts))
    rows = features.text_features(unique)
    index = {text: i for i, text in enumerate(unique)}
    return rows[[index[t] for t in texts]]


# -- the replay loop ------------------------------------------------------------------------


@dataclass
class Curve:
    """One replay: after each batch, labels spent and the figures of `Point`."""

    policy: str
    spent: np.ndarray
    accuracy: np.ndarray  # reward model, held-out split
    pool_accuracy: np.ndarray  # the pool's answers: people's where labeled, the best automated else
    refusal_error: np.ndarray  # mean |estimated − true| benign refusal rate over models
    found: np.ndarray  # risk positives among the labeled items
    total: int  # risk positives among the selectable items
    test: np.ndarray  # the held-out items (never picked)
    picked: np.ndarray  # the labeled items, in the order they were picked
    by_criterion: dict = field(default_factory=dict)  # criterion slug -> pool accuracy per point
    refusal_by_model: dict = field(default_factory=dict)  # model -> |error| per point


@dataclass
class _State:
    """What people have said so far: one answer per labeled item and per target it shows."""

    labeled: np.ndarray
    pair_answer: np.ndarray  # (n,) NaN until labeled
    target_answer: np.ndarray  # (T,) −1 until shown by a labeled item


def _block(data: PoolData, state: _State) -> pipeline.Block:
    """The pool as the scoring run sees it now: labeled targets decided, labeled pairs voted."""
    b = data.block
    votes = np.zeros((len(data), 2))
    answered = ~np.isnan(state.pair_answer)
    votes[answered, 0] = state.pair_answer[answered]
    votes[answered, 1] = 1.0 - state.pair_answer[answered]
    return pipeline.Block(
        prompt=b.prompt,
        a=b.a,
        b=b.b,
        tags=b.tags,
        risk_prior=b.risk_prior,
        pair_votes=votes,
        target_criterion=b.target_criterion,
        target_votes=b.target_votes,
        target_final=state.target_answer,
        slot_target=b.slot_target,
        slot_labels=b.slot_labels,
        pair_labels=b.pair_labels,
        risk_mask=b.risk_mask,
    )


def _fit(data: PoolData, state: _State, basis: pipeline.Basis, uncertainty: str, rng: np.random.Generator):
    """Refit everything from what people said: confusions, then the three models; rescore."""
    layout, block = data.layout, _block(data, state)
    # One target space for the fit: the choice targets, then every item's pair.
    T, n = len(block.target_criterion), len(data)
    said = state.pair_answer
    pair_truth = np.where(said == 1.0, 0, np.where(said == 0.0, 1, -1)).astype(np.int64)
    pairs = block.pair_labels
    labels = _concat(
        block.slot_labels,
        evidence.Labels(pairs.target + T, pairs.criterion, pairs.source, pairs.value, pairs.confidence),
    )
    confusions = evidence.fit(
        layout.n_values,
        labels,
        np.concatenate([block.target_criterion, np.full(n, pipeline.PAIR)]),
        np.concatenate([state.target_answer, pair_truth]),
    )
    feats = pipeline.featurize(basis, confusions, layout, block)
    lab = np.flatnonzero(state.labeled)
    outcome = state.pair_answer[lab]
    has_pair = ~np.isnan(outcome)
    informative = np.isin(layout.slot_criterion, np.unique(block.slot_labels.criterion))
    trained = pipeline.train(
        basis,
        confusions,
        layout,
        feats,
        lab,
        data.risk[lab],
        lab[has_pair],
        outcome[has_pair],
        rng,
        uncertainty=uncertainty,
        informative=informative,
        held_out=False,
    )
    return block, feats, trained, pipeline.score(trained, layout, block, feats)


def _concat(a: evidence.Labels, b: evidence.Labels) -> evidence.Labels:
    return evidence.Labels(
        *(
            np.concatenate([getattr(a, f), getattr(b, f)])
            for f in ("target", "criterion", "source", "value", "confidence")
        )
    )


@dataclass
class _Answers:
    pool: float
    by_criterion: dict
    refusal: float
    refusal_by_model: dict


def _pool_answers(data: PoolData, state: _State, scores: pipeline.Scores, feats: pipeline.Featurized) -> _Answers:
    """The pool's answers: people's where labeled, else the most probable automated answer (the
    evidence posterior; the class prior where no automated label speaks), and for the preference
    the reward model, else the automated judges; scored against the ground truth."""
    layout = data.layout
    T = len(data.target_truth)
    answer = state.target_answer.copy()
    rows, cols = np.nonzero(data.block.slot_target >= 0)
    tgt = data.block.slot_target[rows, cols]
    open_ = answer[tgt] < 0
    answer[tgt[open_]] = scores.slot_answer[rows[open_], cols[open_]]
    correct, total, by_crit = 0, 0, {}
    for j in data.answer_criteria:
        mine = (data.block.target_criterion == j) & (data.target_truth >= 0)
        hits = int(np.sum(answer[mine] == data.target_truth[mine]))
        by_crit[layout.criteria[j - 1].slug] = hits / max(1, int(mine.sum()))
        correct, total = correct + hits, total + int(mine.sum())
    if data.pair_answers:
        decided = np.isin(data.pair_truth, (0.0, 1.0))
        said = state.pair_answer
        open_ = np.isnan(said)
        right = np.where(open_, (scores.p > 0.5) == (data.pair_truth == 1.0), said == data.pair_truth)
        hits = float(np.sum(np.where(open_ & (scores.p == 0.5), 0.5, right)[decided]))
        by_crit["preference"] = hits / max(1, int(decided.sum()))
        correct, total = correct + hits, total + int(decided.sum())
    refusal, by_model = math.nan, {}
    criterion, value, tag = REFUSAL
    j = next((j for j, c in enumerate(layout.criteria, start=1) if c.slug == criterion), None)
    if j is not None and value in layout.criteria[j - 1].values:
        v = layout.criteria[j - 1].values.index(value)
        for model in sorted({m for m in data.target_model if m}):
            mine = np.array(
                [
                    data.block.target_criterion[t] == j
                    and data.target_model[t] == model
                    and tag in data.target_tags[t]
                    and data.target_truth[t] >= 0
                    for t in range(T)
                ]
            )
            if mine.any():
                by_model[model] = abs(float(np.mean(answer[mine] == v)) - float(np.mean(data.target_truth[mine] == v)))
        refusal = float(np.mean(list(by_model.values()))) if by_model else math.nan
    return _Answers(correct / max(1, total), by_crit, refusal, by_model)


def _reward_accuracy(trained: pipeline.Trained, feats: pipeline.Featurized, test: np.ndarray, truth: np.ndarray):
    """The reward model's accuracy on the held-out pairs; 0.5 (a coin flip) where it says nothing:
    untrained, or for a pair of a tag group none of its training pairs carries."""
    if len(test) == 0:
        return math.nan
    if not trained.reward.trained:
        return 0.5
    covered = trained.reward_covers(feats)[test]
    p = np.where(covered, trained.reward.predict(feats.pair_x[test]), 0.5)
    return models.pair_accuracy(p, truth[test])


def _pick(policy, k, data, eligible, labeled, trained, feats, scores, audit_share, rng) -> np.ndarray:
    """The indices of the next `k` items to label under `policy`."""
    pool = np.flatnonzero(eligible)
    if policy == "random":
        return rng.choice(pool, size=k, replace=False)
    weights, _ = POLICY_SETTINGS[policy]
    n = len(data)
    # select_active breaks ties by position; shuffle so that ties (e.g. h = 1 everywhere
    # before the reward model trains) fall at random rather than on the file's first lines.
    perm = rng.permutation(n)
    fisher = None
    if trained.uncertainty == "fisher":
        fisher = selection.Fisher(
            scores.p[perm],
            scores.q[perm],
            scores.h_keep[perm],
            lambda idx: trained.whiten(feats.pair_x[perm[idx]]),
        )
    chosen = selection.choose(
        scores.r[perm],
        scores.h[perm],
        scores.embedding[perm],
        labeled[perm],
        eligible[perm],
        k,  # one label per item in the replay: a budget of k judgments picks k items
        np.ones(n),
        np.zeros(n, dtype=bool),
        weights,
        audit_share,
        rng,
        MAX_REPRESENTATIVES,
        fisher=fisher,
    )
    return perm[chosen.selected]


def replay(
    data: PoolData,
    policy: str,
    budget: int,
    batch: int,
    noise: float,
    rng: np.random.Generator,
    *,
    audit_share: float = 0.0,
    test_share: float = TEST_SHARE,
) -> Curve:
    """Spend `budget` labels, `batch` per round, picking items by `policy`; one label per item.

    The held-out split (a `test_share` of the items with a decided preference, never picked) and
    the labeler's noisy answers are drawn first, so that with one seed every policy faces the
    same split and the same answers.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: expected one of {', '.join(POLICIES)}")
    if budget < 0 or batch < 1 or not 0.0 <= noise <= 1.0:
        raise ValueError("budget must be ≥ 0, batch ≥ 1 and noise in [0, 1]")
    n, T = len(data), len(data.target_truth)
    known = np.flatnonzero(np.isin(data.pair_truth, (0.0, 1.0)))
    n_test = min(len(known), max(1, round(test_share * len(known)))) if len(known) and test_share > 0 else 0
    test = rng.choice(known, size=n_test, replace=False) if n_test else np.zeros(0, dtype=np.int64)
    flip = rng.random(n) < noise
    said_pair = np.where(flip & np.isin(data.pair_truth, (0.0, 1.0)), 1.0 - data.pair_truth, data.pair_truth)
    said_target = data.target_truth.copy()
    n_values = np.array(data.layout.n_values)[data.block.target_criterion] if T else np.zeros(0, dtype=np.int64)
    wrong = (rng.random(T) < noise) & (said_target >= 0) & (n_values > 1)
    shift = rng.integers(1, np.maximum(n_values, 2))
    said_target[wrong] = (said_target[wrong] + shift[wrong]) % n_values[wrong]

    basis = pipeline.fit_basis(
        np.vstack([data.block.prompt, data.block.a, data.block.b]), data.block.tags, np.random.default_rng(0)
    )
    uncertainty = POLICY_SETTINGS[policy][1]
    eligible = np.ones(n, dtype=bool)
    eligible[test] = False
    total = int(data.risk[eligible].sum())
    state = _State(np.zeros(n, dtype=bool), np.full(n, np.nan), np.full(T, -1, dtype=np.int64))
    budget = min(budget, int(eligible.sum()))
    spent, acc, pool_acc, refusal, found, picked = [], [], [], [], [], []
    by_crit, by_model = defaultdict(list), defaultdict(list)

    def record(count, feats, trained, scores):
        spent.append(count)
        acc.append(_reward_accuracy(trained, feats, test, data.pair_truth))
        answers = _pool_answers(data, state, scores, feats)
        pool_acc.append(answers.pool)
        refusal.append(answers.refusal)
        for name, value in answers.by_criterion.items():
            by_crit[name].append(value)
        for name, value in answers.refusal_by_model.items():
            by_model[name].append(value)
        found.append(int(data.risk[state.labeled].sum()))

    _, feats, trained, scores = _fit(data, state, basis, uncertainty, rng)
    record(0, feats, trained, scores)
    while spent[-1] < budget:
        k = min(batch, budget - spent[-1])
        picks = _pick(policy, k, data, eligible, state.labeled, trained, feats, scores, audit_share, rng)
        if len(picks) == 0:  # nothing left to pick (cannot happen with budget ≤ eligible; never loop forever)
            break
        picked.append(picks)
        state.labeled[picks] = True
        eligible[picks] = False
        state.pair_answer[picks] = said_pair[picks]
        shown = data.block.slot_target[picks].ravel()
        shown = shown[shown >= 0]
        state.target_answer[shown] = said_target[shown]
        _, feats, trained, scores = _fit(data, state, basis, uncertainty, rng)
        record(spent[-1] + len(picks), feats, trained, scores)
    return Curve(
        policy,
        np.array(spent),
        np.array(acc),
        np.array(pool_acc),
        np.array(refusal),
        np.array(found),
        total,
        test,
        np.concatenate([np.zeros(0, dtype=np.int64), *picked]),
        {k: np.array(v) for k, v in by_crit.items()},
        {k: np.array(v) for k, v in by_model.items()},
    )


@dataclass
class Summary:
    """Curves of several seeds of one policy: means and standard deviations per point."""

    policy: str
    spent: np.ndarray
    accuracy_mean: np.ndarray
    accuracy_sd: np.ndarray
    pool_mean: np.ndarray
    pool_sd: np.ndarray
    refusal_mean: np.ndarray
    refusal_sd: np.ndarray
    found_mean: np.ndarray
    found_sd: np.ndarray
    total_mean: float
    seeds: int
    by_criterion: dict = field(default_factory=dict)  # slug -> mean per point
    refusal_by_model: dict = field(default_factory=dict)  # model -> mean |error| per point


def replay_seeds(
    data: PoolData, policy: str, budget: int, batch: int, noise: float, seeds: int, seed: int = 0, **options
) -> Summary:
    """`seeds` replays with generators seeded seed, seed + 1, ... (the same ones for every policy)."""
    curves = [
        replay(data, policy, budget, batch, noise, np.random.default_rng(seed + s), **options) for s in range(seeds)
    ]

    def stack(name):
        return np.vstack([getattr(c, name) for c in curves]).astype(float)

    acc, pool, ref, found = stack("accuracy"), stack("pool_accuracy"), stack("refusal_error"), stack("found")
    with np.errstate(invalid="ignore"):
        return Summary(
            policy=policy,
            spent=curves[0].spent,
            accuracy_mean=acc.mean(axis=0),
            accuracy_sd=acc.std(axis=0),
            pool_mean=pool.mean(axis=0),
            pool_sd=pool.std(axis=0),
            refusal_mean=ref.mean(axis=0),
            refusal_sd=ref.std(axis=0),
            found_mean=found.mean(axis=0),
            found_sd=found.std(axis=0),
            total_mean=float(np.mean([c.total for c in curves])),
            seeds=seeds,
            by_criterion={k: np.mean([c.by_criterion[k] for c in curves], axis=0) for k in curves[0].by_criterion},
            refusal_by_model={
                k: np.mean([c.refusal_by_model[k] for c in curves], axis=0) for k in curves[0].refusal_by_model
            },
        )


# -- the targets, computed from the curves -------------------------------------------


def labels_to_reach(summary: Summary, values: np.ndarray, level: float) -> float:
    """The first labels-spent point where the mean curve reaches `level` (inf: never)."""
    hit = np.flatnonzero(values >= level - 1e-12)
    return float(summary.spent[hit[0]]) if len(hit) else math.inf


@dataclass
class Verdict:
    name: str
    passed: bool | None  # None: the set cannot show it (reason in `detail`)
    detail: str


def verdicts(policy: Summary, random: Summary) -> list[Verdict]:
    """The targets of a utility policy against random (docs/replay.md "Targets")."""
    out = []
    spent = policy.spent
    budget = float(spent[-1])
    # Pool answers: reach random's final accuracy with ≤ 60% of the labels; never below after 100.
    final = random.pool_mean[-1]
    need_u = labels_to_reach(policy, policy.pool_mean, final)
    after = spent >= 100
    below = np.flatnonzero(after & (policy.pool_mean < random.pool_mean - 1e-12))
    out.append(
        Verdict(
            "pool answers: random's final accuracy with ≤ 60% of the labels",
            need_u <= 0.6 * budget,
            f"random {final:.3f} at {budget:.0f} labels; {policy.policy} "
            + (
                f"reaches it at {need_u:.0f} ({need_u / budget:.0%} of the budget)"
                if math.isfinite(need_u)
                else f"does not reach it within the budget ({policy.pool_mean[-1]:.3f})"
            ),
        )
    )
    out.append(
        Verdict(
            "pool answers: never below random after the first 100 labels",
            len(below) == 0,
            "never below" if len(below) == 0 else f"below at {', '.join(str(int(spent[i])) for i in below[:6])} labels",
        )
    )
    # Risk positives in the first 20% of the budget: ≥ 2× random from the first batch on.
    if random.total_mean == 0:
        out.append(Verdict("risk found: ≥ 2× random in the first 20%", None, "the set has no risk positives"))
    else:
        # The first batch always counts, even when it is more than a fifth of the budget.
        early = np.flatnonzero((spent > 0) & ((spent <= 0.2 * budget + 1e-9) | (np.arange(len(spent)) == 1)))
        ratios = [policy.found_mean[i] / max(random.found_mean[i], 1e-9) for i in early]
        worst = min(ratios) if ratios else math.nan
        out.append(
            Verdict(
                "risk found: ≥ 2× random at every point of the first 20% of the budget",
                bool(ratios) and worst >= 2.0,
                ", ".join(
                    f"{int(spent[i])}: {policy.found_mean[i]:.1f} vs {random.found_mean[i]:.1f}" for i in early[:6]
                ),
            )
        )
    # Reward model: ≥ random at every point; random's final accuracy with ≤ 70% of random's labels.
    below = np.flatnonzero((spent > 0) & (policy.accuracy_mean < random.accuracy_mean - 1e-12))
    out.append(
        Verdict(
            "reward model: ≥ random at every budget point",
            len(below) == 0,
            "never below"
            if len(below) == 0
            else "below at "
            + ", ".join(
                f"{int(spent[i])} ({policy.accuracy_mean[i]:.3f} vs {random.accuracy_mean[i]:.3f})" for i in below[:5]
            ),
        )
    )
    final = random.accuracy_mean[-1]
    need_r = labels_to_reach(random, random.accuracy_mean, final)
    need_u = labels_to_reach(policy, policy.accuracy_mean, final)
    out.append(
        Verdict(
            "reward model: random's final accuracy with ≤ 70% of random's labels",
            need_u <= 0.7 * need_r,
            f"random reaches {final:.3f} at {need_r:.0f} labels, {policy.policy} "
            + (f"at {need_u:.0f}" if math.isfinite(need_u) else "not within the budget")
            + (f" ({need_u / need_r:.0%})" if need_r and math.isfinite(need_u) else ""),
        )
    )
    return out
