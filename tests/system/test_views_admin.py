"""Admin actions on a campaign page: the rescoring button and the runs table."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviews.models import ScoringRun

pytestmark = pytest.mark.django_db

DEAD_REDIS = {"default": {"URL": "redis://127.0.0.1:1/0"}}


def rescore_url(campaign):
    return reverse("reviews:campaign_rescore", args=[campaign.slug])


def test_only_admins_may_press_rescore(client, campaign, labeler, lead):
    for user in (labeler, lead):
        client.force_login(user)
        assert client.post(rescore_url(campaign)).status_code == 403
    client.logout()
    assert client.post(rescore_url(campaign)).status_code == 302  # to the login page
    assert not ScoringRun.objects.exists()


def test_rescore_is_post_only(client, campaign, admin):
    client.force_login(admin)
    assert client.get(rescore_url(campaign)).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_button_records_a_run_and_says_when_the_queue_is_unreachable(client, campaign, admin, settings):
    settings.RQ_QUEUES = DEAD_REDIS
    client.force_login(admin)
    response = client.post(rescore_url(campaign))
    assert response.status_code == 302
    assert response.url == reverse("reviews:campaign", args=[campaign.slug]) + "#scoring"
    run = ScoringRun.objects.get()
    assert (run.status, run.trigger) == (ScoringRun.Status.QUEUED, "button (ada)")
    [message] = list(get_messages(response.wsgi_request))
    assert "queue is unreachable" in str(message) and message.level_tag == "warning"
    # A second press joins the queued run instead of starting another.
    response = client.post(rescore_url(campaign))
    assert "already queued" in str(list(get_messages(response.wsgi_request))[-1])
    assert ScoringRun.objects.count() == 1


def test_the_campaign_page_lists_runs_with_status_and_timings(client, campaign, admin, lead, labeler):
    ScoringRun.objects.create(
        campaign=campaign,
        status="succeeded",
        item_count=12,
        timings={"score": 0.5},
        trigger="schedule",
        model_versions={"reward": {"trained": False, "skipped": "3 decided pairs, fewer than 20"}},
    )
    client.force_login(admin)
    page = client.get(reverse("reviews:campaign", args=[campaign.slug])).content.decode()
    assert "Rescore now" in page
    assert "score 0.5" in page and "schedule" in page
    assert "3 decided pairs, fewer than 20" in page
    client.force_login(lead)
    page = client.get(reverse("reviews:campaign", args=[campaign.slug])).content.decode()
    assert "score 0.5" in page and "Rescore now" not in page
    client.force_login(labeler)
    page = client.get(reverse("reviews:campaign", args=[campaign.slug])).content.decode()
    assert "score 0.5" not in page
