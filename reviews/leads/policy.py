"""The escalation rules of DESIGN.md ("Escalation policy") as pure functions (no Django).

reviews.leads.escalation gathers the inputs from the database (set-based) and calls these; each
rule returns the record stored in `Escalation.rules` when it fires, else None.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Thresholds are inclusive ("≥ τ", "≤ τ"); floating-point noise must not move an edge.
EPS = 1e-9

MANUAL = "manual"
RISK = "risk"
DISAGREEMENT = "disagreement"
CONFIDENCE = "confidence"
REVISION = "revision"
RULE_LABELS = {
    MANUAL: "Escalated by hand",
    RISK: "High risk",
    DISAGREEMENT: "Labelers disagree",
    CONFIDENCE: "Low confidence",
    REVISION: "Adjudication revised",
}


@dataclass(frozen=True)
class Thresholds:
    """A campaign settings version's thresholds (tau_conf on the 1-5 confidence scale)."""

    tau_risk: float
    tau_disagree: float
    tau_conf: float
    k: int


def normalized_entropy(counts: Iterable[int], n_values: int) -> float:
    """Vote entropy divided by the largest entropy n votes over n_values answers can reach.

    The maximum is log2(min(n, n_values)), so any even split of two votes is 1.0 and unanimity 0.0.
    """
    counts = [c for c in counts if c > 0]
    n = sum(counts)
    cap = math.log2(min(n, n_values)) if n and n_values > 1 else 0.0
    if len(counts) < 2 or cap <= 0:
        return 0.0
    entropy = -sum((c / n) * math.log2(c / n) for c in counts)
    return min(1.0, entropy / cap)


def confidence_on_scale(confidence01: float) -> float:
    """A stored 0..1 confidence on the app's 1-5 scale: c = 1 + 4·x."""
    return 1 + 4 * confidence01


def risk_rule(risk: float | None, human_judgments: int, t: Thresholds) -> dict | None:
    """Rule 2: r_i ≥ τ_risk once the item has a (human) label."""
    if risk is None or human_judgments < 1 or risk < t.tau_risk - EPS:
        return None
    return {"rule": RISK, "value": round(risk, 6), "threshold": t.tau_risk}


def disagreement_rule(
    votes: Mapping[tuple, Mapping[str, int]], n_values: Mapping[str, int], human_judgments: int, t: Thresholds
) -> dict | None:
    """Rule 3: after k judgments, the largest normalized vote entropy over the open questions ≥ τ_disagree.

    `votes` maps (criterion, target) to {value: distinct human voters}; pass only questions no
    lead has adjudicated. `n_values` gives how many answers each criterion allows.
    """
    if human_judgments < t.k:
        return None
    worst, worst_key = 0.0, None
    for key in sorted(votes, key=repr):
        h = normalized_entropy(votes[key].values(), n_values.get(key[0], 2))
        if h > worst:
            worst, worst_key = h, key
    if worst_key is None or worst < t.tau_disagree - EPS:
        return None
    return {
        "rule": DISAGREEMENT,
        "value": round(worst, 6),
        "threshold": t.tau_disagree,
        "criterion": worst_key[0],
        "votes": dict(sorted(votes[worst_key].items())),
    }


def confidence_rule(confidences01: Iterable[float | None], t: Thresholds) -> dict | None:
    """Rule 4: the mean human confidence (1-5 scale) ≤ τ_conf; judgments without one are left out."""
    given = [c for c in confidences01 if c is not None]
    return mean_confidence_rule(sum(given) / len(given), len(given), t) if given else None


def mean_confidence_rule(mean01: float | None, n: int, t: Thresholds) -> dict | None:
    """Rule 4 from an already averaged stored confidence (0..1) over n judgments that gave one."""
    if mean01 is None or n < 1:
        return None
    mean = confidence_on_scale(mean01)
    if mean > t.tau_conf + EPS:
        return None
    return {"rule": CONFIDENCE, "value": round(mean, 6), "threshold": t.tau_conf, "judgments": n}


def criterion_value_count(kind: str, *, options: int = 0, allow_tie: bool = False, lo=None, hi=None) -> int:
    """How many distinct answers a criterion allows (the entropy normalizer)."""
    if kind == "pairwise":
        return 3 if allow_tie else 2
    if kind == "choice":
        return options
    return int(hi) - int(lo) + 1


def describe(rules: Iterable[Mapping]) -> str:
    """A short human text for a list of fired rules ("High risk 0.91 ≥ 0.8; Low confidence 1.5 ≤ 2")."""
    parts = []
    for r in rules:
        name = RULE_LABELS.get(r.get("rule"), str(r.get("rule")))
        value, threshold = r.get("value"), r.get("threshold")
        if r.get("rule") == MANUAL:
            parts.append(name)  # the reason is shown beside it
            continue
        if r.get("rule") == REVISION or threshold is None:
            parts.append(f"{name}" + (f": {value}" if value else ""))
            continue
        op = "≤" if r.get("rule") == CONFIDENCE else "≥"
        detail = f" on {r['criterion']}" if r.get("criterion") else ""
        parts.append(f"{name}{detail} {float(value):.2f} {op} {float(threshold):g}")
    return "; ".join(parts)
