"""Rescoring runs: when they happen and who runs them.

Requests (coalesced while one is queued), the RQ job `run_rescore`, claiming a run (never two of
a campaign at once), failing lost runs by their heartbeat, and the schedule's `rescore_due`.
What a run does is `scoring.rescorer.Rescorer`; large runs split into `scoring.chunked` jobs.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import DuplicateJobError
from rq.job import JobStatus

from reviews.models import (
    Campaign,
    Item,
    Judgment,
    LabelKind,
    ScoringRun,
)
from scoring.rescorer import Rescorer, RunLost, ScoreArrays  # noqa: F401 (RunLost, ScoreArrays: public names)

log = logging.getLogger(__name__)
Status = ScoringRun.Status


# -- requesting runs -----------------------------------------------------------------------


@dataclass
class RescoreRequest:
    run: ScoringRun
    # "queued": a new run is on the queue; "coalesced": an existing queued run will cover it;
    # "unavailable": the run is recorded but the queue could not be reached (the schedule retries).
    outcome: str
    message: str = ""


def fail_lost_runs(campaign: Campaign | None = None) -> int:
    """Mark running runs whose heartbeat stopped (their worker died) as failed."""
    stale = timezone.now() - timedelta(seconds=settings.SCORING_STALE_SECONDS)
    runs = ScoringRun.objects.filter(status=Status.RUNNING, heartbeat_at__lt=stale)
    if campaign is not None:
        runs = runs.filter(campaign=campaign)
    return runs.update(
        status=Status.FAILED, finished_at=timezone.now(), error="worker lost: no heartbeat since the last chunk"
    )


def request_rescore(campaign: Campaign, trigger: str) -> RescoreRequest:
    """Queue a rescoring run, unless one is already queued (then that one covers this request)."""
    fail_lost_runs(campaign)
    with transaction.atomic():
        _lock(campaign)  # serialize requests per campaign
        queued = queued_run(campaign)
        if queued is not None:
            return RescoreRequest(queued, "coalesced", "a rescoring run is already queued")
        run = ScoringRun.objects.create(campaign=campaign, trigger=trigger, judgment_mark=_judgment_mark())
    return enqueue(run)


def _judgment_mark() -> int:
    return Judgment.objects.aggregate(mark=Max("id"))["mark"] or 0


def _lock(campaign: Campaign) -> None:
    """Take the campaign's row lock: run requests, claims and commits of one campaign go one at a time."""
    Campaign.objects.select_for_update().filter(pk=campaign.pk).first()


def queued_run(campaign: Campaign) -> ScoringRun | None:
    return campaign.scoring_runs.filter(status=Status.QUEUED).order_by("id").first()


def enqueue(run: ScoringRun) -> RescoreRequest:
    """Put the run's job on the queue once the run row is committed (a worker must find it)."""
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _send(run))
        return RescoreRequest(run, "queued", "rescoring queued")
    return _send(run)


def _send(run: ScoringRun) -> RescoreRequest:
    job_id = f"rescore-{run.id}"
    try:
        queue = django_rq.get_queue("default")
        # A run that was sent while another was running got "not started" and its job finished;
        # that finished job must not block sending the run again (job ids are unique).
        done = queue.fetch_job(job_id)
        if done is not None and done.get_status(refresh=False) in ENDED_JOB_STATES:
            done.delete()
        queue.enqueue(run_rescore, run.id, job_id=job_id, job_timeout=settings.SCORING_JOB_TIMEOUT, unique=True)
    except DuplicateJobError:
        return RescoreRequest(run, "coalesced", "the run is already on the queue")
    except RedisError as exc:
        log.warning("rescoring run %s recorded but not queued: %s", run.id, exc)
        return RescoreRequest(run, "unavailable", "the job queue is unreachable; the run will start when it is back")
    return RescoreRequest(run, "queued", "rescoring queued")


ENDED_JOB_STATES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def maybe_rescore_after_judgments(campaign: Campaign) -> RescoreRequest | None:
    """The N-judgments trigger: rescore once `rescore_every` human judgments arrived since the last run.

    Called after every submit, so it counts at most N rows past the last run's judgment mark.
    """
    every = campaign.settings.rescore_every
    if not every:
        return None
    last = campaign.scoring_runs.order_by("-id").first()
    if last is not None and last.status == Status.QUEUED:
        return None  # the queued run will see these judgments; no need to lock anything
    mark = last.judgment_mark if last is not None else 0
    recent = Judgment.objects.filter(pk__gt=mark, item__campaign=campaign, kind=LabelKind.HUMAN)
    if recent[:every].count() >= every:
        return request_rescore(campaign, f"{every} judgments")
    return None


def rescore_due() -> list[str]:
    """The scheduled job: recover lost runs, re-queue stranded ones, rescore campaigns that changed."""
    fail_lost_runs()
    done = []
    for campaign in Campaign.objects.all():
        queued = queued_run(campaign)
        if queued is not None:
            if queued.requested_at < timezone.now() - timedelta(minutes=1):
                enqueue(queued)  # unique job id: refused if it is still on the queue
            continue
        last = campaign.scoring_runs.filter(status=Status.SUCCEEDED).order_by("-requested_at").first()
        changed = (
            last is None
            or last.settings_version_id != campaign.settings.id  # new λ weights or budget
            or Item.objects.filter(campaign=campaign, created_at__gt=last.requested_at).exists()
            or Judgment.objects.filter(item__campaign=campaign, created_at__gt=last.requested_at).exists()
        )
        if changed and Item.objects.filter(campaign=campaign).exists():
            done.append(f"{campaign.slug}: {request_rescore(campaign, 'schedule').outcome}")
    return done


# -- running --------------------------------------------------------------------------------


def _claim(campaign: Campaign, *, run_id: int | None = None, trigger: str = "") -> ScoringRun | None:
    """Start a run unless one of this campaign is running: the queued run `run_id`, or a new one."""
    fail_lost_runs(campaign)
    now = timezone.now()
    with transaction.atomic():
        _lock(campaign)
        if campaign.scoring_runs.filter(status=Status.RUNNING).exists():
            return None
        if run_id is None:
            return ScoringRun.objects.create(
                campaign=campaign,
                trigger=trigger,
                status=Status.RUNNING,
                started_at=now,
                heartbeat_at=now,
                judgment_mark=_judgment_mark(),
            )
        claimed = ScoringRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, phase="starting"
        )
    return ScoringRun.objects.get(pk=run_id) if claimed else None


def _execute(run: ScoringRun, progress=None) -> ScoringRun:
    """Run it; a failure is recorded on the run (and raised); then start the next queued run, if any."""
    try:
        Rescorer(run, progress=progress).execute()
    except Exception as exc:
        ScoringRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"
        )
        raise
    finally:
        following = queued_run(run.campaign)
        if following is not None:
            enqueue(following)
    run.refresh_from_db()
    return run


def run_rescore(run_id: int) -> str:
    """The RQ job: claim a queued run and execute it."""
    run = ScoringRun.objects.select_related("campaign").get(pk=run_id)
    claimed = _claim(run.campaign, run_id=run_id)
    if claimed is None:
        return f"run {run_id} not started: it is not queued, or another run of {run.campaign.slug} is running"
    if Item.objects.filter(campaign=run.campaign, excluded=False).count() >= settings.SCORING_SPLIT_MIN_ITEMS:
        from scoring import chunked

        return chunked.start(claimed)
    _execute(claimed)
    return f"run {run_id} succeeded"


def rescore_in_foreground(campaign: Campaign, trigger: str, progress=None) -> ScoringRun:
    """The same run in this process (the `rescore` command, benchmarks, tests)."""
    run = _claim(campaign, trigger=trigger)
    if run is None:
        raise RunBusy(f"a rescoring run of {campaign.slug} is already running")
    return _execute(run, progress)


class RunBusy(Exception):
    """Another run of the campaign is running."""
