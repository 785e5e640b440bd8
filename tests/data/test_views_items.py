"""The data pages: item browser, item detail, members, people, campaign creation.

A permission matrix over every route of the data area, and the pages' flows end to end
through the test client (real database, real templates)."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviews.data.importer import import_pool
from reviews.models import Campaign, CampaignSettings, Escalation, FeedbackEvent, Item, Membership, Rubric
from tests.conftest import jsonl, pool_line
from tests.data.test_item_browser import scored, split_labels
from tests.system.test_views_common import sign_in, unanimous_labels

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(campaign):
    import_pool(
        campaign,
        jsonl(
            pool_line("fresh"),
            pool_line("agreed", labels=unanimous_labels("ext:h1", "ext:h2")),
            pool_line("split", labels=split_labels(), tags=["unsafe"]),
            pool_line("<b>bold</b>", prompt="<script>alert(1)</script> tell me"),
        ),
    )
    return campaign


def item_id(external_id):
    return Item.objects.get(external_id=external_id).id


def html(response):
    return response.content.decode()


def notes(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def routes(campaign):
    """(method, url, minimum role) for every page of the data area."""
    some = Item.objects.filter(campaign=campaign).first()
    slug = campaign.slug
    return [
        ("get", reverse("reviews:items", args=[slug]), "lead"),
        ("post", reverse("reviews:items_bulk", args=[slug]), "lead"),
        ("get", reverse("reviews:item", args=[slug, some.id]), "lead"),
        ("get", reverse("reviews:members", args=[slug]), "admin"),
        ("post", reverse("reviews:member_add", args=[slug]), "admin"),
        ("post", reverse("reviews:member_remove", args=[slug]), "admin"),
        ("get", reverse("reviews:people"), "admin"),
        ("post", reverse("reviews:person_create"), "admin"),
        ("post", reverse("reviews:person_role", args=["lena"]), "admin"),
        ("post", reverse("reviews:person_active", args=["lena"]), "admin"),
        ("get", reverse("reviews:campaign_create"), "admin"),
    ]


RANK = {"anonymous": 0, "outsider": 0, "labeler": 1, "lead": 2, "admin": 3}


@pytest.mark.parametrize("persona", ["anonymous", "outsider", "labeler", "lead", "admin"])
def test_permission_matrix(client, request, pool, persona):
    sign_in(client, request, persona)
    for method, url, minimum in routes(pool):
        response = getattr(client, method)(url)
        if persona == "anonymous":
            assert response.status_code == 302 and "/login" in response.url, url
        elif persona == "outsider":
            assert response.status_code == 403, url
        elif RANK[persona] < RANK[minimum]:
            assert response.status_code == 403, (url, persona)
        else:
            assert response.status_code in (200, 302, 400), (url, persona, response.status_code)


def test_every_data_view_declares_its_role():
    from django.urls import get_resolver

    from reviews.urls import data as urls_data

    for pattern in urls_data.urlpatterns:
        assert hasattr(pattern.callback, "required_role"), pattern.name
    assert get_resolver()  # the patterns are routed


@pytest.mark.parametrize(
    "name", ["reviews:items", "reviews:members", "reviews:items_bulk", "reviews:member_add", "reviews:member_remove"]
)
def test_post_only_and_get_only_routes(client, admin, pool, name):
    client.force_login(admin)
    url = reverse(name, args=[pool.slug])
    if name in ("reviews:items",):
        assert client.post(url).status_code == 405
    elif name != "reviews:members":
        assert client.get(url).status_code == 405


# -- labelers outside a campaign --------------------------------------------------------------


def test_a_labeler_outside_a_campaign_gets_nothing_of_it(client, labeler, pool):
    from reviews.labeling import queue

    Membership.objects.filter(user=labeler).update(active=False)
    client.force_login(labeler)
    assert client.get(reverse("reviews:campaign", args=[pool.slug])).status_code == 404
    assert client.get(reverse("reviews:work", args=[pool.slug])).status_code == 404
    assert client.get(reverse("reviews:item", args=[pool.slug, item_id("fresh")])).status_code == 403
    assert pool.slug not in html(client.get(reverse("reviews:campaigns")))
    start = client.get(reverse("reviews:work_start"))
    assert "not a member of any campaign" in html(start)
    assert queue.claim_next(pool, labeler).state == "not_member"
    # Same answer as for a campaign that does not exist: existence does not leak.
    assert client.get(reverse("reviews:campaign", args=["no-such"])).status_code == 404


def test_a_member_labeler_sees_the_campaign(client, labeler, pool):
    client.force_login(labeler)
    assert client.get(reverse("reviews:campaign", args=[pool.slug])).status_code == 200
    assert pool.title in html(client.get(reverse("reviews:campaigns")))


# -- the item browser ---------------------------------------------------------------------------


def test_the_browser_lists_filters_and_keeps_the_filter_in_links(client, lead, pool):
    client.force_login(lead)
    url = reverse("reviews:items", args=[pool.slug])
    page = html(client.get(url))
    for external_id in ("fresh", "agreed", "split"):
        assert f'data-item="{external_id}"' in page
    filtered = client.get(url, {"disagreement": "1", "tag": "unsafe"})
    body = html(filtered)
    assert 'data-item="split"' in body and 'data-item="fresh"' not in body
    # Links to an item carry the filter back; the bulk form carries it for "whole filter".
    assert "back=disagreement%3D1%26tag%3Dunsafe" in body or "back=tag%3Dunsafe%26disagreement%3D1" in body
    assert 'name="filter" value="tag=unsafe&amp;disagreement=1"' in body


def test_bad_filter_values_get_a_message_and_the_page_still_works(client, lead, pool):
    client.force_login(lead)
    response = client.get(reverse("reviews:items", args=[pool.slug]), {"utility_min": "lots", "status": "zzz"})
    assert response.status_code == 200
    assert any("Utility min" in n for n in notes(response))
    assert any("Unknown status" in n for n in notes(response))


def test_untrusted_text_is_escaped(client, lead, pool):
    client.force_login(lead)
    body = html(client.get(reverse("reviews:items", args=[pool.slug])))
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert "<b>bold</b>" not in body
    detail = html(client.get(reverse("reviews:item", args=[pool.slug, item_id("<b>bold</b>")])))
    assert "<script>alert(1)</script>" not in detail


def test_pages_follow_the_next_link(client, lead, campaign):
    import_pool(campaign, jsonl(*(pool_line(f"i{n:03}") for n in range(120))))
    client.force_login(lead)
    url = reverse("reviews:items", args=[campaign.slug])
    seen = []
    response = client.get(url, {"sort": "id"})
    while True:
        seen += [r.external_id for r in response.context["page"].rows]
        if not response.context["next_url"]:
            break
        response = client.get(url + response.context["next_url"])
    assert seen == [f"i{n:03}" for n in range(120)]


def test_bulk_on_a_selection_with_a_reason(client, lead, pool):
    client.force_login(lead)
    ids = [item_id("fresh"), item_id("split")]
    response = client.post(
        reverse("reviews:items_bulk", args=[pool.slug]),
        {"action": "exclude", "scope": "selection", "item": ids, "reason": "duplicates"},
    )
    assert response.status_code == 302
    assert Item.objects.filter(excluded=True).count() == 2
    assert "Exclude from the pool: 2 items changed." in notes(response)
    event = FeedbackEvent.objects.filter(action=FeedbackEvent.Action.EXCLUSION_CHANGED).first()
    assert event.actor == lead and event.feedback["reason"] == "duplicates"


def test_bulk_on_the_whole_filter_asks_to_confirm_with_the_count(client, lead, pool):
    client.force_login(lead)
    data = {"action": "escalate", "scope": "filter", "filter": "disagreement=1", "reason": "look at the split"}
    url = reverse("reviews:items_bulk", args=[pool.slug])
    asked = client.post(url, data)
    assert asked.status_code == 200 and "Escalate: 1 item?" in html(asked)
    assert 'name="confirmed" value="1"' in html(asked)
    assert not Escalation.objects.exists()
    response = client.post(url, {**data, "confirmed": "1"})
    assert response.status_code == 302
    assert list(Escalation.objects.values_list("item__external_id", flat=True)) == ["split"]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"action": "exclude", "scope": "selection", "reason": "x"}, "Select at least one item"),
        ({"action": "exclude", "scope": "selection", "item": ["1; drop"], "reason": "x"}, "malformed"),
        ({"action": "exclude", "scope": "selection", "item": ["1"], "reason": ""}, "reason is required"),
        ({"action": "explode", "scope": "selection", "item": ["1"], "reason": "x"}, "Unknown action"),
        ({"action": "exclude", "scope": "filter", "filter": "risk_min=9", "reason": "x"}, "filter has errors"),
        ({"action": "gold", "scope": "filter", "filter": "", "reason": "x", "confirmed": "1"}, "no final answers"),
        ({"action": "explode", "scope": "filter", "filter": "", "reason": "x"}, "Unknown action"),
    ],
)
def test_bad_bulk_requests_change_nothing_and_say_why(client, lead, pool, data, message):
    client.force_login(lead)
    before = FeedbackEvent.objects.count()
    response = client.post(reverse("reviews:items_bulk", args=[pool.slug]), data)
    assert response.status_code == 302
    assert any(message in n for n in notes(response)), notes(response)
    assert FeedbackEvent.objects.count() == before
    assert not Item.objects.filter(excluded=True).exists() and not Item.objects.filter(is_gold=True).exists()


def test_bulk_redirects_only_to_this_site(client, lead, pool):
    client.force_login(lead)
    data = {"action": "exclude", "scope": "selection", "item": [item_id("fresh")], "reason": "x"}
    evil = client.post(reverse("reviews:items_bulk", args=[pool.slug]), {**data, "next": "https://evil.example/"})
    assert evil.url == reverse("reviews:items", args=[pool.slug])


def test_items_of_another_campaign_cannot_be_acted_on_through_this_one(client, lead, pool):
    from reviews.campaigns.setup import create_campaign

    other = create_campaign("other", "Other")
    client.force_login(lead)
    response = client.post(
        reverse("reviews:items_bulk", args=[other.slug]),
        {"action": "exclude", "scope": "selection", "item": [item_id("fresh")], "reason": "x"},
    )
    assert response.status_code == 302
    assert not Item.objects.filter(excluded=True).exists()
    assert client.get(reverse("reviews:item", args=[other.slug, item_id("fresh")])).status_code == 404


# -- item detail ---------------------------------------------------------------------------------


def test_the_item_page_tells_the_whole_story(client, lead, admin, pool):
    from reviews.data import pool_actions

    scored(pool, {"split": (0.61, 0.42)})
    split = Item.objects.get(external_id="split")
    pool_actions.run_bulk(pool, "escalate", [split.id], user=admin, reason="needs a lead")
    client.force_login(lead)
    response = client.get(reverse("reviews:item", args=[pool.slug, split.id]))
    body = html(response)
    assert response.status_code == 200
    assert "Answer A to split" in body and "Answer B to split" in body  # both responses, as labelers see them
    assert "0.610" in body and "0.420" in body  # u and r of the run in force
    assert "ext:x" in body and "ext:y" in body  # every human judgment
    assert "needs a lead" in body  # the escalation and its timeline event
    story = response.context["story"]
    assert [e.action for e in story.events] == ["imported", "escalated"]
    assert len(story.judgments) == 2


def test_an_item_is_requeued_from_its_page(client, lead, pool):
    client.force_login(lead)
    agreed = Item.objects.get(external_id="agreed")
    url = reverse("reviews:item", args=[pool.slug, agreed.id])
    response = client.post(
        reverse("reviews:items_bulk", args=[pool.slug]),
        {"action": "requeue", "scope": "selection", "item": [agreed.id], "reason": "recheck", "next": url},
    )
    assert response.url == url
    agreed.refresh_from_db()
    assert agreed.judgment_target == agreed.human_judgments + 2
    assert "Re-queued" in html(client.get(url))


def test_a_missing_item_is_404(client, lead, pool):
    client.force_login(lead)
    assert client.get(reverse("reviews:item", args=[pool.slug, 999_999])).status_code == 404


# -- members and campaign creation ------------------------------------------------------------


def test_admins_add_and_remove_members_with_a_record(client, admin, pool):
    from reviews.core.roles import Role
    from reviews.people.accounts import create_user
    from tests.conftest import PASSWORD

    newbie = create_user("nia", Role.LABELER, password=PASSWORD)
    client.force_login(admin)
    url = reverse("reviews:members", args=[pool.slug])
    assert 'value="nia"' in html(client.get(url))
    client.post(reverse("reviews:member_add", args=[pool.slug]), {"username": "nia", "note": "new hire"})
    assert Membership.objects.get(user=newbie).active
    client.post(reverse("reviews:member_remove", args=[pool.slug]), {"username": "nia"})
    assert not Membership.objects.get(user=newbie).active
    changes = FeedbackEvent.objects.filter(action=FeedbackEvent.Action.MEMBERSHIP_CHANGED).order_by("id")
    assert [(e.feedback["change"], e.feedback["user"], e.actor) for e in changes] == [
        ("added", "nia", admin),
        ("removed", "nia", admin),
    ]
    response = client.post(reverse("reviews:member_add", args=[pool.slug]), {"username": "ghost"})
    assert any("no user 'ghost'" in n for n in notes(response))


def test_an_admin_creates_a_campaign_with_rubric_and_settings(client, admin, pool):
    client.force_login(admin)
    assert client.get(reverse("reviews:campaign_create")).status_code == 200
    data = {
        "title": "Refusals",
        "slug": "refusals",
        "rubric": Rubric.objects.get().id,
        **CampaignSettings(campaign=pool, number=1).values(),
    }
    data.update(budget_total=500, overlap_k=3)
    data = {k: ("" if v is None else v) for k, v in data.items()}
    response = client.post(reverse("reviews:campaign_create"), data)
    assert response.status_code == 302 and response.url == reverse("reviews:members", args=["refusals"])
    created = Campaign.objects.get(slug="refusals")
    assert created.rubric == pool.rubric and created.settings.budget_total == 500 and created.settings.overlap_k == 3
    assert FeedbackEvent.objects.filter(campaign=created, action=FeedbackEvent.Action.SETTINGS_CHANGED).exists()
    listing = html(client.get(reverse("reviews:campaigns")))
    assert "Refusals" in listing and "0 / 500" in listing


@pytest.mark.parametrize(
    "change, message",
    [
        ({"slug": "demo"}, "already exists"),
        ({"slug": "Not a slug!"}, "slug"),
        ({"audit_share": "1.5"}, ""),
        ({"lambda_risk": "0", "lambda_uncertainty": "0", "lambda_diversity": "0"}, "λ"),
        ({"title": ""}, "required"),
    ],
)
def test_bad_campaign_input_is_refused_and_writes_nothing(client, admin, pool, change, message):
    client.force_login(admin)
    data = {"title": "X", "slug": "x", "rubric": "", **CampaignSettings(campaign=pool, number=1).values()}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data.update(change)
    response = client.post(reverse("reviews:campaign_create"), data)
    assert response.status_code == 400
    assert message in html(response)
    assert Campaign.objects.count() == 1


def test_the_campaign_list_shows_budget_burn_and_open_escalations(client, lead, pool):
    pool.update_settings(budget_total=4)
    client.force_login(lead)
    body = html(client.get(reverse("reviews:campaigns")))
    assert "0 / 4" in body
