"""A large campaign's run split into chunk jobs: real Redis, real RQ workers, one committed run."""

import signal
import time

import django_rq
import numpy as np
import pytest

from reviews.models import ItemScore, ScoringRun
from scoring import chunked, runs
from tests.processes import manage_popen, process_env
from tests.scoring.test_scoring_jobs import make_campaign, rescore_now

Status = ScoringRun.Status
SPLIT = {"SCORING_SPLIT_MIN_ITEMS": "100", "SCORING_SPLIT_CHUNK_ITEMS": "250"}


def _wait_for(run: ScoringRun, workers, seconds: float = 120) -> ScoringRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (Status.SUCCEEDED, Status.FAILED):
            return run
        for worker in workers:
            assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.1)
    pytest.fail(f"run {run.id} still {run.status} ({run.phase}) after {seconds} s")


def _stop(workers) -> list[str]:
    outputs = []
    for worker in workers:
        worker.send_signal(signal.SIGTERM)  # a warm shutdown: finish the current job, then exit
        out, _ = worker.communicate(timeout=30)
        outputs.append(out)
    return outputs


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_the_chunks_of_one_run_and_it_commits_once(redis_url, settings):
    campaign = make_campaign(1000, labeled_share=0.2)
    # A first run in this process gives the reference scores (the models do not depend on the run).
    reference = rescore_now(campaign)
    expected = {
        item_id: (risk, uncertainty)
        for item_id, risk, uncertainty in ItemScore.objects.filter(run=reference).values_list(
            "item_id", "risk", "uncertainty"
        )
    }
    # New texts make the split run hash features in chunks too.
    campaign.prompts.update(features_version=0)

    request = runs.request_rescore(campaign, "test")
    env = process_env(redis_url, **SPLIT)
    workers = [manage_popen("rqworker", "default", env=env) for _ in range(2)]
    try:
        run = _wait_for(request.run, workers)
    finally:
        outputs = _stop(workers)

    assert run.status == Status.SUCCEEDED, run.error
    campaign.refresh_from_db()
    assert campaign.scoring_run == run
    assert run.item_count == 1000
    assert set(run.timings) == {"features", "train", "score", "select", "write"}
    scores = ItemScore.objects.filter(run=run)
    assert scores.count() == 1000
    got = {item_id: (r, h) for item_id, r, h in scores.values_list("item_id", "risk", "uncertainty")}
    assert got.keys() == expected.keys()
    assert np.allclose([got[i] for i in sorted(got)], [expected[i] for i in sorted(expected)])
    assert sorted(scores.filter(selected=True).values_list("rank", flat=True)) == list(
        range(scores.filter(selected=True).count())
    )
    # 4 score chunks of 250 items, and both workers took part in the run.
    score_jobs = [out.count("default: scoring.chunked.score_job(") for out in outputs]
    assert sum(score_jobs) == 4, outputs
    assert all("chunked." in out for out in outputs), outputs
    # The run's intermediate values are gone from Redis.
    assert not list(django_rq.get_connection("default").scan_iter(chunked._key(run.id, "*")))


@pytest.mark.django_db
def test_a_lost_chunk_fails_the_run_and_the_previous_scores_stay(redis_url, settings):
    settings.SCORING_SPLIT_CHUNK_ITEMS = 100
    campaign = make_campaign(300, labeled_share=0.2)
    first = rescore_now(campaign)
    run = runs.claim(campaign, trigger="test")
    chunked.start(run)
    assert chunked.train_job(run.id).endswith("3 score chunks")
    chunked.score_job(run.id, 0, *_range(campaign, 0, 100))
    chunked.score_job(run.id, 2, *_range(campaign, 200, None))
    # Chunk 1 never ran (its worker died): the finishing job refuses to commit a partial run.
    with pytest.raises(RuntimeError, match=r"score chunks \[1\]"):
        chunked.finish_job(run.id, 3)
    run.refresh_from_db()
    assert run.status == Status.FAILED and "missing" in run.error
    campaign.refresh_from_db()
    assert campaign.scoring_run == first
    assert not ItemScore.objects.filter(run=run).exists()
    # Jobs of a run that ended do nothing.
    assert "no longer running" in chunked.score_job(run.id, 1, *_range(campaign, 100, 200))


@pytest.fixture(autouse=True)
def _empty_queue(redis_url):
    """Jobs enqueued without a worker here must not reach a later test's worker."""
    yield
    queue = django_rq.get_queue("default")
    queue.empty()
    for job_id in queue.deferred_job_registry.get_job_ids():
        queue.deferred_job_registry.remove(job_id, delete_job=True)


def _range(campaign, start: int, stop: int | None) -> tuple[int, int | None]:
    ids = list(campaign.items.order_by("id").values_list("id", flat=True))
    return ids[start], (ids[stop] if stop is not None else None)
