"""The RQ jobs of rescoring: `run_rescore` (one queued run), `rescore_due` (the schedule), and the
same run in the foreground.

Requests, the queue and claims are `scoring.runs`; what a run does is `scoring.rescorer.Rescorer`;
runs of large campaigns split into `scoring.chunked` jobs.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from reviews.models import Campaign, Item, Judgment, ScoringRun
from scoring import chunked
from scoring.rescorer import Rescorer
from scoring.runs import RunBusy, claim, enqueue, fail_lost_runs, queued_run, request_rescore

Status = ScoringRun.Status


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
    claimed = claim(run.campaign, run_id=run_id)
    if claimed is None:
        return f"run {run_id} not started: it is not queued, or another run of {run.campaign.slug} is running"
    if Item.objects.filter(campaign=run.campaign, excluded=False).count() >= settings.SCORING_SPLIT_MIN_ITEMS:
        return chunked.start(claimed)
    _execute(claimed)
    return f"run {run_id} succeeded"


def rescore_in_foreground(campaign: Campaign, trigger: str, progress=None) -> ScoringRun:
    """The same run in this process (the `rescore` command, benchmarks, tests)."""
    run = claim(campaign, trigger=trigger)
    if run is None:
        raise RunBusy(f"a rescoring run of {campaign.slug} is already running")
    return _execute(run, progress)
