"""One rescoring run of a large campaign, spread over chunk jobs that any RQ worker can take.

    start ─┬─ features chunk ─┐               ┌─ score chunk ─┐
           ├─ features chunk ─┼─► train ──────┼─ score chunk ─┼─► finish (select, write, commit)
           └─ ...            ─┘               └─ ...         ─┘

Each arrow is an RQ dependency: a job is enqueued when every job it depends on succeeded.
The chunk jobs run the same Rescorer steps as a single-process run, on an id range; the
trained models and each score chunk's values travel through Redis (with an expiry). The run
commits once, in `finish`, exactly as a single-process run does, so labelers never see a
half-scored campaign. A failing job marks the run failed; a worker that dies leaves the
heartbeat to go stale and `fail_lost_runs` marks it failed. Either way the previous run's
scores stay in force.
"""

import json
import time

import django_rq
from django.conf import settings
from django.db import connection
from django.utils import timezone

from reviews.models import ScoringRun
from scoring import features, pipeline
from scoring.rescorer import Rescorer, ScoreArrays
from scoring.runs import enqueue, queued_run

KEY_TTL_SECONDS = 24 * 3600
Status = ScoringRun.Status


def _key(run_id: int, part: str) -> str:
    return f"reviews:scoring:run:{run_id}:{part}"


def _redis():
    return django_rq.get_connection("default")


def _queue():
    return django_rq.get_queue("default")


def _rescorer(run: ScoringRun) -> Rescorer:
    rescorer = Rescorer(run)
    if run.settings_version_id:
        # Every job of the run works under the settings recorded when it started.
        rescorer.settings_version = run.settings_version
    return rescorer


def _running(run_id: int) -> ScoringRun | None:
    run = ScoringRun.objects.select_related("campaign", "settings_version").get(pk=run_id)
    return run if run.status == Status.RUNNING else None


def _guarded(run_id: int, body) -> str:
    """Run one job's body; a failure fails the run (and starts the next queued one)."""
    run = _running(run_id)
    if run is None:
        return f"run {run_id} is no longer running: nothing to do"
    try:
        return body(run)
    except Exception as exc:
        ScoringRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
            status=Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"
        )
        _after(run)
        raise


def _after(run: ScoringRun) -> None:
    """The run ended: drop its keys and start the campaign's next queued run, if any."""
    keys = list(_redis().scan_iter(_key(run.id, "*")))
    if keys:
        _redis().delete(*keys)
    following = queued_run(run.campaign)
    if following is not None:
        enqueue(following)


def _ranges(sql: str, params: list, size: int) -> list[tuple[int, int | None]]:
    """[lo, hi) id ranges of `size` rows each over the ids the query returns in order."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    bounds = ids[::size]
    return [(lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)]


def _enqueue_job(func, *args, depends_on=None):
    return _queue().enqueue(func, *args, depends_on=depends_on, job_timeout=settings.SCORING_JOB_TIMEOUT)


# -- the stages --------------------------------------------------------------------------------


def start(run: ScoringRun) -> str:
    """Called by `run_rescore` once the run is claimed: fan the text hashing out, then train."""
    rescorer = _rescorer(run)
    rescorer.record_settings()
    rescorer.beat("features")
    size = settings.SCORING_SPLIT_CHUNK_ITEMS
    jobs = []
    for name, sql in (
        ("prompt", "SELECT id FROM reviews_prompt WHERE campaign_id = %s AND features_version != %s ORDER BY id"),
        (
            "response",
            "SELECT r.id FROM reviews_response r JOIN reviews_prompt p ON p.id = r.prompt_id "
            "WHERE p.campaign_id = %s AND r.features_version != %s ORDER BY r.id",
        ),
    ):
        for lo, hi in _ranges(sql, [run.campaign_id, features.VERSION], size):
            jobs.append(_enqueue_job(features_job, run.id, name, lo, hi))
    _redis().set(_key(run.id, "stamp:features"), time.time(), ex=KEY_TTL_SECONDS)
    _enqueue_job(train_job, run.id, depends_on=jobs or None)
    return f"run {run.id} split: {len(jobs)} feature chunks, then training"


def features_job(run_id: int, table: str, lo: int, hi: int | None) -> str:
    def body(run):
        rescorer = _rescorer(run)
        rescorer.compute_missing_features(only=table, lo=lo, hi=hi)
        rescorer.beat()
        return f"run {run_id}: features of {table} ids [{lo}, {hi})"

    return _guarded(run_id, body)


def train_job(run_id: int) -> str:
    def body(run):
        rescorer = _rescorer(run)
        started = float(_redis().get(_key(run_id, "stamp:features")) or time.time())
        rescorer.timings["features"] = round(time.time() - started, 3)
        trained = rescorer.phase("train", rescorer.train)
        rescorer.beat("score")
        _redis().set(_key(run_id, "models"), trained.to_bytes(), ex=KEY_TTL_SECONDS)
        _redis().set(
            _key(run_id, "timings"), json.dumps({**rescorer.timings, "_score_started": time.time()}), ex=KEY_TTL_SECONDS
        )
        ranges = _ranges(
            "SELECT id FROM reviews_item WHERE campaign_id = %s AND excluded = %s ORDER BY id",
            [run.campaign_id, False],
            settings.SCORING_SPLIT_CHUNK_ITEMS,
        )
        jobs = [_enqueue_job(score_job, run_id, index, lo, hi) for index, (lo, hi) in enumerate(ranges)]
        _enqueue_job(finish_job, run_id, len(ranges), depends_on=jobs or None)
        return f"run {run_id}: trained; {len(ranges)} score chunks"

    return _guarded(run_id, body)


def score_job(run_id: int, index: int, lo: int, hi: int | None) -> str:
    def body(run):
        rescorer = _rescorer(run)
        arrays = rescorer.score_items(_load_models(run_id), lo=lo, hi=hi)
        pipe = _redis().pipeline()
        pipe.set(_key(run_id, f"chunk:{index}"), arrays.to_bytes(), ex=KEY_TTL_SECONDS)
        pipe.hset(_key(run_id, "compute"), str(index), rescorer.compute_seconds)
        pipe.expire(_key(run_id, "compute"), KEY_TTL_SECONDS)
        pipe.execute()
        return f"run {run_id}: scored {len(arrays.ids)} items of ids [{lo}, {hi})"

    return _guarded(run_id, body)


def finish_job(run_id: int, chunks: int) -> str:
    def body(run):
        rescorer = _rescorer(run)
        timings = json.loads(_redis().get(_key(run_id, "timings")) or "{}")
        score_started = timings.pop("_score_started", time.time())
        rescorer.timings.update(timings)
        rescorer.timings["score"] = round(time.time() - score_started, 3)
        blobs = _redis().mget([_key(run_id, f"chunk:{index}") for index in range(chunks)])
        missing = [index for index, blob in enumerate(blobs) if blob is None]
        if missing:
            raise RuntimeError(f"score chunks {missing} of run {run_id} are missing (expired or lost)")
        compute = _redis().hgetall(_key(run_id, "compute"))
        rescorer.compute_seconds = sum(float(v) for v in compute.values())
        arrays = ScoreArrays.join(blobs)
        rescorer.finish(arrays, _load_models(run_id))
        _after(run)
        return f"run {run_id} succeeded over {chunks} score chunks"

    return _guarded(run_id, body)


# -- the trained state through Redis ----------------------------------------------------------


def _load_models(run_id: int) -> pipeline.Trained:
    raw = _redis().get(_key(run_id, "models"))
    if raw is None:
        raise RuntimeError(f"the trained models of run {run_id} are missing (expired or lost)")
    return pipeline.Trained.from_bytes(raw)
