"""Monitoring figures: every figure of a campaign, computed from the feedback log.

`compute_report` reads the database with a handful of set-based queries and feeds the pure
functions of scoring.metrics; reviews.monitoring.snapshots stores the report.

Units of agreement: a per-response criterion is answered once per response (a response shown
by several items is one unit, as in reviews/leads/final_answers.py); other criteria once per item.
"""

import math
from collections import Counter, defaultdict
from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.utils import timezone

from reviews.campaigns.status import ALL_TAGS, final_answer_counts
from reviews.labeling.progress import gold_accuracy
from reviews.models import (
    Answer,
    Assignment,
    Campaign,
    Escalation,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
    Response,
    ScoringRun,
    Source,
)
from reviews.rubrics.definition import TIE
from scoring import metrics

THROUGHPUT_DAYS = 14
GUARDRAIL_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BOOTSTRAP_ROUNDS = 200
# Minimum shared units for a labeler pair's κ to be reported.
MIN_SHARED = 5


def _unit(criterion: str, response_id, item_id):
    return (criterion, response_id) if response_id is not None else (criterion, ("item", item_id))


class _Loaded:
    """The rows every figure is computed from, loaded once per report."""

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        version = campaign.rubric_version()
        self.criteria = {c.slug: c for c in version.parsed.criteria} if version else {}
        self.responses = {
            rid: (key, model)
            for rid, key, model in Response.objects.filter(prompt__campaign=campaign).values_list("id", "key", "model")
        }
        self.items = {
            iid: (a, b, tags or [], risk)
            for iid, a, b, tags, risk in Item.objects.filter(campaign=campaign).values_list(
                "id", "response_a_id", "response_b_id", "tags", "risk_prior"
            )
        }
        # One value per (annotator, unit): a labeler who saw a response in two items votes once on it.
        self.labels: dict[str, dict] = defaultdict(dict)  # kind -> {(annotator, unit): value}
        self.names: dict[int, str] = {}
        self.left: list[tuple] = []  # (left response id, item id, pairwise value, criterion) of app judgments
        rows = Answer.objects.filter(judgment__item__campaign=campaign).values_list(
            "judgment__annotator_id",
            "judgment__annotator__name",
            "judgment__kind",
            "criterion",
            "response_id",
            "judgment__item_id",
            "value",
            "judgment__left_response_id",
        )
        for annotator_id, name, kind, criterion, response_id, item_id, value, left in rows.iterator(chunk_size=5000):
            self.names[annotator_id] = name
            self.labels[kind][(name, _unit(criterion, response_id, item_id))] = value
            if left is not None and response_id is None and kind == LabelKind.HUMAN:
                crit = self.criteria.get(criterion)
                if crit is not None and crit.kind == "pairwise":
                    self.left.append((left, item_id, value, criterion))
        self.finals = {
            _unit(criterion, response_id, item_id): (value, basis)
            for criterion, response_id, item_id, value, basis in FinalAnswer.objects.filter(
                campaign=campaign
            ).values_list("criterion", "response_id", "item_id", "value", "basis")
        }

    def unit_items(self) -> dict:
        """{unit: [item ids that show it]} for every unit with a final answer."""
        by_response = defaultdict(list)
        for iid, (a, b, _, _) in self.items.items():
            by_response[a].append(iid)
            by_response[b].append(iid)
        out = {}
        for unit in self.finals:
            target = unit[1]
            out[unit] = [target[1]] if isinstance(target, tuple) else by_response.get(target, [])
        return out

    def unit_model(self, unit) -> str | None:
        target = unit[1]
        return None if isinstance(target, tuple) else self.responses.get(target, (None, None))[1]


# --- the figure groups --------------------------------------------------------------------


def overview(campaign: Campaign, now=None) -> dict:
    """Queue depth, budget burn, throughput, escalations and the last scoring run: a few COUNT queries."""
    now = now or timezone.now()
    s = campaign.settings
    open_q = Q(excluded=False, resolved=False, escalated=False)
    counts = Item.objects.filter(campaign=campaign).aggregate(
        items=Count("id"), open=Count("id", filter=open_q), resolved=Count("id", filter=Q(resolved=True))
    )
    if campaign.scoring_run_id:
        queue_depth = ItemScore.objects.filter(
            run_id=campaign.scoring_run_id,
            selected=True,
            item__resolved=False,
            item__excluded=False,
            item__escalated=False,
        ).count()
    else:
        queue_depth = counts["open"]
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=THROUGHPUT_DAYS - 1)
    human_app = Judgment.objects.filter(item__campaign=campaign, kind=LabelKind.HUMAN, source=Source.APP)
    # One pass over the campaign's judgments for the budget, then only the last 14 days' rows.
    spent = human_app.aggregate(all=Count("id"), today=Count("id", filter=Q(created_at__gte=midnight)))
    recent = list(human_app.filter(created_at__gte=start).values_list("created_at", "time_spent_ms"))
    per_day = metrics.throughput(
        np.array([t.timestamp() for t, _ in recent]), start.timestamp(), (midnight + timedelta(days=1)).timestamp()
    )
    days = [(start + timedelta(days=n)).date().isoformat() for n in range(THROUGHPUT_DAYS)]
    timing = metrics.time_per_judgment(ms for _, ms in recent)
    open_statuses = [Escalation.Status.OPEN, Escalation.Status.IN_REVIEW]
    escalations = Escalation.objects.filter(campaign=campaign)
    overdue_before = now - timedelta(hours=s.sla_hours)
    esc = escalations.aggregate(
        open=Count("id", filter=Q(status__in=open_statuses)),
        overdue=Count("id", filter=Q(status__in=open_statuses, created_at__lt=overdue_before)),
        total=Count("id"),
    )
    last_run = campaign.scoring_runs.order_by("-requested_at", "-id").first()
    return {
        "queue_depth": queue_depth,
        "open_items": counts["open"],
        "items": counts["items"],
        "resolved_items": counts["resolved"],
        "budget_total": s.budget_total,
        "budget_daily": s.budget_daily,
        "budget_spent": spent["all"],
        "budget_burn": spent["all"] / s.budget_total if s.budget_total else None,
        "spent_today": spent["today"],
        "daily_burn": spent["today"] / s.budget_daily if s.budget_daily else None,
        "throughput": [{"day": d, "judgments": n} for d, n in zip(days, per_day["counts"], strict=True)],
        "judgments_per_day": per_day["per_bucket"],
        "time_per_judgment": timing,
        "open_escalations": esc["open"],
        "overdue_escalations": esc["overdue"],
        "escalations_total": esc["total"],
        "sla_hours": s.sla_hours,
        "last_run": None
        if last_run is None
        else {
            "id": last_run.id,
            "status": last_run.status,
            "items": last_run.item_count,
            "requested_at": last_run.requested_at.isoformat(),
            "finished_at": last_run.finished_at.isoformat() if last_run.finished_at else None,
            "in_force": last_run.id == campaign.scoring_run_id,
        },
    }


def agreement(data: _Loaded) -> dict:
    """Per criterion over human annotators: Krippendorff's α, raw agreement, Cohen's κ per pair."""
    by_criterion: dict[str, dict] = defaultdict(lambda: defaultdict(dict))  # crit -> annotator -> unit -> value
    for (name, unit), value in data.labels.get(LabelKind.HUMAN, {}).items():
        by_criterion[unit[0]][name][unit] = value
    out = {}
    for criterion in sorted(by_criterion):
        per_annotator = by_criterion[criterion]
        units: dict = defaultdict(list)
        for answers in per_annotator.values():
            for unit, value in answers.items():
                units[unit].append(value)
        crit = data.criteria.get(criterion)
        level = "ordinal" if crit is not None and crit.kind == "scale" else "nominal"
        values = list(units.values())
        if level == "ordinal":
            values = [[int(v) for v in u] for u in values]
        kappas = metrics.pairwise_kappas(per_annotator, min_shared=MIN_SHARED)
        out[criterion] = {
            "krippendorff_alpha": metrics.krippendorff_alpha(values, level=level),
            "raw_agreement": metrics.raw_agreement(values),
            "cohen_kappa": {pair: k["kappa"] for pair, k in kappas.items()},
            "cohen_kappa_n": {pair: k["n"] for pair, k in kappas.items()},
            "level": level,
            "units": sum(1 for u in values if len(u) >= 2),
            "annotators": len(per_annotator),
        }
    return out


def labelers(data: _Loaded) -> list[dict]:
    """Per human annotator: answers, accuracy against final answers, overturn rate, gold accuracy."""
    per: dict[str, dict] = defaultdict(lambda: {"answers": 0, "compared": 0, "agree": 0, "adjudicated": []})
    for (name, unit), value in data.labels.get(LabelKind.HUMAN, {}).items():
        row = per[name]
        row["answers"] += 1
        final = data.finals.get(unit)
        if final is None:
            continue
        row["compared"] += 1
        row["agree"] += value == final[0]
        if final[1] == FinalAnswer.Basis.ADJUDICATION:
            row["adjudicated"].append((value, final[0]))
    users = dict(
        Judgment.objects.filter(item__campaign=data.campaign, kind=LabelKind.HUMAN, annotator__user__isnull=False)
        .values_list("annotator__name", "annotator__user")
        .distinct()
    )
    gold_items = Item.objects.filter(campaign=data.campaign, is_gold=True).exists()
    user_model = get_user_model()
    out = []
    for name in sorted(per):
        row = per[name]
        overturn = metrics.overturn_rate(row["adjudicated"])
        gold, gold_n = (None, 0)
        if gold_items and name in users:
            gold, gold_n = gold_accuracy(data.campaign, user_model(pk=users[name]))
        out.append(
            {
                "annotator": name,
                "answers": row["answers"],
                "compared": row["compared"],
                "accuracy": row["agree"] / row["compared"] if row["compared"] else None,
                "adjudicated": overturn["n"],
                "overturned": overturn["overturned"],
                "overturn_rate": overturn["estimate"],
                "overturn_low": overturn["low"],
                "overturn_high": overturn["high"],
                "gold_accuracy": gold,
                "gold_compared": gold_n,
            }
        )
    return out


def position_bias(data: _Loaded) -> dict:
    """Per pairwise criterion: share of decisive human choices (made in the app) for the left-hand response."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for left, _item_id, value, criterion in data.left:
        if value == TIE:
            continue
        counts[criterion][1] += 1
        counts[criterion][0] += data.responses.get(left, (None,))[0] == value
    return {c: metrics.position_bias(*counts[c]) for c in sorted(counts)}


def slices(campaign: Campaign) -> tuple[dict, dict]:
    """Final answers per criterion × model × tag: (shares, counts), reusing reviews.campaigns.status."""
    counts = final_answer_counts(campaign)
    shares = {
        criterion: {
            model: {tag: {v: n / sum(c.values()) for v, n in c.items()} for tag, c in by_tag.items()}
            for model, by_tag in by_model.items()
        }
        for criterion, by_model in counts.items()
    }
    return shares, counts


def _detector_positive(criterion) -> list[str]:
    """Default positive class of a choice criterion as a detector: every option but the first.

    For the compliance rubric that is "refusal" (full or partial), for a yes/no harm question "yes".
    """
    return [o.value for o in criterion.options[1:]]


def automated_labelers(data: _Loaded, selection: dict) -> tuple[dict, list[dict]]:
    """Each model annotator against the final answers: per option one-vs-rest, and as a grouped detector."""
    pairs: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))  # name -> crit -> [(pred, final, unit)]
    for (name, unit), value in data.labels.get(LabelKind.MODEL, {}).items():
        final = data.finals.get(unit)
        if final is not None:
            pairs[name][unit[0]].append((value, final[0], unit))
    one_vs_rest, detectors = {}, []
    for name in sorted(pairs):
        one_vs_rest[name] = {}
        for criterion in sorted(pairs[name]):
            rows = pairs[name][criterion]
            predicted = [p for p, _, _ in rows]
            actual = [a for _, a, _ in rows]
            crit = data.criteria.get(criterion)
            options = [o.value for o in crit.options] if crit is not None and crit.options else sorted(set(actual))
            rates = metrics.one_vs_rest(predicted, actual, options)
            one_vs_rest[name][criterion] = {
                option: {k: r[k] for k in ("fpr", "fnr", "precision", "recall", "n")} for option, r in rates.items()
            }
            if crit is None or crit.kind != "choice" or len(crit.options) < 2:
                continue
            positive = set(_detector_positive(crit))
            pred = np.array([p in positive for p in predicted])
            act = np.array([a in positive for a in actual])
            rates = metrics.confusion_rates(pred, act)
            weights = np.array([selection["unit_probability"].get(u, 1.0) for _, _, u in rows])
            fnr_pool = metrics.ipw_proportion(~pred[act], weights[act])
            fpr_pool = metrics.ipw_proportion(pred[~act], weights[~act])
            detectors.append(
                {
                    "annotator": name,
                    "criterion": criterion,
                    "positive": sorted(positive),
                    **rates,
                    "fnr_pool": fnr_pool["estimate"],
                    "fnr_pool_low": fnr_pool["low"],
                    "fnr_pool_high": fnr_pool["high"],
                    "fpr_pool": fpr_pool["estimate"],
                    "fpr_pool_low": fpr_pool["low"],
                    "fpr_pool_high": fpr_pool["high"],
                }
            )
    return one_vs_rest, detectors


def _risky_items(data: _Loaded) -> dict[int, bool]:
    """Item → True when a final answer of a risk criterion for it (or its responses) is a risk option,
    False when every risk criterion is decided for it without one; undecided items are left out."""
    risk_criteria = [c for c in data.criteria.values() if c.risk_values]
    out = {}
    for iid, (a, b, _, _) in data.items.items():
        decided, risky = True, False
        for c in risk_criteria:
            units = [_unit(c.slug, a, None), _unit(c.slug, b, None)] if c.per_response else [_unit(c.slug, None, iid)]
            for unit in units:
                final = data.finals.get(unit)
                if final is None:
                    decided = False
                elif final[0] in c.risk_values:
                    risky = True
        if risk_criteria and (risky or decided):
            out[iid] = risky
    return out


def guardrails(data: _Loaded, campaign: Campaign) -> dict:
    """The upstream risk prior as a detector at each threshold, and the risk rule's precision."""
    risky = _risky_items(data)
    with_prior = [(data.items[i][3], r) for i, r in risky.items() if data.items[i][3] is not None]
    thresholds = sorted({*GUARDRAIL_THRESHOLDS, campaign.settings.tau_risk})
    rows = []
    if with_prior:
        prior = np.array([p for p, _ in with_prior])
        actual = np.array([r for _, r in with_prior])
        for t in thresholds:
            rates = metrics.confusion_rates(prior >= t, actual)
            rows.append({"source": "risk_prior", "threshold": t, **rates})
    fired = [
        item_id
        for item_id, rules in Escalation.objects.filter(campaign=campaign).values_list("item_id", "rules")
        if any("risk" in str(rule.get("rule", "")) for rule in (rules or []) if isinstance(rule, dict))
    ]
    judged = [risky[i] for i in fired if i in risky]
    rule = metrics.proportion(sum(judged), len(judged))
    calibration = {"bins": [], "ece": None, "brier": None, "n": 0}
    if campaign.scoring_run_id and risky:
        scores = dict(
            ItemScore.objects.filter(run_id=campaign.scoring_run_id, item_id__in=list(risky)).values_list(
                "item_id", "risk"
            )
        )
        ids = [i for i in risky if i in scores]
        calibration = metrics.calibration(np.array([scores[i] for i in ids]), np.array([risky[i] for i in ids]))
    return {
        "thresholds": rows,
        "risk_rule_precision": rule,
        "risk_rule_escalations": len(fired),
        "risk_calibration": calibration,
        "risky_items": sum(risky.values()),
        "decided_items": len(risky),
    }


def selection_info(data: _Loaded, campaign: Campaign) -> dict:
    """How each decided unit was chosen: audit or utility, and its inclusion probability.

    An item's served leases say why it was chosen; a unit (a response) shown by several items
    takes the highest probability among them and counts as audit when any was an audit pick.
    Items that were never served (imported with their labels) are a census: probability 1.
    """
    served: dict[int, tuple[bool, bool, float]] = {}
    for item_id, reason, probability in Assignment.objects.filter(item__campaign=campaign).values_list(
        "item_id", "reason", "selection_probability"
    ):
        audit, utility, p = served.get(item_id, (False, False, 0.0))
        served[item_id] = (
            audit or reason == Assignment.Reason.AUDIT,
            utility or reason == Assignment.Reason.UTILITY,
            max(p, probability if probability is not None else 1.0),
        )
    sampled = any(a or u for a, u, _ in served.values())
    unit_probability, unit_audit, unit_utility = {}, {}, {}
    for unit, item_ids in data.unit_items().items():
        info = [served[i] for i in item_ids if i in served]
        unit_audit[unit] = any(a for a, _, _ in info)
        unit_utility[unit] = any(u for _, u, _ in info) and not unit_audit[unit]
        unit_probability[unit] = max((p for _, _, p in info), default=1.0) or 1.0
    return {
        "mode": "sample" if sampled else "census",
        "unit_probability": unit_probability,
        "unit_audit": unit_audit,
        "unit_utility": unit_utility,
    }


def pool_estimates(data: _Loaded, selection: dict) -> list[dict]:
    """Share of each final answer value per choice criterion and tag, as a pool-level estimate.

    Beside the raw share on the utility-chosen units: the audit-sample share (Wilson interval) and
    the inverse-probability-weighted share over every decided unit (Hájek, Wilson interval at
    Kish's effective n). An imported pool with no served items is a census: the share is the
    pool's, its interval the binomial one of a draw of that size.
    """
    unit_tags: dict = defaultdict(set)
    for unit, item_ids in data.unit_items().items():
        for i in item_ids:
            unit_tags[unit].update(data.items[i][2])
    rows = []
    for slug, crit in data.criteria.items():
        if crit.kind != "choice":
            continue
        units = [u for u in data.finals if u[0] == slug]
        tags = sorted({t for u in units for t in unit_tags[u]})
        for tag in (ALL_TAGS, *tags):
            chosen = [u for u in units if tag == ALL_TAGS or tag in unit_tags[u]]
            if not chosen:
                continue
            values = np.array([data.finals[u][0] for u in chosen])
            probability = np.array([selection["unit_probability"].get(u, 1.0) for u in chosen])
            audit = np.array([selection["unit_audit"].get(u, False) for u in chosen])
            utility = np.array([selection["unit_utility"].get(u, False) for u in chosen])
            for option in crit.options:
                y = values == option.value
                raw = metrics.proportion(int(y[utility].sum()), int(utility.sum()))
                sample = metrics.proportion(int(y[audit].sum()), int(audit.sum()))
                ipw = metrics.ipw_proportion(y, probability)
                rows.append(
                    {
                        "criterion": slug,
                        "tag": tag,
                        "value": option.value,
                        "units": len(chosen),
                        "raw_utility": raw["estimate"],
                        "raw_n": raw["n"],
                        "audit": sample["estimate"],
                        "audit_low": sample["low"],
                        "audit_high": sample["high"],
                        "audit_n": sample["n"],
                        "ipw": ipw["estimate"],
                        "ipw_low": ipw["low"],
                        "ipw_high": ipw["high"],
                        "ipw_n_eff": ipw.get("n_eff"),
                    }
                )
    return rows


def leaderboard(data: _Loaded, rng: np.random.Generator) -> tuple[dict, dict, dict]:
    """Bradley-Terry strengths per pairwise criterion from the final answers, with bootstrap intervals.

    A criterion without pairwise final answers falls back to the automated labelers' labels
    (as AlpacaEval's judge), and says so in the returned sources. The third value ranks the
    models by each automated labeler's own labels ({annotator: {criterion: rows}}), to set a
    judge's leaderboard beside the humans'.
    """
    out, sources, by_annotator = {}, {}, defaultdict(dict)
    model_labels = data.labels.get(LabelKind.MODEL, {})
    for slug, crit in data.criteria.items():
        if crit.kind != "pairwise":
            continue
        judged = defaultdict(list)
        for (name, unit), value in model_labels.items():
            if unit[0] == slug:
                judged[name].append((unit[1][1], value))
        outcomes = [(unit[1][1], final[0]) for unit, final in data.finals.items() if unit[0] == slug]
        source = "final answers"
        if not outcomes and judged:
            outcomes = [o for name in sorted(judged) for o in judged[name]]
            source = "model labels: " + ", ".join(sorted(judged))
        rows = _board(data, outcomes, rng)
        if rows:
            out[slug], sources[slug] = rows, source
        for name in sorted(judged):
            rows = _board(data, judged[name], rng)
            if rows:
                by_annotator[name][slug] = rows
    return out, sources, dict(by_annotator)


def _board(data: _Loaded, outcomes, rng: np.random.Generator) -> list[dict]:
    """Leaderboard rows, strongest first, from (item id, pairwise value) outcomes."""
    models, winners, losers, ties = {}, [], [], []
    for item_id, value in outcomes:
        a, b, _, _ = data.items[item_id]
        (key_a, model_a), (key_b, model_b) = data.responses[a], data.responses[b]
        if value == TIE:
            first, second, tie = model_a, model_b, True
        elif value == key_a:
            first, second, tie = model_a, model_b, False
        elif value == key_b:
            first, second, tie = model_b, model_a, False
        else:
            continue  # a value that names neither response (a stale key): left out
        if first == second:
            continue
        winners.append(models.setdefault(first, len(models)))
        losers.append(models.setdefault(second, len(models)))
        ties.append(tie)
    if not models:
        return []
    fit = metrics.bradley_terry_intervals(
        np.array(winners), np.array(losers), len(models), rng, ties=np.array(ties), rounds=BOOTSTRAP_ROUNDS
    )
    record = Counter()
    for w, lo, t in zip(winners, losers, ties, strict=True):
        if t:
            record[(w, "ties")] += 1
            record[(lo, "ties")] += 1
        else:
            record[(w, "wins")] += 1
            record[(lo, "losses")] += 1
    rows = [
        {
            "model": model,
            "strength": float(fit["strength"][i]),
            "low": float(fit["low"][i]),
            "high": float(fit["high"][i]),
            "wins": record[(i, "wins")],
            "losses": record[(i, "losses")],
            "ties": record[(i, "ties")],
        }
        for model, i in models.items()
    ]
    return sorted(rows, key=lambda r: (-r["strength"], r["model"]))


def escalation_figures(campaign: Campaign) -> dict:
    """Escalations by reason and by rule, and their rate per judged item."""
    by_reason = Counter()
    by_rule = Counter()
    for reason, rules in Escalation.objects.filter(campaign=campaign).values_list("reason", "rules"):
        by_reason[reason] += 1
        for rule in rules or []:
            if isinstance(rule, dict):
                by_rule[str(rule.get("rule", ""))] += 1
    judged = Item.objects.filter(campaign=campaign, human_judgments__gt=0).count()
    return {
        "judged_items": judged,
        "by_reason": [
            {"reason": r, "count": n, "rate": n / judged if judged else None} for r, n in sorted(by_reason.items())
        ],
        "by_rule": [
            {"rule": r, "count": n, "rate": n / judged if judged else None} for r, n in sorted(by_rule.items())
        ],
    }


def scoring_figures(campaign: Campaign) -> dict:
    """Utility distribution of the run in force, and timings and model accuracy per run."""
    utility = np.array(
        list(ItemScore.objects.filter(run_id=campaign.scoring_run_id).values_list("utility", flat=True))
        if campaign.scoring_run_id
        else [],
        dtype=float,
    )
    hist = metrics.histogram(utility, bins=20, value_range=(0.0, max(3.0, float(utility.max()) if utility.size else 0)))
    runs = []
    for run in campaign.scoring_runs.filter(status=ScoringRun.Status.SUCCEEDED).order_by("requested_at", "id"):
        m = run.metrics or {}
        runs.append(
            {
                "run": run.id,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "items": run.item_count,
                "trigger": run.trigger,
                "seconds": sum(v for v in (run.timings or {}).values() if isinstance(v, int | float)),
                "timings": run.timings or {},
                "reward_accuracy": m.get("reward_held_out_accuracy"),
                "risk_accuracy": m.get("risk_held_out_accuracy"),
                "selected": m.get("selected"),
                "audit": m.get("audit"),
            }
        )
    edges = hist["edges"]
    return {
        "utility": metrics.summary(utility),
        "utility_histogram": [
            {"low": edges[i], "high": edges[i + 1], "items": n} for i, n in enumerate(hist["counts"])
        ],
        "runs": runs,
    }


def _finite(value):
    """NaN and infinities become None: JSON (and PostgreSQL's jsonb) has no place for them."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compute_report(campaign: Campaign, *, now=None, seed: int = 0) -> dict:
    """Every monitoring figure of a campaign (what `metrics SLUG --json` prints and the dashboards show)."""
    return _finite(_report(campaign, now=now or timezone.now(), seed=seed))


def _report(campaign: Campaign, *, now, seed: int) -> dict:
    data = _Loaded(campaign)
    selection = selection_info(data, campaign)
    rng = np.random.default_rng(seed)
    shares, counts = slices(campaign)
    one_vs_rest, detectors = automated_labelers(data, selection)
    board, board_sources, judge_boards = leaderboard(data, rng)
    return {
        "campaign": campaign.slug,
        "computed_at": now.isoformat(),
        "rubric_version": getattr(campaign.rubric_version(), "number", None),
        "settings_version": campaign.settings.number,
        "scoring_run": campaign.scoring_run_id,
        "judgments": Judgment.objects.filter(item__campaign=campaign).count(),
        "overview": overview(campaign, now),
        "agreement": agreement(data),
        "labelers": labelers(data),
        "position_bias": position_bias(data),
        "escalations": escalation_figures(campaign),
        "slices": shares,
        "slice_counts": counts,
        "selection_mode": selection["mode"],
        "pool_estimates": pool_estimates(data, selection),
        "automated_labelers": one_vs_rest,
        "detectors": detectors,
        "guardrails": guardrails(data, campaign),
        "leaderboard": board,
        "leaderboard_source": board_sources,
        "leaderboard_by_annotator": judge_boards,
        "scoring": scoring_figures(campaign),
    }
