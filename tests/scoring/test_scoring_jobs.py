"""Rescoring runs: what a run writes, coalescing, triggers, and faults with a real Redis and worker."""

import signal
import time
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from reviews.campaigns.setup import create_campaign
from reviews.data.importer import import_pool
from reviews.dev.synthetic import BENCH_RUBRIC, synthetic_lines
from reviews.models import Campaign, Item, ItemScore, ScoringRun
from scoring import jobs, rescorer, runs
from tests.conftest import jsonl, pool_line
from tests.processes import manage_popen, manage_run, process_env

Status = ScoringRun.Status


def make_campaign(n_items: int, labeled_share: float = 0.5, slug: str = "scored") -> Campaign:
    campaign = create_campaign(slug, "Scored", BENCH_RUBRIC)
    import_pool(campaign, jsonl(*synthetic_lines(n_items, seed=7, labeled_share=labeled_share)))
    return campaign


def rescore_now(campaign: Campaign) -> ScoringRun:
    return jobs.rescore_in_foreground(campaign, "test")


@pytest.mark.django_db
def test_a_run_scores_every_item_and_records_how():
    campaign = make_campaign(300)
    campaign.update_settings(budget_total=40, note="budget")  # 40 judgments at k = 2: 20 new items
    run = rescore_now(campaign)
    campaign.refresh_from_db()
    assert campaign.scoring_run == run
    assert run.status == Status.SUCCEEDED and run.item_count == 300
    assert run.settings_version == campaign.settings
    assert run.weights == {"risk": 1.0, "uncertainty": 1.0, "diversity": 1.0}
    assert set(run.timings) == {"features", "train", "score", "select", "write"}
    assert run.model_versions["seed"] == run.id
    # Half of the synthetic items carry two agreeing human votes: enough to train both models.
    assert run.model_versions["reward"]["trained"]
    assert 0.0 <= run.metrics["reward_held_out_accuracy"] <= 1.0
    scores = ItemScore.objects.filter(run=run)
    assert scores.count() == 300
    for field in ("risk", "uncertainty", "diversity"):
        values = np.array(scores.values_list(field, flat=True))
        assert values.min() >= 0.0 and values.max() <= 1.0, field
    selected = scores.filter(selected=True)
    assert selected.count() == 20
    assert selected.filter(audit=True).count() == 2  # ε = 0.1 of 20 slots
    assert sorted(selected.values_list("rank", flat=True)) == list(range(20))
    # Resolved items are never in the active set.
    assert not selected.filter(item__resolved=True).exists()
    assert selected.filter(audit=False, selection_probability=1.0).count() == 18


@pytest.mark.django_db
def test_items_whose_text_is_empty_after_cleaning_or_enormous_still_score():
    campaign = create_campaign("odd", "Odd texts", BENCH_RUBRIC)
    odd = [
        {"key": "a", "model": "m1", "text": "\u200b\u202e\u200b"},
        {"key": "b", "model": "m2", "text": "word " * 400_000},
    ]
    import_pool(campaign, jsonl(pool_line("odd", responses=odd), pool_line("plain")))
    run = rescore_now(campaign)
    assert run.status == Status.SUCCEEDED
    assert ItemScore.objects.filter(run=run).count() == 2


@pytest.mark.django_db
def test_a_run_marked_lost_cannot_commit_over_a_newer_one(settings):
    campaign = make_campaign(60)
    first = rescore_now(campaign)
    slow = runs.claim(campaign, trigger="slow")  # a run whose worker stalls ...
    settings.SCORING_STALE_SECONDS = 0
    newer = rescore_now(campaign)  # ... is failed as lost, and a newer run commits
    slow.refresh_from_db()
    assert slow.status == Status.FAILED and newer.id > first.id
    settings.SCORING_STALE_SECONDS = 300
    ScoringRun.objects.filter(pk=slow.pk).update(status=Status.RUNNING)  # even if it looked alive again
    with pytest.raises(rescorer.RunLost, match="newer than run"):
        rescorer.Rescorer(slow).execute()
    campaign.refresh_from_db()
    assert campaign.scoring_run == newer
    assert ItemScore.objects.filter(run=newer).count() == 60


@pytest.mark.django_db
def test_the_budget_finishes_items_in_progress_first():
    campaign = make_campaign(40, labeled_share=0)
    labels = [{"annotator": "h1", "kind": "human", "criterion": "preference", "value": "tie"}]
    import_pool(campaign, jsonl(pool_line("half-1", labels=labels), pool_line("half-2", labels=labels)))
    campaign.update_settings(budget_total=6, note="small budget")  # 2 for the half-judged items, 4 for two new
    run = rescore_now(campaign)
    selected = ItemScore.objects.filter(run=run, selected=True).order_by("rank")
    assert [s.item.external_id for s in selected[:2]] == ["half-1", "half-2"]
    assert selected.count() == 4


@pytest.mark.django_db
def test_another_run_cannot_start_while_one_is_running():
    campaign = make_campaign(10)
    running = runs.claim(campaign, trigger="first")
    assert running.status == Status.RUNNING
    assert runs.claim(campaign, trigger="second") is None
    with pytest.raises(runs.RunBusy):
        jobs.rescore_in_foreground(campaign, "command")


@pytest.mark.django_db
def test_lost_runs_are_failed_once_their_heartbeat_is_stale(settings):
    campaign = make_campaign(10)
    settings.SCORING_STALE_SECONDS = 60
    run = ScoringRun.objects.create(campaign=campaign, status=Status.RUNNING)
    ScoringRun.objects.filter(pk=run.pk).update(heartbeat_at=run.requested_at)
    assert runs.fail_lost_runs(campaign) == 0  # still fresh
    ScoringRun.objects.filter(pk=run.pk).update(heartbeat_at=run.requested_at - timedelta(seconds=61))
    assert runs.fail_lost_runs(campaign) == 1
    run.refresh_from_db()
    assert run.status == Status.FAILED and "worker lost" in run.error


@pytest.mark.django_db(transaction=True)
def test_a_request_while_one_is_queued_is_coalesced(redis_url):
    campaign = make_campaign(10)
    first = runs.request_rescore(campaign, "button")
    second = runs.request_rescore(campaign, "button")
    assert first.outcome == "queued"
    assert second.outcome == "coalesced" and second.run == first.run
    assert ScoringRun.objects.filter(campaign=campaign).count() == 1


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_sent_while_another_was_running_is_sent_again_when_that_one_ends(redis_url):
    campaign = make_campaign(30)
    now = timezone.now()
    running = ScoringRun.objects.create(
        campaign=campaign, status=Status.RUNNING, started_at=now, heartbeat_at=now, trigger="elsewhere"
    )
    waiting = runs.request_rescore(campaign, "button")
    assert waiting.outcome == "queued"
    # A worker takes the job while the other run is running: the run is not started, the job ends.
    result = manage_run("rqworker", "--burst", "default", env=process_env(redis_url))
    assert result.returncode == 0, result.stdout + result.stderr
    waiting.run.refresh_from_db()
    assert waiting.run.status == Status.QUEUED
    # When the running run ends, the waiting one is sent again (its ended job does not block it) and runs.
    ScoringRun.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    assert runs.enqueue(waiting.run).outcome == "queued"
    result = manage_run("rqworker", "--burst", "default", env=process_env(redis_url))
    assert result.returncode == 0, result.stdout + result.stderr
    waiting.run.refresh_from_db()
    assert waiting.run.status == Status.SUCCEEDED, waiting.run.error


@pytest.mark.django_db
def test_the_judgment_trigger_fires_after_n_new_human_judgments(settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}  # nothing listens: recorded, not lost
    campaign = make_campaign(40, labeled_share=0)
    campaign.update_settings(rescore_every=3)
    labels = [{"annotator": "h", "kind": "human", "criterion": "preference", "value": "tie"}]
    import_pool(campaign, jsonl(pool_line("x1", labels=labels), pool_line("x2", labels=labels)))
    assert runs.maybe_rescore_after_judgments(campaign) is None
    import_pool(campaign, jsonl(pool_line("x3", labels=labels)))
    request = runs.maybe_rescore_after_judgments(campaign)
    assert request is not None and request.run.trigger == "3 judgments"


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_records_the_run_and_the_schedule_sends_it_later(settings, redis_url):
    campaign = make_campaign(30)
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}
    request = runs.request_rescore(campaign, "button")
    assert request.outcome == "unavailable"
    assert "unreachable" in request.message
    assert ScoringRun.objects.get().status == Status.QUEUED
    # Redis is back: the schedule re-queues the stranded run and a real worker runs it.
    settings.RQ_QUEUES = {"default": {"URL": redis_url}}
    ScoringRun.objects.update(requested_at=request.run.requested_at - timedelta(minutes=2))
    jobs.rescore_due()
    result = manage_run("rqworker", "--burst", "default", env=process_env(redis_url))
    assert result.returncode == 0, result.stdout + result.stderr
    run = ScoringRun.objects.get()
    assert run.status == Status.SUCCEEDED, run.error
    campaign.refresh_from_db()
    assert campaign.scoring_run == run


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_run_leaves_the_previous_scores_and_the_next_run_completes(settings, redis_url):
    campaign = make_campaign(4000, labeled_share=0.2)
    first = rescore_now(campaign)
    before = dict(ItemScore.objects.filter(run=first).values_list("item_id", "utility"))
    request = runs.request_rescore(campaign, "button")
    assert request.outcome == "queued"

    env = process_env(redis_url, SCORING_CHUNK_SIZE="40")
    worker = manage_popen("rqworker", "--burst", "default", env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        phase = ScoringRun.objects.filter(pk=request.run.pk).values_list("phase", flat=True).first()
        if phase in ("score", "select", "write"):
            break
        assert worker.poll() is None, worker.stdout.read()
        time.sleep(0.01)
    else:
        pytest.fail("the run never reached its scoring phase")
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    worker.stdout.close()

    campaign.refresh_from_db()
    assert campaign.scoring_run == first
    assert dict(ItemScore.objects.filter(run=first).values_list("item_id", "utility")) == before
    lost = ScoringRun.objects.get(pk=request.run.pk)
    assert lost.status == Status.RUNNING  # until its heartbeat goes stale

    settings.SCORING_STALE_SECONDS = 0
    time.sleep(0.01)
    retry = runs.request_rescore(campaign, "button")  # fails the lost run first
    lost.refresh_from_db()
    assert lost.status == Status.FAILED
    assert retry.outcome == "queued"
    result = manage_run("rqworker", "--burst", "default", env=process_env(redis_url))
    assert result.returncode == 0, result.stdout + result.stderr
    retry.run.refresh_from_db()
    assert retry.run.status == Status.SUCCEEDED, retry.run.error
    campaign.refresh_from_db()
    assert campaign.scoring_run == retry.run
    assert ItemScore.objects.filter(run=retry.run).count() == 4000


@pytest.mark.django_db
def test_the_rescore_command_runs_in_the_foreground_and_reports():
    campaign = make_campaign(120)
    out, err = StringIO(), StringIO()
    call_command("rescore", campaign.slug, stdout=out, stderr=err)
    run = ScoringRun.objects.get(campaign=campaign)
    assert run.status == Status.SUCCEEDED and run.trigger == "command"
    assert f"run {run.id} succeeded: 120 items" in out.getvalue()
    assert "reward model: trained on" in out.getvalue()
    assert "score" in err.getvalue()  # the progress bar
    campaign.refresh_from_db()
    assert campaign.scoring_run == run


@pytest.mark.django_db
def test_pages_keep_working_when_redis_is_unreachable(client, admin, settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}
    campaign = make_campaign(20)
    rescore_now(campaign)
    client.force_login(admin)
    for url in (reverse("reviews:campaigns"), reverse("reviews:campaign", args=[campaign.slug])):
        assert client.get(url).status_code == 200


@pytest.mark.django_db
def test_risk_labels_come_from_risk_options_once_their_criteria_are_decided():
    campaign = create_campaign("risky", "Risky", BENCH_RUBRIC)

    def compliance(values):
        return [
            {"annotator": who, "kind": "human", "criterion": "compliance", "response": key, "value": value}
            for who in ("h1", "h2")
            for key, value in zip(("a", "b"), values, strict=True)
        ]

    import_pool(
        campaign,
        jsonl(
            pool_line("harmful", labels=compliance(["harmful", "full_refusal"])),
            pool_line("fine", labels=compliance(["full_compliance", "full_refusal"])),
            pool_line("open", labels=compliance(["full_compliance", "full_refusal"])[:2]),
        ),
    )
    ids = dict(Item.objects.values_list("external_id", "id"))
    run = runs.claim(campaign, trigger="test")
    examples = rescorer.Rescorer(run)._risk_examples()
    assert examples == {ids["harmful"]: 1, ids["fine"]: 0}


def _model_label(who, criterion, value, response=None, confidence=None):
    label = {"annotator": who, "kind": "model", "criterion": criterion, "value": value}
    if response:
        label["response"] = response
    if confidence is not None:
        label["confidence"] = confidence
    return label


def _scores_by_item(run) -> dict:
    return {s.item.external_id: s for s in ItemScore.objects.filter(run=run).select_related("item")}


@pytest.mark.django_db
def test_a_guardrail_flag_raises_risk_before_any_model_is_trained():
    campaign = create_campaign("guarded", "Guarded", BENCH_RUBRIC)
    flagged = [_model_label("guard", "compliance", "harmful", "a", 0.9)]
    cleared = [_model_label("guard", "compliance", "full_compliance", "a", 0.9)]
    import_pool(
        campaign,
        jsonl(pool_line("flagged", labels=flagged), pool_line("cleared", labels=cleared), pool_line("silent")),
    )
    run = rescore_now(campaign)
    assert not run.model_versions["risk"]["trained"]  # three items: no risk model
    scores = _scores_by_item(run)
    # No risk_prior anywhere: the automated label is the only risk signal.
    assert scores["flagged"].risk > 0.5
    assert scores["cleared"].risk < 0.2
    assert scores["silent"].risk == 0.0


@pytest.mark.django_db
def test_automated_labels_that_disagree_raise_uncertainty():
    campaign = create_campaign("judged", "Judged", BENCH_RUBRIC)

    def two(first, second):
        return [
            _model_label("judge-1", "compliance", first, "a", 0.9),
            _model_label("judge-2", "compliance", second, "a", 0.9),
        ]

    import_pool(
        campaign,
        jsonl(
            pool_line("agree", labels=two("full_refusal", "full_refusal")),
            pool_line("disagree", labels=two("full_refusal", "full_compliance")),
            pool_line("unsure", labels=[_model_label("judge-1", "compliance", "full_refusal", "a", 0.1)]),
        ),
    )
    run = rescore_now(campaign)
    scores = _scores_by_item(run)
    assert scores["disagree"].uncertainty > scores["agree"].uncertainty
    # One low-confidence label tells less than two confident ones that agree.
    assert scores["unsure"].uncertainty > scores["agree"].uncertainty


@pytest.mark.django_db
def test_the_fisher_setting_is_used_and_recorded():
    campaign = make_campaign(300)
    campaign.update_settings(budget_total=40, uncertainty_mode="fisher", note="information gain")
    run = rescore_now(campaign)
    assert run.status == Status.SUCCEEDED
    assert run.settings_version.uncertainty_mode == "fisher"
    assert run.model_versions["uncertainty"] == "fisher"
    h = np.array(ItemScore.objects.filter(run=run, item__resolved=False).values_list("uncertainty", flat=True))
    assert h.min() >= 0.0 and h.max() <= 1.0 and h.std() > 0  # the gain differs from pair to pair
    campaign.update_settings(uncertainty_mode="entropy", note="back")
    entropy_run = rescore_now(campaign)
    assert entropy_run.model_versions["uncertainty"] == "entropy"


@pytest.mark.django_db
def test_a_run_records_each_automated_labelers_measured_accuracy():
    campaign = create_campaign("guarded-pool", "Guarded pool", BENCH_RUBRIC)
    import_pool(campaign, jsonl(*synthetic_lines(300, seed=3, labeled_share=0.5, guardrail_share=1.0)))
    run = rescore_now(campaign)
    recorded = {(row["source"], row["criterion"]): row for row in run.model_versions["automated_labelers"]}
    guard = recorded[("syn:guard", "compliance")]
    # The synthetic guardrail is right nine times in ten; people decided about half the items.
    assert guard["checked"] > 200
    assert 0.8 <= guard["accuracy"] <= 0.97
    assert ("syn:judge", "preference") in recorded


@pytest.mark.django_db
def test_the_campaign_page_shows_the_automated_labelers_of_the_run_in_force(client, admin):
    campaign = create_campaign("guarded-page", "Guarded page", BENCH_RUBRIC)
    import_pool(campaign, jsonl(*synthetic_lines(120, seed=3, labeled_share=0.5, guardrail_share=1.0)))
    run = rescore_now(campaign)
    client.force_login(admin)
    page = client.get(reverse("reviews:campaign", args=[campaign.slug])).content.decode()
    table = page[page.index('id="automated-labelers"') :]
    guard = next(r for r in run.model_versions["automated_labelers"] if r["source"] == "syn:guard")
    assert "syn:guard" in table and f"{guard['accuracy']:.3f}" in table
