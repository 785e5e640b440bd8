"""Monitoring snapshots: the report stored as MetricSnapshot rows, the time series, and the jobs.

`take_snapshot` stores the report of reviews.monitoring.figures (one "report" row holding the
whole figure set, which the dashboards render) and one row per scalar metric and slice (the
time series). `snapshot_due` is the scheduled job (scoring/cron.py); `snapshot_campaign` the
on-demand one.
"""

import logging

import django_rq
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import JobStatus

from reviews.models import Campaign, MetricSnapshot
from reviews.monitoring.figures import compute_report

log = logging.getLogger(__name__)

REPORT = "report"


def series_rows(report: dict) -> list[tuple[str, str, float | None]]:
    """The report's scalar figures as (name, slice, value): one time series each."""
    rows: list[tuple[str, str, float | None]] = []
    ov = report["overview"]
    for key in ("queue_depth", "budget_burn", "judgments_per_day", "open_escalations", "overdue_escalations"):
        rows.append((f"overview.{key}", "", ov[key]))
    rows.append(("overview.median_seconds_per_judgment", "", ov["time_per_judgment"]["median_s"]))
    for criterion, a in report["agreement"].items():
        rows.append(("agreement.krippendorff_alpha", f"criterion={criterion}", a["krippendorff_alpha"]))
        rows.append(("agreement.raw", f"criterion={criterion}", a["raw_agreement"]))
        for pair, kappa in a["cohen_kappa"].items():
            rows.append(("agreement.cohen_kappa", f"criterion={criterion}|pair={pair}", kappa))
    for row in report["labelers"]:
        rows.append(("labeler.accuracy", f"annotator={row['annotator']}", row["accuracy"]))
        rows.append(("labeler.overturn_rate", f"annotator={row['annotator']}", row["overturn_rate"]))
        if row["gold_accuracy"] is not None:
            rows.append(("labeler.gold_accuracy", f"annotator={row['annotator']}", row["gold_accuracy"]))
    for criterion, bias in report["position_bias"].items():
        rows.append(("position_bias.left_share", f"criterion={criterion}", bias["estimate"]))
    for criterion, by_model in report["slices"].items():
        for model, by_tag in by_model.items():
            for tag, by_value in by_tag.items():
                for value, share in by_value.items():
                    rows.append(("slice.share", f"criterion={criterion}|model={model}|tag={tag}|value={value}", share))
    for d in report["detectors"]:
        s = f"annotator={d['annotator']}|criterion={d['criterion']}"
        rows.append(("detector.fpr", s, d["fpr"]))
        rows.append(("detector.fnr", s, d["fnr"]))
    for row in report["pool_estimates"]:
        rows.append(
            ("pool.ipw_share", f"criterion={row['criterion']}|tag={row['tag']}|value={row['value']}", row["ipw"])
        )
    for criterion, board in report["leaderboard"].items():
        for row in board:
            rows.append(("leaderboard.strength", f"criterion={criterion}|model={row['model']}", row["strength"]))
    for row in report["escalations"]["by_reason"]:
        rows.append(("escalation.rate", f"reason={row['reason']}", row["rate"]))
    for row in report["escalations"]["by_rule"]:
        rows.append(("escalation.rule_rate", f"rule={row['rule']}", row["rate"]))
    rows.append(("guardrail.risk_rule_precision", "", report["guardrails"]["risk_rule_precision"]["estimate"]))
    rows.append(("scoring.utility_mean", "", report["scoring"]["utility"]["mean"]))
    runs = report["scoring"]["runs"]
    if runs:
        rows.append(("scoring.reward_accuracy", "", runs[-1]["reward_accuracy"]))
        rows.append(("scoring.run_seconds", "", runs[-1]["seconds"]))
    return [(name, s[:255], None if v is None else float(v)) for name, s, v in rows]


def take_snapshot(campaign: Campaign, *, now=None) -> MetricSnapshot:
    """Compute the report and store it with one row per scalar metric and slice; returns the report row."""
    now = now or timezone.now()
    report = compute_report(campaign, now=now)
    with transaction.atomic():
        snapshot = MetricSnapshot.objects.create(campaign=campaign, name=REPORT, slice="", data=report, computed_at=now)
        MetricSnapshot.objects.bulk_create(
            [
                MetricSnapshot(campaign=campaign, name=name, slice=s, value=value, computed_at=now)
                for name, s, value in series_rows(report)
            ],
            batch_size=1000,
        )
    return snapshot


def latest_report(campaign: Campaign) -> MetricSnapshot | None:
    """The newest stored report of a campaign (served by the metric_series index)."""
    return (
        MetricSnapshot.objects.filter(campaign=campaign, name=REPORT, slice="").order_by("-computed_at", "-id").first()
    )


def report_for(campaign: Campaign) -> MetricSnapshot:
    """The newest report, computed now when the campaign has none yet."""
    return latest_report(campaign) or take_snapshot(campaign)


def series_index(campaign: Campaign) -> list[dict]:
    """Every stored series of a campaign: name, slice and how many points."""
    return list(
        MetricSnapshot.objects.filter(campaign=campaign)
        .exclude(name=REPORT)
        .values("name", "slice")
        .annotate(points=Count("id"))
        .order_by("name", "slice")
    )


def series(campaign: Campaign, name: str, slice_: str = "") -> list[dict]:
    """One metric over time, oldest first."""
    return [
        {"computed_at": at.isoformat(), "value": value}
        for at, value in MetricSnapshot.objects.filter(campaign=campaign, name=name, slice=slice_)
        .order_by("computed_at", "id")
        .values_list("computed_at", "value")
    ]


def snapshot_campaign(campaign_id: int) -> str:
    """The on-demand job ("Recompute now"): snapshot one campaign."""
    campaign = Campaign.objects.get(pk=campaign_id)
    take_snapshot(campaign)
    return campaign.slug


def request_snapshot(campaign: Campaign) -> tuple[str, str]:
    """Queue a snapshot of the campaign for a worker: (outcome, message), outcome queued/coalesced/unavailable.

    At 100k judgments a snapshot takes seconds: a worker takes it, not the web request.
    """
    job_id = f"snapshot-{campaign.id}"
    try:
        queue = django_rq.get_queue("default")
        waiting = queue.fetch_job(job_id)
        if waiting is not None and waiting.get_status(refresh=False) in (JobStatus.QUEUED, JobStatus.STARTED):
            return "coalesced", "a recomputation is already queued"
        queue.enqueue(snapshot_campaign, campaign.id, job_id=job_id)
    except RedisError as exc:
        log.warning("snapshot of %s not queued: %s", campaign.slug, exc)
        return "unavailable", "the job queue is unreachable; the scheduled job will recompute the figures later"
    return "queued", "recomputation queued; the figures refresh when a worker has taken it"


def snapshot_due() -> list[str]:
    """The scheduled job: a snapshot of every campaign that has items."""
    done = []
    for campaign in Campaign.objects.filter(items__isnull=False).distinct().order_by("slug"):
        take_snapshot(campaign)
        done.append(campaign.slug)
    return done
