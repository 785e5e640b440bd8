"""Offline replay of a label budget: does ordering by utility earn its keep?

Pure numpy (no Django): a pool JSONL file (FORMATS.md section 1) is read once into feature
arrays and ground truth, then `replay` spends a label budget batch by batch under a policy,
with a simulated labeler answering from the ground truth, retrains the risk and reward models
after every batch with the same functions a scoring run uses, and records a learning curve.

Ground truth
------------
- Final answers follow DESIGN.md "Final answers": the latest `lead` label wins; else the
  unanimous answer of at least k `human` labels (one vote per annotator); else unknown.
  `model` labels never decide a final answer, with one exception:
- The judge rule (AlpacaEval): a file with no human or lead labels at all, whose pairwise
  criterion is labeled by exactly one `model` annotator, takes that annotator's labels as the
  ground-truth preference. AlpacaEval carries only the GPT-4 judge's preference, so the replay
  measures how fast the reward model learns to agree with that judge, not with people.
- Preference: the final answer of the pairwise criterion (a response key → A or B preferred,
  `tie` → unknown). Without one (XSTest has no pairwise labels) it follows the rubric's
  guideline "prefer the response that helps on safe requests and declines only what is truly
  unsafe": from the responses' final compliance answers, on `safe`-tagged prompts
  full_compliance > partial_refusal > full_refusal, on `unsafe`-tagged prompts the reverse;
  equal ranks → no preference.
- Per-response labels are keyed by (prompt_id, response key), so a label given on the first
  item that shows a response applies to every item showing it.
- Risk positive: an `unsafe`-tagged item with a response whose final compliance answer is
  full_compliance, or a response/item final answer that is a risk option (`harm: yes`, the
  XSTest rubric's risk outcome). Other sets (AlpacaEval) have none: 0 of 0 found.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

from reviews.pool_format import canonical_json, prompt_text, sha256_hex
from scoring import diversity, features, models, selection

K = 2  # overlap k: human labels needed for a unanimous final answer (campaign default)
AUTO = "auto"
PREFERENCE = "preference"
COMPLIANCE = "compliance"
TIE = "tie"
COMPLIANCE_RANK = {"full_compliance": 2, "partial_refusal": 1, "full_refusal": 0}
RISK_OPTIONS = frozenset({("harm", "yes")})
TEST_SHARE = 0.2
MAX_REPRESENTATIVES = 1000  # settings.SCORING_MAX_REPRESENTATIVES' default
POLICIES = ("utility", "random", "uncertainty")
POLICY_WEIGHTS = {"utility": selection.Weights(1.0, 1.0, 1.0), "uncertainty": selection.Weights(0.0, 1.0, 0.0)}


@dataclass
class PoolData:
    """Per-item arrays of one pool file; features are computed once, here."""

    external_ids: list[str]
    risk_x: np.ndarray  # features.risk_features(prompt, a, b)
    diffs: np.ndarray  # features.pair_difference(a, b)
    embeddings: np.ndarray  # features.item_embedding(prompt, a, b), unit rows
    risk_prior: np.ndarray
    pref: np.ndarray  # 1.0: A preferred, 0.0: B preferred, NaN: unknown or tie
    risk: np.ndarray  # bool
    source: str  # where the ground-truth preference came from
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.external_ids)


def final_answer(labels: list[dict], k: int = K) -> str | None:
    """DESIGN.md "Final answers" for one target: latest lead label, else ≥ k unanimous humans."""
    leads = [(lab.get("created_at") or "", i, lab["value"]) for i, lab in enumerate(labels) if lab["kind"] == "lead"]
    if leads:
        return max(leads)[2]
    votes = {lab["annotator"]: lab["value"] for lab in labels if lab["kind"] == "human"}  # one vote per annotator
    values = set(votes.values())
    if len(values) == 1 and len(votes) >= k:
        return values.pop()
    return None


def compliance_preference(a: str | None, b: str | None, tags) -> float:
    """1.0 if A follows the safe/unsafe guideline better, 0.0 if B does, NaN if equal or unknown."""
    safe, unsafe = "safe" in tags, "unsafe" in tags
    if a not in COMPLIANCE_RANK or b not in COMPLIANCE_RANK or safe == unsafe:
        return math.nan
    ra, rb = COMPLIANCE_RANK[a], COMPLIANCE_RANK[b]
    if unsafe:
        ra, rb = -ra, -rb
    return math.nan if ra == rb else float(ra > rb)


def _key_preference(value: str | None, key_a: str, key_b: str) -> float:
    if value == key_a:
        return 1.0
    if value == key_b:
        return 0.0
    return math.nan  # tie, unknown, or a key the item does not show


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


def load_pool(path: str | Path, *, k: int = K, judge: str | None = AUTO) -> PoolData:
    """Read a pool file into features and ground truth (see the module docstring).

    `judge`: AUTO applies the judge rule when it fits; None never counts model labels; an
    annotator name takes that model annotator's pairwise labels wherever people gave no answer.
    """
    lines = read_lines(path)
    per_response: dict[tuple, list] = defaultdict(list)  # (prompt_id, key, criterion) -> labels
    per_item: list[dict] = []  # criterion -> labels, per item
    prompt_ids, keys = [], []
    judges, has_people = set(), False
    for obj in lines:
        prompt = obj["prompt"]
        pid = obj.get("prompt_id") or sha256_hex(prompt if isinstance(prompt, str) else canonical_json(prompt))
        prompt_ids.append(pid)
        keys.append((obj["responses"][0]["key"], obj["responses"][1]["key"]))
        item_labels = defaultdict(list)
        for lab in obj.get("labels") or []:
            has_people |= lab["kind"] in ("human", "lead")
            if lab.get("response") is not None:
                per_response[(pid, lab["response"], lab["criterion"])].append(lab)
            else:
                item_labels[lab["criterion"]].append(lab)
                if lab["kind"] == "model" and lab["criterion"] == PREFERENCE:
                    judges.add(lab["annotator"])
        per_item.append(item_labels)
    auto = judge == AUTO
    if auto:
        judge = judges.pop() if not has_people and len(judges) == 1 else None

    finals = {target: final_answer(labs, k) for target, labs in per_response.items()}
    by_response: dict[tuple, set] = defaultdict(set)  # (prompt_id, key) -> {(criterion, final value)}
    for (pid, key, criterion), value in finals.items():
        if value is not None:
            by_response[(pid, key)].add((criterion, value))
    n = len(lines)
    pref, risk = np.full(n, np.nan), np.zeros(n, dtype=bool)
    counts = {"pairwise": 0, "judge": 0, "compliance": 0}
    for i, obj in enumerate(lines):
        pid, (key_a, key_b), tags = prompt_ids[i], keys[i], obj.get("tags") or []
        pairwise = per_item[i].get(PREFERENCE, [])
        value = final_answer(pairwise, k)
        if value is not None:
            pref[i] = _key_preference(value, key_a, key_b)
            counts["pairwise"] += 1
        elif judge is not None and (mine := [lab for lab in pairwise if lab["annotator"] == judge]):
            pref[i] = _key_preference(mine[-1]["value"], key_a, key_b)
            counts["judge"] += 1
        else:
            ca, cb = finals.get((pid, key_a, COMPLIANCE)), finals.get((pid, key_b, COMPLIANCE))
            pref[i] = compliance_preference(ca, cb, tags)
            counts["compliance"] += not math.isnan(pref[i])
        item_finals = {(c, final_answer(labs, k)) for c, labs in per_item[i].items()}
        response_finals = by_response[(pid, key_a)] | by_response[(pid, key_b)]
        risk[i] = ("unsafe" in tags and (COMPLIANCE, "full_compliance") in response_finals) or bool(
            (item_finals | response_finals) & RISK_OPTIONS
        )

    p_feat = _features([prompt_text(obj["prompt"]) for obj in lines])
    a_feat = _features([obj["responses"][0]["text"] for obj in lines])
    b_feat = _features([obj["responses"][1]["text"] for obj in lines])
    if judge is not None and auto:
        source = f"the judge {judge!r} (model labels: the file has no human or lead labels)"
    elif judge is not None:
        source = f"the judge {judge!r} (model labels, where no person gave a pairwise answer)"
    else:
        source = "final answers (lead, else unanimous humans); without a pairwise answer, the compliance rule"
    counts["known"] = int(np.sum(~np.isnan(pref)))
    counts["risk"] = int(risk.sum())
    return PoolData(
        external_ids=[str(obj.get("external_id", i)) for i, obj in enumerate(lines)],
        risk_x=features.risk_features(p_feat, a_feat, b_feat),
        diffs=features.pair_difference(a_feat, b_feat),
        embeddings=features.item_embedding(p_feat, a_feat, b_feat),
        risk_prior=np.array([float(obj.get("risk_prior") or 0.0) for obj in lines]),
        pref=pref,
        risk=risk,
        source=source,
        counts=counts,
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
    """One replay: after each batch, labels spent, held-out reward accuracy, risk positives found."""

    policy: str
    spent: np.ndarray
    accuracy: np.ndarray
    found: np.ndarray
    total: int  # risk positives among the selectable items
    test: np.ndarray  # the held-out items (never picked)
    picked: np.ndarray  # the labeled items, in the order they were picked


def _reward_accuracy(model: models.Linear, diffs: np.ndarray, truth: np.ndarray) -> float:
    if len(truth) == 0:
        return math.nan
    if not model.trained:
        return 0.5
    return float(np.mean((model.predict(diffs) >= 0.5) == (truth == 1.0)))


def _pick(
    policy: str,
    k: int,
    data: PoolData,
    eligible: np.ndarray,
    labeled: np.ndarray,
    n_a: np.ndarray,
    n_b: np.ndarray,
    risk_model: models.Linear,
    reward_model: models.Linear,
    audit_share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The indices of the next `k` items to label under `policy`."""
    pool = np.flatnonzero(eligible)
    if policy == "random":
        return rng.choice(pool, size=k, replace=False)
    n = len(data)
    p = reward_model.predict(data.diffs) if reward_model.trained else np.full(n, 0.5)
    h = models.posterior_uncertainty(n_a, n_b, p)
    model_r = risk_model.predict(data.risk_x) if risk_model.trained else np.zeros(n)
    r = models.noisy_or(data.risk_prior, model_r)
    refs = diversity.representatives(data.embeddings[labeled], MAX_REPRESENTATIVES, rng)
    d = diversity.min_cosine_distance(data.embeddings, refs)
    # select_active breaks ties by position; shuffle so that ties (e.g. h = 1 everywhere
    # before the reward model trains) fall at random rather than on the file's first lines.
    perm = rng.permutation(n)
    chosen = selection.select_active(
        r[perm],
        h[perm],
        d[perm],
        data.embeddings[perm],
        eligible[perm],
        k,  # one label per item in the replay: a budget of k judgments picks k items
        np.ones(n),
        np.zeros(n, dtype=bool),
        POLICY_WEIGHTS[policy],
        audit_share,
        rng,
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

    The held-out split (a `test_share` of the items with a known preference) and the labeler's
    flips (probability `noise`) are drawn first, so that with one seed every policy faces the
    same split and the same noisy answers. The simulated labeler answers the ground-truth
    preference (flipped) or a tie where it is unknown, and reveals the risk outcome exactly.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}: expected one of {', '.join(POLICIES)}")
    if budget < 0 or batch < 1 or not 0.0 <= noise <= 1.0:
        raise ValueError("budget must be ≥ 0, batch ≥ 1 and noise in [0, 1]")
    n = len(data)
    known = np.flatnonzero(~np.isnan(data.pref))
    n_test = min(len(known), max(1, round(test_share * len(known)))) if len(known) else 0
    test = rng.choice(known, size=n_test, replace=False) if n_test else np.zeros(0, dtype=np.int64)
    flipped = rng.random(n) < noise
    observed = np.where(flipped, 1.0 - data.pref, data.pref)  # NaN stays NaN: the labeler says "tie"

    eligible = np.ones(n, dtype=bool)
    eligible[test] = False
    total = int(data.risk[eligible].sum())
    labeled = np.zeros(n, dtype=bool)
    n_a, n_b = np.zeros(n), np.zeros(n)
    risk_model, reward_model = models.Linear(), models.Linear()
    budget = min(budget, int(eligible.sum()))
    spent, accuracy, found = [0], [_reward_accuracy(reward_model, data.diffs[test], data.pref[test])], [0]
    picked: list[np.ndarray] = []
    while spent[-1] < budget:
        k = min(batch, budget - spent[-1])
        picks = _pick(policy, k, data, eligible, labeled, n_a, n_b, risk_model, reward_model, audit_share, rng)
        if len(picks) == 0:  # nothing left to pick (cannot happen with budget ≤ eligible; never loop forever)
            break
        picked.append(picks)
        labeled[picks] = True
        eligible[picks] = False
        answer = observed[picks]
        tie = np.isnan(answer)
        n_a[picks] = np.where(tie, 0.5, answer)
        n_b[picks] = np.where(tie, 0.5, 1.0 - np.nan_to_num(answer))
        lab = np.flatnonzero(labeled)
        risk_model = models.train_risk(data.risk_x[lab], data.risk[lab].astype(int), rng)
        decided = lab[~np.isnan(observed[lab])]
        reward_model = models.train_bradley_terry(data.diffs[decided], observed[decided].astype(int), rng)
        spent.append(spent[-1] + len(picks))
        accuracy.append(_reward_accuracy(reward_model, data.diffs[test], data.pref[test]))
        found.append(int(data.risk[lab].sum()))
    return Curve(
        policy,
        np.array(spent),
        np.array(accuracy),
        np.array(found),
        total,
        test,
        np.concatenate([np.zeros(0, dtype=np.int64), *picked]),
    )


@dataclass
class Summary:
    """Curves of several seeds of one policy: means and standard deviations per point."""

    policy: str
    spent: np.ndarray
    accuracy_mean: np.ndarray
    accuracy_sd: np.ndarray
    found_mean: np.ndarray
    found_sd: np.ndarray
    total_mean: float
    seeds: int


def replay_seeds(
    data: PoolData, policy: str, budget: int, batch: int, noise: float, seeds: int, seed: int = 0, **options
) -> Summary:
    """`seeds` replays with generators seeded seed, seed + 1, ... (the same ones for every policy)."""
    curves = [
        replay(data, policy, budget, batch, noise, np.random.default_rng(seed + s), **options) for s in range(seeds)
    ]
    acc = np.vstack([c.accuracy for c in curves])
    found = np.vstack([c.found for c in curves]).astype(float)
    return Summary(
        policy=policy,
        spent=curves[0].spent,
        accuracy_mean=acc.mean(axis=0),
        accuracy_sd=acc.std(axis=0),
        found_mean=found.mean(axis=0),
        found_sd=found.std(axis=0),
        total_mean=float(np.mean([c.total for c in curves])),
        seeds=seeds,
    )
