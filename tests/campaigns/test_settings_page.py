"""The campaign settings page: every setting, each save a new version with who and when, invalid values refused."""

import pytest
from django.urls import reverse

from reviews.campaigns.forms import SettingsForm
from reviews.campaigns.settings_history import SettingsError, change_settings, settings_history
from reviews.models import CampaignSettings, FeedbackEvent

pytestmark = pytest.mark.django_db


def url(slug="demo"):
    return reverse("reviews:campaign_settings", args=[slug])


def post_data(campaign, **changes) -> dict:
    data = {name: "" if value is None else str(value) for name, value in campaign.settings.values().items()}
    data["note"] = ""
    data.update({name: "" if value is None else str(value) for name, value in changes.items()})
    return data


def test_the_form_edits_every_campaign_setting():
    assert set(SettingsForm().fields) == {*CampaignSettings.SETTING_FIELDS, "note"}


def test_the_page_shows_the_settings_in_force_and_their_history(client, campaign, admin):
    client.force_login(admin)
    response = client.get(url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "version 1" in html and "initial values" in html
    form = response.context["form"]
    assert form["overlap_k"].value() == 2 and form["audit_share"].value() == 0.1
    assert form["budget_total"].value() is None


def test_a_save_is_a_new_version_with_who_when_note_and_an_event(client, campaign, admin):
    client.force_login(admin)
    data = post_data(
        campaign, lambda_risk=2.5, budget_total=500, budget_daily=50, overlap_k=3, gold_rate=0.05, note="more risk"
    )
    response = client.post(url(), data, follow=True)
    assert response.redirect_chain == [(url(), 302)]
    assert "Saved as settings version 2." in response.content.decode()
    campaign.__dict__.pop("settings", None)
    current = campaign.settings
    assert (current.number, current.created_by, current.note) == (2, admin, "more risk")
    assert (current.lambda_risk, current.budget_total, current.budget_daily, current.overlap_k) == (2.5, 500, 50, 3)
    assert current.gold_rate == 0.05 and current.tau_risk == 0.8  # untouched values carried over
    event = FeedbackEvent.objects.get(action=FeedbackEvent.Action.SETTINGS_CHANGED)
    assert (event.campaign, event.actor, event.role, event.settings_version) == (campaign, admin, "admin", current)
    assert event.feedback == {
        "version": 2,
        "previous": 1,
        "note": "more risk",
        "changes": {
            "lambda_risk": [1.0, 2.5],
            "budget_total": [None, 500],
            "budget_daily": [None, 50],
            "overlap_k": [2, 3],
            "gold_rate": [0.0, 0.05],
        },
    }
    assert event.rubric_version == campaign.rubric_version()
    history = settings_history(campaign)
    assert [row.version.number for row in history] == [2, 1]
    assert ("overlap_k", 2, 3) in history[0].changes and len(history[0].changes) == 5
    html = response.content.decode()
    assert "more risk" in html and "ada" in html and "<code>overlap_k</code>: 2 → 3" in html


def test_clearing_a_budget_removes_the_cap(client, campaign, admin):
    campaign.update_settings(user=admin, budget_total=100)
    client.force_login(admin)
    client.post(url(), post_data(campaign, budget_total=None))
    campaign.__dict__.pop("settings", None)
    assert campaign.settings.budget_total is None and campaign.settings.number == 3


def test_saving_unchanged_values_records_no_version(client, campaign, admin):
    client.force_login(admin)
    response = client.post(url(), post_data(campaign), follow=True)
    assert "Nothing changed: the settings stay at version 1." in response.content.decode()
    assert campaign.settings_versions.count() == 1
    assert not FeedbackEvent.objects.filter(action=FeedbackEvent.Action.SETTINGS_CHANGED).exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget_total": -1}, "Total budget cannot be less than 0."),
        ({"budget_daily": -5}, "Daily budget cannot be less than 0."),
        ({"audit_share": 1.5}, "Audit share ε must be a number between 0 and 1."),
        ({"audit_share": -0.1}, "Audit share ε must be a number between 0 and 1."),
        ({"overlap_k": 0}, "Overlap k cannot be less than 1."),
        ({"lambda_risk": 0, "lambda_uncertainty": 0, "lambda_diversity": 0}, "At least one λ weight must be positive"),
        ({"lambda_diversity": -1}, "λ diversity must be a number of at least 0."),
        ({"gold_rate": 2}, "Gold rate must be a number between 0 and 1."),
        ({"tau_conf": 7}, "τ confidence must be a number between 1 and 5."),
        ({"tau_disagree": 1.2}, "τ disagree must be a number between 0 and 1."),
        ({"lease_minutes": 0}, "Lease length (minutes) cannot be less than 1."),
        ({"sla_hours": 0}, "Escalation SLA (hours) must be positive."),
        ({"rescore_every": 0}, "Rescore after N judgments cannot be less than 1."),
        ({"overlap_k": "two"}, "Overlap k: enter a whole number."),
        ({"lambda_risk": ""}, "λ risk is required."),
        ({"uncertainty_mode": "bayes"}, "Uncertainty mode: choose entropy or fisher."),
    ],
)
def test_invalid_values_are_refused_with_a_message_and_nothing_is_written(client, campaign, admin, changes, message):
    client.force_login(admin)
    response = client.post(url(), post_data(campaign, **changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was saved." in html
    assert message in html
    assert campaign.settings_versions.count() == 1
    assert not FeedbackEvent.objects.filter(action=FeedbackEvent.Action.SETTINGS_CHANGED).exists()


def test_change_settings_refuses_what_the_model_refuses(campaign, admin):
    with pytest.raises(SettingsError) as exc:
        change_settings(campaign, {"budget_total": -3}, user=admin)
    assert exc.value.errors == {"budget_total": ["A budget cannot be negative; leave it empty for no cap."]}
    with pytest.raises(SettingsError) as exc:
        change_settings(campaign, {"lambda_risk": 0, "lambda_uncertainty": 0, "lambda_diversity": 0}, user=admin)
    assert exc.value.errors == {None: ["At least one λ weight must be positive."]}
    with pytest.raises(SettingsError) as exc:
        change_settings(campaign, {"tau_risk": 3}, user=admin)
    assert exc.value.errors == {"tau_risk": ["Must be between 0 and 1."]}
    with pytest.raises(SettingsError, match="unknown setting"):
        change_settings(campaign, {"colour": "red"}, user=admin)
    assert campaign.settings_versions.count() == 1


def test_the_history_pages_through_many_versions(campaign, admin):
    for n in range(1, 6):
        change_settings(campaign, {"lease_minutes": 15 + n}, user=admin, note=f"step {n}")
    rows = settings_history(campaign, limit=3)
    assert [row.version.number for row in rows] == [6, 5, 4]
    assert rows[-1].changes == [("lease_minutes", 17, 18)]


def test_judgments_keep_the_settings_version_they_were_made_under(campaign, admin):
    from reviews.data.importer import import_pool
    from tests.conftest import jsonl, pool_line
    from tests.labeling.test_queue import judge, labelers

    import_pool(campaign, jsonl(pool_line("a"), pool_line("b")))
    (user,) = labelers(1)
    first = judge(user, campaign)
    v2 = change_settings(campaign, {"lease_minutes": 30}, user=admin)
    second = judge(user, campaign)
    assert first.judgment.settings_version.number == 1
    assert second.judgment.settings_version == v2
