"""Campaign membership: adding and removing members (recorded), what labelers may see, and the commands."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reviews.access import get_campaign_for, is_member, visible_campaigns
from reviews.campaigns.setup import create_campaign
from reviews.campaigns.status import campaigns_overview
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import FeedbackEvent, Membership
from reviews.people.accounts import create_user
from reviews.people.membership import MembershipError, add_member, add_member_by_username, remove_member
from tests.conftest import PASSWORD, RUBRIC, jsonl, pool_line

pytestmark = pytest.mark.django_db


def membership_events():
    return FeedbackEvent.objects.filter(action=FeedbackEvent.Action.MEMBERSHIP_CHANGED).order_by("id")


@pytest.fixture
def newbie(db):
    return create_user("nia", Role.LABELER, password=PASSWORD)


def test_adding_a_member_is_recorded_with_who(campaign, newbie, admin):
    membership, changed = add_member(campaign, newbie, by=admin, note="new hire")
    assert changed and membership.active and membership.added_by == admin
    event = membership_events().get()
    assert event.actor == admin and event.role == "admin" and event.campaign == campaign
    assert event.feedback == {
        "change": "added",
        "user": "nia",
        "user_id": newbie.id,
        "member_role": "labeler",
        "note": "new hire",
    }
    assert event.settings_version == campaign.settings and event.rubric_version == campaign.rubric_version()


def test_adding_an_active_member_again_changes_and_records_nothing(campaign, newbie, admin):
    add_member(campaign, newbie, by=admin)
    assert add_member(campaign, newbie, by=admin) == (Membership.objects.get(user=newbie), False)
    assert membership_events().count() == 1


def test_removing_keeps_the_row_and_adding_back_reactivates_it(campaign, newbie, admin):
    add_member(campaign, newbie, by=admin)
    assert remove_member(campaign, newbie, by=admin, note="left the team")
    assert not remove_member(campaign, newbie, by=admin)  # not a member any more: nothing recorded
    row = Membership.objects.get(user=newbie)
    assert not row.active
    add_member(campaign, newbie, by=admin)
    assert Membership.objects.filter(user=newbie).count() == 1 and Membership.objects.get(user=newbie).active
    assert [e.feedback["change"] for e in membership_events()] == ["added", "removed", "reactivated"]


def test_an_unknown_username_is_a_clear_error(campaign):
    with pytest.raises(MembershipError, match="no user 'ghost'"):
        add_member_by_username(campaign, "ghost")


def test_labelers_see_only_their_campaigns_leads_and_admins_every_one(campaign, newbie, labeler, lead, admin):
    other = create_campaign("other", "Other", RUBRIC)
    assert list(visible_campaigns(labeler)) == [campaign]
    assert list(visible_campaigns(newbie)) == []
    assert set(visible_campaigns(lead)) == {campaign, other} == set(visible_campaigns(admin))
    assert [c.slug for c in campaigns_overview(labeler)] == ["demo"]
    assert {c.slug for c in campaigns_overview(lead)} == {"demo", "other"}
    from django.http import Http404

    with pytest.raises(Http404):
        get_campaign_for(labeler, "other")
    assert get_campaign_for(lead, "other") == other


def test_a_removed_labeler_loses_the_campaign_and_its_queue(campaign, labeler, admin):
    import_pool(campaign, jsonl(pool_line("one")))
    assert queue.claim_next(campaign, labeler).state == "item"
    remove_member(campaign, labeler, by=admin)
    assert not is_member(labeler, campaign)
    # Even the open lease is no longer renewed through the queue.
    assert queue.claim_next(campaign, labeler).state == "not_member"
    assert list(visible_campaigns(labeler)) == []


def test_a_lead_works_in_any_campaign_without_membership(lead):
    other = create_campaign("other", "Other", RUBRIC)
    import_pool(other, jsonl(pool_line("one")))
    assert queue.claim_next(other, lead).state == "item"


# -- commands ----------------------------------------------------------------------------------


def test_create_user_with_campaigns(campaign, monkeypatch):
    other = create_campaign("other", "Other", RUBRIC)
    monkeypatch.setenv("REVIEWS_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("create_user", "sam", "--role", "labeler", "--campaign", "demo", "--campaign", "other", stdout=out)
    assert "sam is a member of demo" in out.getvalue() and "sam is a member of other" in out.getvalue()
    assert set(Membership.objects.filter(user__username="sam").values_list("campaign__slug", flat=True)) == {
        "demo",
        other.slug,
    }
    assert membership_events().filter(feedback__user="sam").count() == 2


def test_create_user_with_an_unknown_campaign_creates_nothing(campaign, monkeypatch):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("REVIEWS_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="no such campaign: nope"):
        call_command("create_user", "sam", "--role", "labeler", "--campaign", "nope")
    assert not get_user_model().objects.filter(username="sam").exists()


def test_add_member_command(campaign, newbie):
    out = StringIO()
    call_command("add_member", "demo", "nia", stdout=out)
    assert "nia is now a member of demo" in out.getvalue()
    call_command("add_member", "demo", "nia", stdout=out)
    assert "already is a member" in out.getvalue()
    call_command("add_member", "demo", "nia", "--remove", stdout=out)
    assert not Membership.objects.get(user=newbie).active
    assert [e.feedback["change"] for e in membership_events()] == ["added", "removed"]
    with pytest.raises(CommandError, match="no user 'ghost'"):
        call_command("add_member", "demo", "ghost")
    with pytest.raises(CommandError, match="no such campaign"):
        call_command("add_member", "nope", "nia")


def test_seed_demo_makes_the_demo_labeler_a_member():
    from reviews.dev.demo import DEMO_SLUG, ensure_demo

    ensure_demo(StringIO(), show_passwords=False)
    members = set(
        Membership.objects.filter(campaign__slug=DEMO_SLUG, active=True).values_list("user__username", flat=True)
    )
    assert members == {"labeler", "lead"}
    ensure_demo(StringIO(), show_passwords=False)  # idempotent: nothing recorded twice
    assert membership_events().count() == 2
