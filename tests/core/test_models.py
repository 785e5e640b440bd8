"""Model rules: versioned settings, constraints the database enforces, published rubrics."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from reviews.core.exceptions import ImmutableError
from reviews.data.importer import import_pool
from reviews.models import Annotator, Answer, CampaignSettings, Item, Judgment
from tests.conftest import RUBRIC, jsonl, pool_line

pytestmark = pytest.mark.django_db


def test_new_campaigns_get_the_design_defaults(campaign):
    s = campaign.settings
    assert (s.lambda_risk, s.lambda_uncertainty, s.lambda_diversity) == (1, 1, 1)
    assert (s.overlap_k, s.audit_share, s.lease_minutes, s.gold_rate, s.rescore_every) == (2, 0.1, 15, 0, 50)
    assert (s.tau_risk, s.tau_disagree, s.tau_conf) == (0.8, 0.5, 2)
    assert s.budget_total is None and s.budget_daily is None


def test_each_settings_change_is_a_new_version_with_who_and_why(campaign, admin):
    first = campaign.settings
    second = campaign.update_settings(user=admin, note="tighter overlap", overlap_k=3)
    assert (second.number, second.overlap_k, second.created_by, second.note) == (2, 3, admin, "tighter overlap")
    assert second.lambda_risk == first.lambda_risk
    first.refresh_from_db()
    assert first.overlap_k == 2
    assert campaign.settings == second
    with pytest.raises(ImmutableError):
        second.save()
    with pytest.raises(ImmutableError):
        CampaignSettings.objects.filter(pk=first.pk).update(overlap_k=5)


@pytest.mark.parametrize(
    "change",
    [
        {"budget_total": -1},
        {"audit_share": 1.5},
        {"overlap_k": 0},
        {"lambda_risk": 0, "lambda_uncertainty": 0, "lambda_diversity": 0},
        {"tau_conf": 7},
    ],
)
def test_invalid_settings_are_refused_and_nothing_is_recorded(campaign, change):
    with pytest.raises(ValidationError):
        campaign.update_settings(**change)
    assert campaign.settings_versions.count() == 1


def test_one_judgment_per_annotator_per_item(campaign):
    import_pool(
        campaign,
        jsonl(pool_line("a", labels=[{"annotator": "h1", "kind": "human", "criterion": "preference", "value": "a"}])),
    )
    judgment = Judgment.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Judgment.objects.create(
            item=judgment.item,
            annotator=judgment.annotator,
            rubric_version=judgment.rubric_version,
            settings_version=judgment.settings_version,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Answer.objects.create(judgment=judgment, criterion="preference", value="b")


def test_an_item_pairs_two_distinct_responses(campaign):
    import_pool(campaign, jsonl(pool_line("a")))
    item = Item.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(response_b=item.response_a)


def test_user_and_external_annotators_live_in_separate_namespaces(labeler):
    Annotator.objects.create(name=labeler.username)  # an external annotator of the same name
    assert Annotator.for_user(labeler).user == labeler
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotator.objects.create(name=labeler.username)


def test_publishing_numbers_versions_and_leaves_old_ones_intact(campaign):
    rubric = campaign.rubric
    first = rubric.latest_published()
    second = rubric.publish({**RUBRIC, "guidelines": "v2"}, note="clarify")
    assert (first.number, second.number) == (1, 2)
    assert campaign.rubric_version() == second
    first.refresh_from_db()
    assert first.parsed.guidelines == RUBRIC["guidelines"]
    first.definition = {**RUBRIC, "guidelines": "rewritten history"}
    with pytest.raises(ImmutableError):
        first.save()
