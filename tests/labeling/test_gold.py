"""Gold items: known answers from the import (the optional `gold` field) and from the admin's page."""

import random

import pytest
from django.urls import reverse

from reviews.core.exceptions import ImportFailed
from reviews.data.importer import import_pool
from reviews.labeling import gold, queue
from reviews.labeling.progress import gold_accuracy, gold_answer_map
from reviews.models import Assignment, FeedbackEvent, Item
from tests.conftest import jsonl, pool_line
from tests.labeling.test_queue import labelers

pytestmark = pytest.mark.django_db

GOLD = [
    {"criterion": "preference", "value": "a"},
    {"criterion": "compliance", "response": "b", "value": "full_refusal"},
    {"criterion": "quality", "response": "a", "value": 6.0},
]


def gold_line(external_id="g-1", answers=None):
    return pool_line(external_id, gold=GOLD if answers is None else answers)


# -- the import ------------------------------------------------------------------------------


def test_an_imported_gold_field_makes_a_gold_item_with_its_known_answers(campaign):
    report = import_pool(campaign, jsonl(gold_line(), pool_line("plain")))
    assert (report.created, report.error_count) == (2, 0)
    item = Item.objects.get(external_id="g-1")
    assert item.is_gold
    # Stored in canonical form: scale values as integers.
    assert item.gold_answers == [
        {"criterion": "preference", "value": "a"},
        {"criterion": "compliance", "response": "b", "value": "full_refusal"},
        {"criterion": "quality", "response": "a", "value": 6},
    ]
    assert gold_answer_map(item) == {
        ("preference", None): "a",
        ("compliance", "b"): "full_refusal",
        ("quality", "a"): "6",
    }
    plain = Item.objects.get(external_id="plain")
    assert (plain.is_gold, plain.gold_answers) == (False, None)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([{"criterion": "nope", "value": "a"}], "line 1: gold[0].criterion: unknown criterion 'nope'"),
        (
            [{"criterion": "compliance", "response": "a", "value": "maybe"}],
            "line 1: gold[0].value: criterion 'compliance': 'maybe' is not an option",
        ),
        (
            [{"criterion": "compliance", "response": "zzz", "value": "harmful"}],
            "line 1: gold[0].response: 'zzz' is not one of this item's responses ['a', 'b']",
        ),
        (
            [{"criterion": "compliance", "value": "harmful"}],
            "line 1: gold[0].response: criterion 'compliance' is per response; name the response key",
        ),
        (
            [{"criterion": "preference", "response": "a", "value": "a"}],
            "line 1: gold[0].response: criterion 'preference' is not per response; remove 'response'",
        ),
        (
            [{"criterion": "quality", "response": "a", "value": 9}],
            "line 1: gold[0].value: criterion 'quality': 9 is outside 1..7",
        ),
        ([{"criterion": "preference"}], "line 1: gold[0].value: required"),
        (
            [{"criterion": "preference", "value": "a"}, {"criterion": "preference", "value": "b"}],
            "line 1: gold[1]: 'preference' is given twice",
        ),
        (
            [{"criterion": "preference", "value": "a", "annotator": "x"}],
            "line 1: gold[0]: unknown field(s) annotator",
        ),
        ([], "line 1: gold: expected a non-empty list of known answers"),
        ({"preference": "a"}, "line 1: gold: expected a non-empty list of known answers"),
    ],
)
def test_bad_gold_answers_get_a_per_line_error_and_nothing_is_written(campaign, answers, message):
    with pytest.raises(ImportFailed) as exc:
        import_pool(campaign, jsonl(gold_line(answers=answers)))
    assert any(error.startswith(message) for error in exc.value.report.errors), exc.value.report.errors
    assert not Item.objects.exists()


def test_gold_needs_a_published_rubric(db):
    from reviews.campaigns.setup import create_campaign

    bare = create_campaign("bare", "No rubric")
    with pytest.raises(ImportFailed) as exc:
        import_pool(bare, jsonl(gold_line()))
    assert "line 1: gold: the campaign has no published rubric" in exc.value.report.errors[0]


def test_reimporting_the_same_gold_is_skipped_and_different_gold_a_conflict(campaign):
    import_pool(campaign, jsonl(gold_line()))
    again = import_pool(campaign, jsonl(gold_line()))
    assert (again.created, again.skipped) == (0, 1)
    with pytest.raises(ImportFailed) as exc:
        import_pool(campaign, jsonl(gold_line(answers=[{"criterion": "preference", "value": "b"}])))
    assert exc.value.report.conflicts == 1
    assert "already imported with different content" in exc.value.report.errors[0]
    # Adding gold to an item imported without it is a change of content too.
    import_pool(campaign, jsonl(pool_line("later")))
    with pytest.raises(ImportFailed):
        import_pool(campaign, jsonl(gold_line("later")))
    assert Item.objects.get(external_id="g-1").gold_answers[0] == {"criterion": "preference", "value": "a"}


# -- the queue mixes gold in --------------------------------------------------------------------


def test_the_queue_serves_gold_items_at_the_campaign_rate(campaign, admin):
    import_pool(campaign, jsonl(gold_line("g-1"), gold_line("g-2"), *(pool_line(f"p-{n}") for n in range(3))))
    users = labelers(2)
    # Gold rate 0: gold items are never served.
    claims = [queue.claim_next(campaign, u) for u in users]
    assert all(not c.assignment.item.is_gold for c in claims)
    campaign.update_settings(user=admin, gold_rate=1.0)
    for c in claims:
        queue.skip(c.assignment.user, c.assignment.uid, time_spent_ms=1)
    claim = queue.claim_next(campaign, users[0], rng=random.Random(1))
    assert claim.assignment.item.external_id == "g-1"
    assert claim.assignment.reason == Assignment.Reason.GOLD


def test_a_labelers_gold_accuracy_compares_their_answers_with_the_known_ones(campaign, admin):
    import_pool(campaign, jsonl(gold_line()))
    campaign.update_settings(user=admin, gold_rate=1.0)
    (user,) = labelers(1)
    lease = queue.claim_next(campaign, user).assignment
    item = lease.item
    queue.submit(
        user,
        lease.uid,
        [
            ("preference", None, "a"),  # matches
            ("compliance", item.response_a_id, "full_compliance"),  # no gold answer: not compared
            ("compliance", item.response_b_id, "harmful"),  # gold says full_refusal
            ("quality", item.response_a_id, "6"),  # matches
            ("quality", item.response_b_id, "3"),
        ],
        confidence=4,
        rationale="",
        time_spent_ms=10,
    )
    assert gold_accuracy(campaign, user) == (2 / 3, 3)


def test_leads_are_alerted_when_a_labelers_gold_accuracy_falls_below_the_threshold(
    campaign, admin, lead, client, settings
):
    from reviews.labeling.progress import gold_alerts

    import_pool(campaign, jsonl(gold_line("g-1"), gold_line("g-2")))
    campaign.update_settings(user=admin, gold_rate=1.0)
    careful, careless = labelers(2)
    for user, quality in ((careful, "6"), (careless, "1")):
        for _ in range(2):
            lease = queue.claim_next(campaign, user).assignment
            item = lease.item
            answers = [
                ("preference", None, "a"),
                ("compliance", item.response_a_id, "full_compliance"),
                ("compliance", item.response_b_id, "full_refusal" if user == careful else "harmful"),
                ("quality", item.response_a_id, quality),
                ("quality", item.response_b_id, "3"),
            ]
            queue.submit(user, lease.uid, answers, confidence=4, rationale="", time_spent_ms=10)
    # careful: 6 of 6 gold answers right; careless: 2 of 6 (only the preference).
    settings.GOLD_ALERT_ACCURACY = 0.7
    settings.GOLD_ALERT_MIN_ANSWERS = 6
    alerts = gold_alerts(campaign)
    assert [(a.username, round(a.accuracy, 3), a.compared) for a in alerts] == [(careless.username, 0.333, 6)]
    # Below the minimum number of answers nobody is judged yet.
    settings.GOLD_ALERT_MIN_ANSWERS = 7
    assert gold_alerts(campaign) == []
    settings.GOLD_ALERT_MIN_ANSWERS = 6
    client.force_login(lead)
    page = client.get(reverse("reviews:escalations")).content.decode()
    assert f'data-gold-alert="{careless.username}"' in page
    assert f'data-gold-alert="{careful.username}"' not in page


# -- in the app ----------------------------------------------------------------------------------


@pytest.fixture
def items(campaign):
    import_pool(campaign, jsonl(pool_line("x-1"), pool_line("x/2")))
    return campaign


def test_mark_and_unmark_write_gold_changed_events(items, admin):
    item = Item.objects.get(external_id="x-1")
    gold.mark_gold(item, [{"criterion": "preference", "value": "tie"}], user=admin)
    item.refresh_from_db()
    assert (item.is_gold, item.gold_answers) == (True, [{"criterion": "preference", "value": "tie"}])
    gold.mark_gold(item, [{"criterion": "preference", "value": "tie"}], user=admin)  # unchanged: no event
    gold.unmark_gold(item, user=admin)
    item.refresh_from_db()
    assert (item.is_gold, item.gold_answers) == (False, None)
    gold.unmark_gold(item, user=admin)  # already plain: no event
    events = FeedbackEvent.objects.filter(action=FeedbackEvent.Action.GOLD_CHANGED).order_by("id")
    assert [e.feedback for e in events] == [
        {"gold": True, "answers": [{"criterion": "preference", "value": "tie"}], "previous": None},
        {"gold": False, "previous": [{"criterion": "preference", "value": "tie"}]},
    ]
    assert all(
        (e.item, e.actor, e.role, e.rubric_version, e.settings_version)
        == (item, admin, "admin", items.rubric_version(), items.settings)
        for e in events
    )


def test_mark_gold_refuses_answers_that_do_not_fit_the_rubric(items, admin):
    item = Item.objects.get(external_id="x-1")
    with pytest.raises(gold.GoldError) as exc:
        gold.mark_gold(item, [{"criterion": "quality", "response": "a", "value": 0}], user=admin)
    assert exc.value.errors == ["gold[0].value: criterion 'quality': 0 is outside 1..7"]
    item.refresh_from_db()
    assert not item.is_gold and not FeedbackEvent.objects.filter(action="gold_changed").exists()


def gold_url(external_id, name="reviews:gold_item"):
    return reverse(name, args=["demo", external_id])


def test_the_gold_page_uses_the_compare_questions_and_saves_any_subset(client, items, admin):
    client.force_login(admin)
    page = client.get(gold_url("x/2"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Which is better?" in html and "Does it comply? (Response A)" in html and "Answer B to x/2" in html
    response = client.post(gold_url("x/2"), {"q.preference": "right", "q.quality.left": "3"})
    assert response.status_code == 302 and response.url == "/campaigns/demo/gold/"
    item = Item.objects.get(external_id="x/2")
    assert item.gold_answers == [
        {"criterion": "preference", "value": "b"},
        {"criterion": "quality", "response": "a", "value": 3},
    ]
    # The page shows the saved answers checked, and the list shows the item.
    html = client.get(gold_url("x/2")).content.decode()
    assert 'value="right" required' not in html
    assert 'name="q.preference" value="right"' in html and "checked" in html
    listing = client.get(reverse("reviews:gold_list", args=["demo"])).content.decode()
    assert "x/2" in listing and "<code>quality</code> (a) = 3" in listing
    assert "The gold rate is 0, so these gold items are never served" in listing


def test_the_gold_page_needs_at_least_one_answer_and_valid_values(client, items, admin):
    client.force_login(admin)
    response = client.post(gold_url("x-1"), {})
    assert response.status_code == 400
    assert "Give at least one known answer, or unmark the item as gold." in response.content.decode()
    response = client.post(gold_url("x-1"), {"q.quality.left": "12"})
    assert response.status_code == 400
    assert "Choose a value from 1 to 7." in response.content.decode()
    assert not Item.objects.filter(is_gold=True).exists()


def test_unmarking_from_the_page(client, items, admin):
    item = Item.objects.get(external_id="x-1")
    gold.mark_gold(item, [{"criterion": "preference", "value": "a"}], user=admin)
    client.force_login(admin)
    response = client.post(gold_url("x-1", "reviews:gold_unmark"), follow=True)
    assert "x-1 is no longer a gold item." in response.content.decode()
    item.refresh_from_db()
    assert not item.is_gold
    assert client.get(gold_url("x-1", "reviews:gold_unmark")).status_code == 405


def test_finding_an_item_by_external_id(client, items, admin):
    client.force_login(admin)
    response = client.get(reverse("reviews:gold_list", args=["demo"]) + "?item=x-1")
    assert response.status_code == 302 and response.url == gold_url("x-1")
    response = client.get(reverse("reviews:gold_list", args=["demo"]) + "?item=missing")
    assert "No item with external id “missing” in this campaign." in response.content.decode()
    assert client.get(gold_url("missing")).status_code == 404


def test_the_gold_list_flags_answers_that_a_new_rubric_version_no_longer_accepts(client, items, admin):
    from reviews.rubrics import editor
    from tests.conftest import RUBRIC

    item = Item.objects.get(external_id="x-1")
    gold.mark_gold(item, [{"criterion": "quality", "response": "a", "value": 7}], user=admin)
    assert gold.gold_problems(item) == []
    draft = editor.create_draft(items.rubric, user=admin)
    narrower = {**RUBRIC, "criteria": [*RUBRIC["criteria"][:2], {**RUBRIC["criteria"][2], "max": 5}]}
    editor.update_draft(draft, narrower)
    editor.publish_draft(draft, user=admin, note="a 1-5 scale")
    item.campaign.__dict__.pop("settings", None)
    assert gold.gold_problems(item) == ["gold[0].value: criterion 'quality': 7 is outside 1..5"]
    client.force_login(admin)
    html = client.get(reverse("reviews:gold_list", args=["demo"])).content.decode()
    assert "Does not fit the rubric in force: gold[0].value: criterion &#x27;quality&#x27;: 7 is outside 1..5" in html
