"""Escalations: the policy rules over the pool, opening one, and the leads' queue.

The state machine a lead drives (open → in review → resolved | dismissed, release, reopen) is
the model's: `Escalation.transition` (reviews/models/labels.py) checks each move and writes its
FeedbackEvent; `claim`, `release`, `dismiss` and `reopen` here are its named moves.
"""

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Avg, Count, Min
from django.utils import timezone

from reviews.core import sql
from reviews.core.exceptions import ClaimConflict, EscalationError, IllegalTransition  # noqa: F401 (public here too)
from reviews.leads import policy
from reviews.leads.final_answers import ADJUDICATED_SQL, VOTES_SQL
from reviews.models import (
    CampaignSettings,
    Escalation,
    FeedbackEvent,
    Item,
    ItemScore,
    Judgment,
    LabelKind,
)
from reviews.models.labels import ACTIVE

Status = Escalation.Status
CLOSED = (Status.RESOLVED, Status.DISMISSED)
MANUAL_REASONS = (
    Escalation.Reason.AMBIGUOUS,
    Escalation.Reason.HARMFUL,
    Escalation.Reason.BROKEN,
    Escalation.Reason.OTHER,
)
RULES_CHUNK = 1000


def claim(escalation: Escalation, user) -> Escalation:
    """The lead takes the escalation for review; a second lead gets ClaimConflict."""
    return escalation.transition(Status.IN_REVIEW, user=user)


def release(escalation: Escalation, user) -> Escalation:
    """Hand a claimed escalation back to the queue."""
    return escalation.transition(Status.OPEN, user=user)


def dismiss(escalation: Escalation, user, reason: str) -> Escalation:
    """Close a claimed escalation without an adjudication; the item goes back to the labelers' queue."""
    return escalation.transition(Status.DISMISSED, user=user, note=reason)


def reopen(escalation: Escalation, user, note: str = "") -> Escalation:
    """Put a resolved or dismissed escalation back in the leads' queue."""
    return escalation.transition(Status.OPEN, user=user, note=note)


def _record_escalated(escalation: Escalation, user, feedback: dict) -> None:
    FeedbackEvent.record(
        escalation.campaign,
        FeedbackEvent.Action.ESCALATED,
        {"escalation": str(escalation.uid), **feedback},
        actor=user,
        item=escalation.item_id,
    )


def _severity(item: Item) -> float:
    score = ItemScore.objects.filter(run_id=item.campaign.scoring_run_id, item_id=item.id).first()
    return score.risk if score else (item.risk_prior or 0.0)


def open_escalation(
    item: Item,
    *,
    reason: str,
    rules: list[dict] | None = None,
    user=None,
    comment: str = "",
    record_event: bool = True,
    trigger: str = "manual",
) -> tuple[Escalation, bool]:
    """Escalate an item (manual reasons need `user`); return (escalation, created).

    An item with an open or in-review escalation is not escalated twice: the new rules and
    comment are added to the existing escalation instead. The item leaves the labelers' queue.
    `record_event=False` when the caller writes its own FeedbackEvent (the labeler's queue does,
    with the lease's context).
    """
    if reason not in (*MANUAL_REASONS, Escalation.Reason.RULE):
        raise EscalationError("Choose a reason for the escalation.")
    if reason != Escalation.Reason.RULE and user is None:
        raise EscalationError("A manual escalation needs the person who raises it.")
    rules = rules or [{"rule": policy.MANUAL, "value": reason, "threshold": None}]
    with transaction.atomic():
        locked = Item.objects.select_for_update().select_related("campaign").get(pk=item.pk)
        existing = (
            Escalation.objects.select_for_update().filter(item=locked, status__in=ACTIVE).order_by("created_at").first()
        )
        if existing is not None:
            known = {r.get("rule") for r in existing.rules}
            added = [r for r in rules if r.get("rule") not in known or r.get("rule") == policy.MANUAL]
            if added or comment:
                existing.rules = existing.rules + added
                if comment:
                    existing.comment = f"{existing.comment}\n\n{comment}".strip()
                existing.updated_at = timezone.now()
                existing.save(update_fields=["rules", "comment", "updated_at"])
            if record_event:
                _record_escalated(
                    existing,
                    user,
                    {"reason": reason, "rules": rules, "comment": comment, "trigger": trigger, "joined": True},
                )
            return existing, False
        escalation = Escalation.objects.create(
            uid=uuid.uuid4(),
            campaign=locked.campaign,
            item=locked,
            reason=reason,
            comment=comment,
            rules=rules,
            severity=_severity(locked),
            opened_by=user,
        )
        Item.objects.filter(pk=locked.pk).update(escalated=True)
        if record_event:
            _record_escalated(
                escalation, user, {"reason": reason, "rules": rules, "comment": comment, "trigger": trigger}
            )
    item.escalated = True
    return escalation, True


# -- the rules over many items ------------------------------------------------------------


def thresholds(settings_version: CampaignSettings) -> policy.Thresholds:
    s = settings_version
    return policy.Thresholds(s.tau_risk, s.tau_disagree, s.tau_conf, s.overlap_k)


def _value_counts(rubric) -> dict[str, int]:
    if rubric is None:
        return {}
    return {
        c.slug: policy.criterion_value_count(c.kind, options=len(c.options), allow_tie=c.allow_tie, lo=c.min, hi=c.max)
        for c in rubric.criteria
    }


def _chunks(values, size=RULES_CHUNK):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def evaluate(campaign, item_ids=None, *, scoring_run_id=None) -> dict[int, tuple[list[dict], float]]:
    """Which rules fire for which items: {item_id: (fired rules, risk)}; nothing is written.

    Set-based: one query per rule finds its candidates (the risk rule reads the scoring run in
    force, or `scoring_run_id`), then the vote counts of the disagreement candidates come in
    chunks. Items that are escalated, excluded, or settled (a lead adjudicated or closed an
    escalation of the item after its latest human judgment) are left out.
    """
    s = campaign.settings
    t = thresholds(s)
    version = campaign.rubric_version()
    n_values = _value_counts(version.parsed if version else None)
    run_id = scoring_run_id if scoring_run_id is not None else campaign.scoring_run_id
    base = Item.objects.filter(campaign=campaign, excluded=False, escalated=False)
    id_chunks = [None] if item_ids is None else list(_chunks(item_ids))
    fired: dict[int, list[dict]] = defaultdict(list)
    risk: dict[int, float] = {}
    for ids in id_chunks:
        items = base if ids is None else base.filter(id__in=ids)
        _risk_candidates(items, run_id, t, fired, risk)
        _disagreement_candidates(items, t, n_values, fired)
        _confidence_candidates(items, t, fired)
    settled = _settled(fired)
    out = {}
    for item_id, rules in fired.items():
        if item_id in settled:
            continue
        out[item_id] = (sorted(rules, key=lambda r: RULE_ORDER[r["rule"]]), risk.get(item_id))
    if out:
        _fill_severity(out, run_id)
    return out


RULE_ORDER = {policy.RISK: 0, policy.DISAGREEMENT: 1, policy.CONFIDENCE: 2}


def fired_rules(campaign, item: Item, tally, risk: float | None) -> list[dict]:
    """Rules 2-4 that fire for one item that a final-answer refresh just read (`tally`,
    final_answers.Tally), decided from what that refresh read: no query. `risk` is the item's
    r in the scoring run in force, else its prior.

    The same tests as `evaluate`, on the same numbers, giving the same rule records; only the
    lead's earlier decision (`_settled`) is left to run_rules, which a labeler's submit calls
    with these when there are any.
    """
    if item.escalated or item.excluded or item.id not in tally.items:
        return []
    t = thresholds(campaign.settings)
    a, b, n_human, _, resolved = tally.items[item.id]
    fired = []
    if n_human >= 1 and (rule := policy.risk_rule(risk, 1, t)) is not None:
        fired.append(rule)
    if n_human >= t.k and not resolved:
        version = campaign.rubric_version()
        n_values = _value_counts(version.parsed if version else None)
        mine = {
            key: votes
            for key, votes in tally.votes.items()
            if key[1] in (a, b, ("item", item.id)) and key not in tally.adjudicated and key[0] in n_values
        }
        if (rule := _disagreement(mine, n_values, n_human, t, a)) is not None:
            fired.append(rule)
    n, mean = tally.confidence.get(item.id, (0, None))
    if n and mean <= (t.tau_conf - 1) / 4 + policy.EPS and (rule := policy.mean_confidence_rule(mean, n, t)):
        fired.append(rule)
    return fired


def _disagreement(mine: dict, n_values: dict, n_human: int, t, a: int) -> dict | None:
    """Rule 3 for one item's open questions, naming the response ("a"/"b") of a per-response one."""
    rule = policy.disagreement_rule(mine, n_values, n_human, t)
    if rule is not None:
        # The question the rule reports: the first of the most split in the rule's own order.
        key = max(sorted(mine, key=repr), key=lambda k: policy.normalized_entropy(mine[k].values(), n_values[k[0]]))
        if isinstance(key[1], int):
            rule["response"] = "a" if key[1] == a else "b"
    return rule


def _risk_candidates(items, run_id, t, fired, risk) -> None:
    labeled = items.filter(human_judgments__gte=1)
    scored_ids = ItemScore.objects.filter(run_id=run_id).values("item_id") if run_id else None
    if run_id:
        rows = ItemScore.objects.filter(run_id=run_id, item__in=labeled, risk__gte=t.tau_risk - policy.EPS)
        for item_id, r in rows.values_list("item_id", "risk"):
            _add(fired, risk, item_id, policy.risk_rule(r, 1, t), r)
        unscored = labeled.exclude(id__in=scored_ids)
    else:
        unscored = labeled
    # No score yet (a new item, or no run): r is the prior, the noisy-OR with a model term of 0.
    for item_id, prior in unscored.filter(risk_prior__gte=t.tau_risk - policy.EPS).values_list("id", "risk_prior"):
        _add(fired, risk, item_id, policy.risk_rule(prior, 1, t), prior)


def _add(fired, risk, item_id, rule, r) -> None:
    if rule is not None:
        fired[item_id].append(rule)
        risk[item_id] = r


def _disagreement_candidates(items, t, n_values, fired) -> None:
    # A resolved item has a unanimous or adjudicated answer to every question: nothing to split.
    rows = list(
        items.filter(human_judgments__gte=t.k, resolved=False).values_list(
            "id", "response_a_id", "response_b_id", "human_judgments"
        )
    )
    for chunk in _chunks(rows):
        item_ids = [r[0] for r in chunk]
        response_ids = {x for r in chunk for x in r[1:3]}
        votes: dict = defaultdict(Counter)
        for crit, resp, item_id, value, n in sql.execute_in(VOTES_SQL, [response_ids, item_ids]):
            votes[(crit, resp if resp is not None else ("item", item_id))][value] = n
        adjudicated = {
            (crit, resp if resp is not None else ("item", item_id))
            for crit, resp, item_id, *_ in sql.execute_in(ADJUDICATED_SQL, [response_ids, item_ids])
        }
        by_target: dict = defaultdict(list)
        for key in votes:
            if key not in adjudicated and key[0] in n_values:
                by_target[key[1]].append(key)
        for item_id, a, b, n_human in chunk:
            mine = {key: votes[key] for target in (a, b, ("item", item_id)) for key in by_target.get(target, ())}
            rule = _disagreement(mine, n_values, n_human, t, a)
            if rule is not None:
                fired[item_id].append(rule)


def _confidence_candidates(items, t, fired) -> None:
    ceiling = (t.tau_conf - 1) / 4 + policy.EPS
    rows = (
        Judgment.objects.filter(item__in=items, kind=LabelKind.HUMAN, confidence__isnull=False)
        .values("item_id")
        .annotate(mean=Avg("confidence"), n=Count("id"))
        .filter(mean__lte=ceiling)
        .values_list("item_id", "mean", "n")
    )
    for item_id, mean, n in rows:
        rule = policy.mean_confidence_rule(mean, n, t)
        if rule is not None:
            fired[item_id].append(rule)


def _settled(fired) -> set[int]:
    """Candidates a lead already decided on after their latest human judgment."""
    settled = set()
    for ids in _chunks(fired):
        # One round trip per chunk. The three times come back as the database stores them
        # (datetimes on PostgreSQL, ISO text on SQLite, which orders the same way).
        for item_id, adjudicated, closed, judged in sql.execute_in(SETTLED_SQL, [CLOSED, ids]):
            acted = max((t for t in (adjudicated, closed) if t is not None), default=None)
            if acted is not None and (judged is None or acted >= judged):
                settled.add(item_id)
    return settled


# Per item: the latest adjudication, the latest closing of an escalation, the latest human judgment.
SETTLED_SQL = (
    "SELECT i.id, (SELECT MAX(d.created_at) FROM reviews_adjudication d WHERE d.item_id = i.id), "
    "(SELECT MAX(e.closed_at) FROM reviews_escalation e WHERE e.item_id = i.id AND e.status IN ({0})), "
    "(SELECT MAX(j.created_at) FROM reviews_judgment j WHERE j.item_id = i.id AND j.kind = 'human') "
    "FROM reviews_item i WHERE i.id IN ({1})"
)


def _fill_severity(out, run_id) -> None:
    missing = [item_id for item_id, (_, r) in out.items() if r is None]
    scores = {}
    for ids in _chunks(missing):
        if run_id:
            scores.update(ItemScore.objects.filter(run_id=run_id, item_id__in=ids).values_list("item_id", "risk"))
        rest = [i for i in ids if i not in scores]
        scores.update(
            (item_id, prior or 0.0)
            for item_id, prior in Item.objects.filter(id__in=rest).values_list("id", "risk_prior")
        )
    for item_id in missing:
        rules, _ = out[item_id]
        out[item_id] = (rules, scores.get(item_id, 0.0))


def run_rules(campaign, item_ids=None, *, trigger: str, scoring_run=None, fired=None) -> list[Escalation]:
    """Apply rules 2-4 to these items (None: the whole campaign) and open escalations where they fire.

    Called inside a labeler's submit (one item, with `fired`: {item_id: (rules, severity)} as
    `fired_rules` found them, so the pool is not read again) and after a scoring run commits
    (the pool). Returns the escalations opened (unsaved instances carrying uid, item_id, rules
    and severity). Each escalation records the rules with their values and thresholds; its
    event records the settings version and the scoring run.
    """
    run_id = scoring_run.id if scoring_run is not None else campaign.scoring_run_id
    if fired is None:
        decided = evaluate(campaign, item_ids, scoring_run_id=run_id)
    else:
        settled = _settled(fired)
        decided = {item_id: found for item_id, found in fired.items() if item_id not in settled}
    if not decided:
        return []
    settings_version = campaign.settings
    rubric_version = campaign.rubric_version()
    created = []
    with transaction.atomic():
        for ids in _chunks(sorted(decided)):
            # Lock and re-read: a labeler's manual escalation or another rules pass may have won.
            free = set(
                Item.objects.select_for_update()
                .filter(id__in=ids, escalated=False, excluded=False)
                .values_list("id", flat=True)
            )
            free -= set(Escalation.objects.filter(item_id__in=ids, status__in=ACTIVE).values_list("item_id", flat=True))
            now = timezone.now()
            batch = [
                Escalation(
                    uid=uuid.uuid4(),
                    campaign=campaign,
                    item_id=item_id,
                    reason=Escalation.Reason.RULE,
                    rules=decided[item_id][0],
                    severity=decided[item_id][1] or 0.0,
                    created_at=now,
                    updated_at=now,
                )
                for item_id in sorted(free)
            ]
            uid_field = Escalation._meta.get_field("uid")
            # The fast insert path (reviews.core.sql): a scoring run may open thousands at once.
            sql.insert_rows(
                Escalation,
                [
                    "uid",
                    "campaign_id",
                    "item_id",
                    "status",
                    "reason",
                    "comment",
                    "rules",
                    "severity",
                    "resolution_note",
                    "created_at",
                    "updated_at",
                ],
                [
                    (
                        uid_field.get_db_prep_value(e.uid, connection),
                        campaign.id,
                        e.item_id,
                        Status.OPEN,
                        e.reason,
                        "",
                        e.rules,
                        e.severity,
                        "",
                        now,
                        now,
                    )
                    for e in batch
                ],
            )
            Item.objects.filter(id__in=free).update(escalated=True)
            FeedbackEvent.record(
                campaign,
                FeedbackEvent.Action.ESCALATED,
                {"reason": "rule", "trigger": trigger},
                rubric_version=rubric_version,
                settings_version=settings_version,
                scoring_run=run_id,
                created_at=now,
                per_item=[(e.item_id, {"escalation": str(e.uid), "rules": e.rules}) for e in batch],
            )
            created.extend(batch)
    return created


# -- the leads' queue ---------------------------------------------------------------------


@dataclass
class QueueRow:
    escalation: Escalation
    age: timedelta
    sla: timedelta
    overdue: bool
    rules_text: str

    @property
    def age_text(self) -> str:
        return _duration(self.age)

    @property
    def sla_text(self) -> str:
        return _duration(self.sla)


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes / 60
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def lead_queue(campaign=None, statuses=ACTIVE):
    """Escalations in the leads' order: severity (risk) first, then age (oldest first)."""
    rows = Escalation.objects.filter(status__in=statuses)
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    return rows.select_related("campaign", "item__prompt", "claimed_by", "opened_by").order_by(
        "-severity", "created_at", "id"
    )


def sla_by_campaign(campaign_ids) -> dict[int, float]:
    """Each campaign's SLA (hours) from its settings version in force, in one query."""
    hours: dict[int, float] = {}
    for campaign_id, sla in (
        CampaignSettings.objects.filter(campaign_id__in=set(campaign_ids))
        .order_by("campaign_id", "-number")
        .values_list("campaign_id", "sla_hours")
    ):
        hours.setdefault(campaign_id, sla)
    return hours


def queue_rows(escalations, now=None) -> list[QueueRow]:
    """Decorate escalations with their age against the campaign's SLA."""
    now = now or timezone.now()
    escalations = list(escalations)
    hours = sla_by_campaign(e.campaign_id for e in escalations)
    rows = []
    for e in escalations:
        sla = timedelta(hours=hours.get(e.campaign_id, 24.0))
        age = now - e.created_at
        overdue = e.status in ACTIVE and age > sla
        rows.append(QueueRow(e, age, sla, overdue, policy.describe(e.rules)))
    return rows


def oldest_overdue(campaign=None, now=None) -> QueueRow | None:
    """The open escalation that has waited longest past its campaign's SLA (None: nothing overdue).

    One grouped query for each campaign's oldest open escalation, then one row: cheap however long the queue.
    """
    now = now or timezone.now()
    rows = Escalation.objects.filter(status=Status.OPEN)
    if campaign is not None:
        rows = rows.filter(campaign=campaign)
    oldest = dict(rows.order_by().values("campaign_id").annotate(t=Min("created_at")).values_list("campaign_id", "t"))
    hours = sla_by_campaign(oldest)
    overdue = [
        (t, campaign_id) for campaign_id, t in oldest.items() if now - t > timedelta(hours=hours.get(campaign_id, 24.0))
    ]
    if not overdue:
        return None
    t, campaign_id = min(overdue)
    first = rows.filter(campaign_id=campaign_id, created_at=t).select_related("campaign").order_by("id").first()
    return queue_rows([first], now)[0] if first else None
