"""Rescoring runs' lifecycle: requests, the queue, claims and lost runs.

Requests (coalesced while one is queued), sending a run's job to the queue, claiming a run (never
two of a campaign at once) and failing lost runs by their heartbeat. The RQ jobs themselves are in
`scoring.jobs`, what a run does is `scoring.rescorer.Rescorer`, and large runs split into
`scoring.chunked` jobs; all of them use this module, which uses none of them.
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
    Judgment,
    LabelKind,
    ScoringRun,
)

log = logging.getLogger(__name__)
Status = ScoringRun.Status
# The job is named by its dotted path: this module must not import scoring.jobs, which imports it.
RESCORE_JOB = "scoring.jobs.run_rescore"


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
        queue.enqueue(RESCORE_JOB, run.id, job_id=job_id, job_timeout=settings.SCORING_JOB_TIMEOUT, unique=True)
    except DuplicateJobError:
        return RescoreRequest(run, "coalesced", "the run is already on the queue")
    except RedisError as exc:
        log.warning("rescoring run %s recorded but not queued: %s", run.id, exc)
        return RescoreRequest(run, "unavailable", "the job queue is unreachable; the run will start when it is back")
    return RescoreRequest(run, "queued", "rescoring queued")


ENDED_JOB_STATES = (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


def maybe_rescore_after_judgments(
    campaign: Campaign, *, judgment_id: int | None = None, last_run: tuple | None = None
) -> RescoreRequest | None:
    """The N-judgments trigger: rescore once `rescore_every` human judgments arrived since the last run.

    Called after every submit, so it counts at most N rows past the last run's judgment mark.
    A submit passes its judgment's id and the campaign's last run as (status, judgment mark)
    (None, None without one), read with its lease: judgment ids rise across all campaigns, so
    fewer than N ids past the mark cannot hold N of this campaign's, and nothing is counted. (A
    judgment committed concurrently with a lower id is then counted by the next submit.)
    """
    every = campaign.settings.rescore_every
    if not every:
        return None
    if last_run is None:
        last = campaign.scoring_runs.order_by("-id").values_list("status", "judgment_mark").first()
        last_run = last if last is not None else (None, None)
    status, mark = last_run
    if status == Status.QUEUED:
        return None  # the queued run will see these judgments; no need to lock anything
    mark = mark or 0
    if judgment_id is not None and judgment_id - mark < every:
        return None
    recent = Judgment.objects.filter(pk__gt=mark, item__campaign=campaign, kind=LabelKind.HUMAN)
    if recent[:every].count() >= every:
        return request_rescore(campaign, f"{every} judgments")
    return None


# -- claiming ------------------------------------------------------------------------------


def claim(campaign: Campaign, *, run_id: int | None = None, trigger: str = "") -> ScoringRun | None:
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


class RunBusy(Exception):
    """Another run of the campaign is running."""
