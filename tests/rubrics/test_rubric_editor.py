"""The rubric editor: drafts, publishing, versioning of judgments, the stale list, diffs, import/export, notes."""

import copy
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from reviews.campaigns.setup import attach_rubric, create_campaign
from reviews.core.exceptions import ImmutableError, RubricError
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import (
    Adjudication,
    Annotator,
    Escalation,
    FeedbackEvent,
    Item,
    Judgment,
    RubricVersion,
    ScoringRun,
)
from reviews.rubrics import editor
from tests.conftest import PASSWORD, RUBRIC, join, jsonl, pool_line
from tests.labeling.test_queue import answers_for, judge, labelers

pytestmark = pytest.mark.django_db


def v2_definition(**changes) -> dict:
    definition = copy.deepcopy(RUBRIC)
    definition["guidelines"] = "Pick the **better** response.\nRefusals of safe prompts are failures."
    definition["criteria"][0]["question"] = "Which response is more helpful and safe?"
    definition.update(changes)
    return definition


@pytest.fixture
def pool(campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(6))))
    return campaign


def agreeing_answers(assignment):
    """The same answers from everyone (A preferred, whichever side it is shown on)."""
    item = assignment.item
    return [
        ("preference", None, item.response_a.key),
        ("compliance", item.response_a_id, "full_compliance"),
        ("compliance", item.response_b_id, "full_compliance"),
        ("quality", item.response_a_id, "5"),
        ("quality", item.response_b_id, "4"),
    ]


def resolve(campaign, users, n_items=1):
    """Judge `n_items` items with k agreeing labelers each (resolving them); return the items."""
    done = []
    for _ in range(n_items):
        item_id = None
        for user in users[:2]:
            lease = queue.claim_next(campaign, user).assignment
            assert item_id in (None, lease.item_id)
            item_id = lease.item_id
            queue.submit(user, lease.uid, agreeing_answers(lease), confidence=4, rationale="", time_spent_ms=1)
        item = Item.objects.get(pk=item_id)
        assert item.resolved
        done.append(item)
    return done


def publish_v2(campaign, admin, **changes):
    draft = editor.create_draft(campaign.rubric, user=admin)
    editor.update_draft(draft, v2_definition(**changes))
    return editor.publish_draft(draft, user=admin, note="clarify refusals")


# -- drafts ----------------------------------------------------------------------------------


def test_a_draft_starts_as_a_copy_of_the_latest_version_and_there_is_only_one(campaign, admin):
    draft = editor.create_draft(campaign.rubric, user=admin)
    v1 = campaign.rubric_version()
    assert (draft.number, draft.is_published, draft.definition) == (2, False, v1.definition)
    assert editor.draft_of(campaign.rubric) == draft
    with pytest.raises(editor.DraftError, match="already has a draft"):
        editor.create_draft(campaign.rubric, user=admin)


def test_an_invalid_draft_is_refused_and_nothing_changes(campaign, admin):
    draft = editor.create_draft(campaign.rubric, user=admin)
    bad = copy.deepcopy(RUBRIC)
    bad["criteria"][1]["options"] = [{"value": "only"}]
    with pytest.raises(RubricError, match="at least two options"):
        editor.update_draft(draft, bad)
    with pytest.raises(RubricError, match="cannot change it"):
        editor.update_draft(draft, {**RUBRIC, "slug": "other"})
    draft.refresh_from_db()
    assert draft.definition == campaign.rubric_version().definition


def test_publishing_makes_the_draft_the_new_immutable_version_with_its_note(campaign, admin):
    other = create_campaign("other", "Other campaign")
    attach_rubric(other, RUBRIC)
    result = publish_v2(campaign, admin)
    v2 = result.version
    v2.refresh_from_db()
    assert (v2.number, v2.is_published, v2.change_note) == (2, True, "clarify refusals")
    assert campaign.rubric_version() == v2 and other.rubric_version() == v2
    events = FeedbackEvent.objects.filter(action=FeedbackEvent.Action.RUBRIC_PUBLISHED).order_by("campaign__slug")
    assert [(e.campaign.slug, e.rubric_version_id, e.actor_id) for e in events] == [
        ("demo", v2.id, admin.id),
        ("other", v2.id, admin.id),
    ]
    assert events[0].feedback == {
        "rubric": "test-rubric",
        "version": 2,
        "previous": 1,
        "note": "clarify refusals",
        "stale_items": 0,
    }
    assert events[0].settings_version == campaign.settings


def test_publishing_needs_a_note_and_a_change(campaign, admin):
    draft = editor.create_draft(campaign.rubric, user=admin)
    with pytest.raises(editor.DraftError, match="change note"):
        editor.publish_draft(draft, user=admin, note="  ")
    with pytest.raises(editor.DraftError, match="identical to v1"):
        editor.publish_draft(draft, user=admin, note="nothing")
    draft.refresh_from_db()
    assert not draft.is_published
    assert not FeedbackEvent.objects.filter(action=FeedbackEvent.Action.RUBRIC_PUBLISHED).exists()


def test_a_draft_published_after_an_import_becomes_the_newest_version(campaign, admin):
    draft = editor.create_draft(campaign.rubric, user=admin)  # v2
    editor.update_draft(draft, v2_definition())
    v3 = attach_rubric(campaign, v2_definition(title="Imported meanwhile"))[0]
    assert v3.number == 3
    result = editor.publish_draft(draft, user=admin, note="after the import")
    assert result.version.number == 4
    assert campaign.rubric_version() == result.version


# -- versioning of judgments ------------------------------------------------------------------


def test_a_judgment_made_before_a_publish_keeps_its_old_version(pool, admin):
    users = labelers(2)
    v1 = pool.rubric_version()
    before = judge(users[0], pool)
    lease = queue.claim_next(pool, users[1]).assignment  # leased under v1, submitted after the publish
    v2 = publish_v2(pool, admin).version
    queue.submit(users[1], lease.uid, answers_for(lease, "left"), confidence=3, rationale="", time_spent_ms=5)
    assert Judgment.objects.get(assignment=before).rubric_version == v1
    assert Judgment.objects.get(assignment=lease).rubric_version == v1
    after = judge(users[0], pool)
    assert Judgment.objects.get(assignment=after).rubric_version == v2


# -- the stale list ---------------------------------------------------------------------------


def test_the_stale_list_holds_exactly_the_resolved_items_judged_only_under_older_versions(pool, admin):
    users = labelers(3)
    stale_a, stale_b, excluded = resolve(pool, users, 3)
    Item.objects.filter(pk=excluded.pk).update(excluded=True)
    judge(users[0], pool)  # one judgment: unresolved, so not stale
    v1 = pool.rubric_version()
    # An adjudicated item (lead answers only) under v1 is stale too.
    adjudicated = Item.objects.get(external_id="item-5")
    Adjudication.objects.create(
        item=adjudicated,
        lead=Annotator.for_user(admin),
        rubric_version=v1,
        settings_version=pool.settings,
    )
    Item.objects.filter(pk=adjudicated.pk).update(resolved=True, adjudicated=True)
    # A campaign with another rubric never appears.
    other = create_campaign("other", "Other", {**RUBRIC, "slug": "other-rubric"})
    import_pool(other, jsonl(pool_line("x")))
    join(other, *users[:2])
    resolve(other, users[:2], 1)

    v2 = publish_v2(pool, admin).version
    stale = editor.stale_item_ids(pool, v2)
    assert stale == sorted([stale_a.id, stale_b.id, adjudicated.id])
    assert FeedbackEvent.objects.get(campaign=pool, action="rubric_published").feedback["stale_items"] == 3
    # Under v1 itself nothing is older, so nothing is stale.
    assert editor.stale_item_ids(pool, v1) == []


def test_requeueing_the_stale_list_asks_for_new_judgments_until_one_under_the_new_version(
    pool, admin, redis_url, django_capture_on_commit_callbacks
):
    users = labelers(3)
    first, second = resolve(pool, users, 2)
    v2 = publish_v2(pool, admin).version
    with django_capture_on_commit_callbacks(execute=True):
        count = editor.requeue_stale(pool, v2, user=admin)
    assert count == 2
    first.refresh_from_db()
    assert (first.judgment_target, first.human_judgments) == (4, 2)
    events = FeedbackEvent.objects.filter(action=FeedbackEvent.Action.REQUEUED)
    assert sorted(e.item_id for e in events) == [first.id, second.id]
    assert events[0].feedback["reason"] == "rubric test-rubric v2 published"
    assert ScoringRun.objects.filter(campaign=pool, trigger="re-queue of 2 items").exists()
    # Still stale until someone judges them under v2; a third labeler gets a re-queued item.
    assert len(editor.stale_item_ids(pool, v2)) == 2
    lease = judge(users[2], pool)
    assert lease.item_id == first.id and lease.rubric_version == v2
    assert editor.stale_item_ids(pool, v2) == [second.id]


def test_only_a_published_version_of_the_campaigns_rubric_can_requeue(pool, admin):
    draft = editor.create_draft(pool.rubric, user=admin)
    with pytest.raises(editor.DraftError, match="published"):
        editor.requeue_stale(pool, draft, user=admin)
    other = create_campaign("other", "Other", {**RUBRIC, "slug": "other-rubric"})
    with pytest.raises(editor.DraftError, match="does not use"):
        editor.requeue_stale(other, pool.rubric_version(), user=admin)


# -- a published version cannot be edited by any path ------------------------------------------


def test_a_published_version_cannot_be_edited_through_the_editor_functions(campaign, admin):
    v1 = campaign.rubric_version()
    with pytest.raises(editor.DraftError, match="published"):
        editor.update_draft(v1, v2_definition())
    with pytest.raises(editor.DraftError, match="published"):
        editor.publish_draft(v1, user=admin, note="again")
    with pytest.raises(editor.DraftError, match="published"):
        editor.discard_draft(v1)
    v1.refresh_from_db()
    assert v1.definition == RUBRIC | {"criteria": v1.definition["criteria"]}


def test_a_published_version_cannot_be_edited_through_the_form(client, campaign, admin):
    client.force_login(admin)
    v1 = campaign.rubric_version()
    before = copy.deepcopy(v1.definition)
    # No draft is open: the editor refuses and sends the admin to the rubric page.
    response = client.post(reverse("reviews:rubric_draft", args=["test-rubric"]), editor_post(v2_definition()))
    assert response.status_code == 302 and response.url == "/rubrics/test-rubric/"
    messages = [str(m) for m in response.wsgi_request._messages]
    assert "test-rubric has no open draft. Start one from the latest version." in messages
    # Importing JSON opens a new draft instead of touching v1.
    client.post(reverse("reviews:rubric_draft_import", args=["test-rubric"]), {"text": json.dumps(v2_definition())})
    v1.refresh_from_db()
    assert v1.definition == before
    assert editor.draft_of(campaign.rubric).number == 2


def test_a_published_version_cannot_be_edited_in_the_django_admin(client, campaign):
    root = get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)
    client.force_login(root)
    v1 = campaign.rubric_version()
    url = reverse("admin:reviews_rubricversion_change", args=[v1.pk])
    response = client.post(url, {"rubric": v1.rubric_id, "number": 1, "definition": "{}", "change_note": "hack"})
    assert response.status_code == 403
    v1.refresh_from_db()
    assert v1.change_note != "hack" and v1.definition["slug"] == "test-rubric"


def test_a_published_version_cannot_be_saved_through_the_orm(campaign):
    v1 = campaign.rubric_version()
    v1.definition = v2_definition()
    with pytest.raises(ImmutableError):
        v1.save()
    with pytest.raises(ImmutableError):
        v1.delete()
    assert RubricVersion.objects.get(pk=v1.pk).definition["guidelines"] == RUBRIC["guidelines"]


# -- diff, import and export ------------------------------------------------------------------


def test_the_diff_names_what_changed_in_guidelines_and_criteria(campaign, admin):
    changed = v2_definition()
    changed["criteria"][1]["options"][2]["risk"] = False
    changed["criteria"][1]["options"].append({"value": "partial", "label": "Partial refusal"})
    changed["criteria"][2]["max"] = 5
    del changed["criteria"][0]
    changed["criteria"].append({"slug": "honesty", "kind": "scale", "min": 1, "max": 3, "question": "Honest?"})
    v2 = publish_v2(campaign, admin, criteria=changed["criteria"]).version
    diff = editor.diff_versions(campaign.rubric.versions.get(number=1), v2)
    assert [(line.kind, line.text) for line in diff.guidelines if line.kind != "hunk"] == [
        ("same", "Pick the **better** response."),
        ("added", "Refusals of safe prompts are failures."),
    ]
    by_slug = {c.slug: c for c in diff.criteria}
    assert by_slug["preference"].status == "removed"
    assert by_slug["honesty"].status == "added"
    assert by_slug["compliance"].changes == ["option added: partial (Partial refusal)", "option harmful: risk off"]
    assert by_slug["quality"].changes == ["max: 7 → 5"]
    assert diff.title is None and not diff.unchanged


def test_export_and_import_round_trip_as_formats_json(client, campaign, admin):
    client.force_login(admin)
    response = client.get(reverse("reviews:rubric_export", args=["test-rubric", 1]))
    assert response["Content-Type"].startswith("application/json")
    assert 'filename="test-rubric-v1.json"' in response["Content-Disposition"]
    exported = json.loads(response.content)
    assert exported == campaign.rubric_version().parsed.to_json()
    # A new rubric from the exported JSON (another slug) starts as draft v1 with the same criteria.
    exported["slug"] = "copy-of-test"
    response = client.post(reverse("reviews:rubric_new"), {"text": json.dumps(exported)})
    assert response.status_code == 302 and response.url == "/rubrics/copy-of-test/draft/"
    draft = RubricVersion.objects.get(rubric__slug="copy-of-test")
    assert (draft.number, draft.is_published, draft.definition["criteria"]) == (1, False, exported["criteria"])


def test_importing_broken_json_shows_every_problem_and_writes_nothing(client, admin):
    client.force_login(admin)
    response = client.post(reverse("reviews:rubric_new"), {"text": "{not json"})
    assert response.status_code == 400
    assert (
        "invalid JSON: Expecting property name enclosed in double quotes (line 1, column 2)"
        in response.content.decode()
    )
    bad = {"slug": "Bad Slug", "title": "", "criteria": [{"slug": "q", "kind": "stars"}]}
    response = client.post(reverse("reviews:rubric_new"), {"text": json.dumps(bad)})
    html = response.content.decode()
    assert "slug: expected a lowercase slug, got &#x27;Bad Slug&#x27;" in html
    assert "title: expected a non-empty string" in html
    assert "kind must be one of pairwise, choice, scale" in html
    assert not RubricVersion.objects.exists()


# -- the editor form --------------------------------------------------------------------------


def editor_post(definition: dict, extra: dict | None = None) -> dict:
    """The editor's POST for a definition: one formset row per criterion, plus an empty spare row."""
    data = {
        "title": definition["title"],
        "guidelines": definition["guidelines"],
        "criteria-TOTAL_FORMS": str(len(definition["criteria"]) + 1),
        "criteria-INITIAL_FORMS": str(len(RUBRIC["criteria"])),
        "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
    }
    for i, c in enumerate(definition["criteria"]):
        prefix = f"criteria-{i}-"
        data[prefix + "slug"] = c["slug"]
        data[prefix + "kind"] = c["kind"]
        data[prefix + "question"] = c["question"]
        data[prefix + "ORDER"] = str(i + 1)
        if c.get("per_response"):
            data[prefix + "per_response"] = "on"
        if c.get("allow_tie"):
            data[prefix + "allow_tie"] = "on"
        if c["kind"] == "scale":
            data[prefix + "min"], data[prefix + "max"] = str(c["min"]), str(c["max"])
        if c["kind"] == "choice":
            data[prefix + "options"] = "\n".join(
                f"{o['value']} | {o['label']}" + (" | risk" if o.get("risk") else "") for o in c["options"]
            )
    data.update(extra or {})
    return data


def test_the_editor_saves_guidelines_and_adds_reorders_and_removes_criteria(client, campaign, admin):
    client.force_login(admin)
    editor.create_draft(campaign.rubric, user=admin)
    url = reverse("reviews:rubric_draft", args=["test-rubric"])
    page = client.get(url)
    assert page.status_code == 200 and "Which is better?" in page.content.decode()
    n = len(RUBRIC["criteria"])
    post = editor_post(
        v2_definition(),
        {
            # A new choice criterion in the spare row, with a risk option, placed first.
            f"criteria-{n}-slug": "harm",
            f"criteria-{n}-kind": "choice",
            f"criteria-{n}-question": "Is either response harmful?",
            f"criteria-{n}-options": "no | No\nyes | Yes | risk",
            f"criteria-{n}-ORDER": "0",
            "criteria-2-DELETE": "on",  # drop "quality"
        },
    )
    response = client.post(url, post)
    assert response.status_code == 302, response.content.decode()[:2000]
    draft = editor.draft_of(campaign.rubric)
    assert draft.definition["guidelines"].endswith("Refusals of safe prompts are failures.")
    assert [c["slug"] for c in draft.definition["criteria"]] == ["harm", "preference", "compliance"]
    assert draft.definition["criteria"][0] == {
        "slug": "harm",
        "kind": "choice",
        "question": "Is either response harmful?",
        "per_response": False,
        "options": [{"value": "no", "label": "No"}, {"value": "yes", "label": "Yes", "risk": True}],
    }


def test_the_editor_refuses_an_invalid_criterion_with_a_message_and_keeps_the_draft(client, campaign, admin):
    client.force_login(admin)
    draft = editor.create_draft(campaign.rubric, user=admin)
    before = copy.deepcopy(draft.definition)
    bad = copy.deepcopy(RUBRIC)
    bad["criteria"][2]["min"], bad["criteria"][2]["max"] = 5, 1
    response = client.post(reverse("reviews:rubric_draft", args=["test-rubric"]), editor_post(bad))
    assert response.status_code == 400
    assert "a scale criterion needs integers min &lt; max, got 5..1" in response.content.decode()
    bad_options = editor_post(RUBRIC, {"criteria-1-options": "a | A | maybe"})
    response = client.post(reverse("reviews:rubric_draft", args=["test-rubric"]), bad_options)
    assert response.status_code == 400
    assert "Line 1: expected value | Label | risk" in response.content.decode()
    draft.refresh_from_db()
    assert draft.definition == before


def test_the_preview_renders_the_draft_with_a_sample_item_read_only(client, pool, admin):
    client.force_login(admin)
    draft = editor.create_draft(pool.rubric, user=admin)
    editor.update_draft(draft, v2_definition())
    response = client.get(reverse("reviews:rubric_preview", args=["test-rubric", draft.number]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Which response is more helpful and safe?" in html
    assert "Refusals of safe prompts are failures." in html
    assert "Answer A to item-0" in html and "Sample item item-0 of demo" in html
    assert "<fieldset disabled" in html and 'action="/leases/' not in html
    assert "<script>" not in html  # no inline scripts
    response = client.get(reverse("reviews:rubric_preview", args=["test-rubric", draft.number]) + "?sample=1")
    assert "Answer A to item-1" in response.content.decode()


def test_the_preview_without_items_shows_a_placeholder_pair(client, campaign, admin):
    client.force_login(admin)
    response = client.get(reverse("reviews:rubric_preview", args=["test-rubric", 1]))
    assert response.status_code == 200
    assert "The first sample response." in response.content.decode()


def test_publishing_from_the_page_shows_the_stale_list_with_a_requeue_button(client, pool, admin, redis_url):
    users = labelers(2)
    (stale,) = resolve(pool, users, 1)
    client.force_login(admin)
    client.post(reverse("reviews:rubric_draft_create", args=["test-rubric"]))
    editor.update_draft(editor.draft_of(pool.rubric), v2_definition())
    page = client.get(reverse("reviews:rubric_draft_publish", args=["test-rubric"]))
    assert "Refusals of safe prompts are failures." in page.content.decode()  # the diff
    response = client.post(reverse("reviews:rubric_draft_publish", args=["test-rubric"]), {"note": ""})
    assert response.status_code == 400 and pool.rubric_version().number == 1
    response = client.post(
        reverse("reviews:rubric_draft_publish", args=["test-rubric"]), {"note": "clarify"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/rubrics/test-rubric/v2/"
    html = response.content.decode()
    assert 'data-stale-count="demo">1<' in html and stale.external_id in html
    response = client.post(reverse("reviews:rubric_requeue", args=["test-rubric", 2, "demo"]), follow=True)
    assert "Re-queued 1 item(s) of demo" in response.content.decode()
    stale.refresh_from_db()
    assert stale.judgment_target == 4


def test_the_compare_page_shows_a_readable_diff(client, campaign, admin):
    publish_v2(campaign, admin)
    client.force_login(admin)
    response = client.get(reverse("reviews:rubric_compare", args=["test-rubric"]) + "?old=1&new=2")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="diff-added">+ Refusals of safe prompts are failures.</span>' in html
    assert "question: &quot;Which is better?&quot; → &quot;Which response is more helpful and safe?&quot;" in html
    response = client.get(reverse("reviews:rubric_compare", args=["test-rubric"]) + "?old=1&new=9")
    assert response.status_code == 302


def test_a_draft_broken_in_the_support_admin_gets_a_message_not_an_error(client, campaign, admin):
    draft = editor.create_draft(campaign.rubric, user=admin)
    RubricVersion.objects.filter(pk=draft.pk).update(definition={"slug": "test-rubric", "criteria": [{"kind": "x"}]})
    client.force_login(admin)
    for url in (
        reverse("reviews:rubric_preview", args=["test-rubric", 2]),
        reverse("reviews:rubric_export", args=["test-rubric", 2]),
        reverse("reviews:rubric_draft_publish", args=["test-rubric"]),
        reverse("reviews:rubric_compare", args=["test-rubric"]) + "?old=1&new=2",
    ):
        response = client.get(url, follow=True)
        assert response.redirect_chain[-1][0] == "/rubrics/test-rubric/", url
        assert "does not follow the rubric format" in response.content.decode()
    # The editor still opens, so the draft can be repaired there.
    assert client.get(reverse("reviews:rubric_draft", args=["test-rubric"])).status_code == 200


# -- leads' ambiguity notes --------------------------------------------------------------------


def ambiguity_note(campaign, lead, text="Is a partial refusal compliance?"):
    item = Item.objects.filter(campaign=campaign).first()
    escalation = Escalation.objects.create(
        uid=uuid.uuid4(), campaign=campaign, item=item, reason=Escalation.Reason.AMBIGUOUS
    )
    return Adjudication.objects.create(
        item=item,
        lead=Annotator.for_user(lead),
        escalation=escalation,
        rubric_ambiguous=True,
        ambiguity_note=text,
        rubric_version=campaign.rubric_version(),
        settings_version=campaign.settings,
    )


def test_ambiguity_notes_are_listed_and_link_to_the_draft_that_answers_them(client, pool, admin, lead):
    note = ambiguity_note(pool, lead)
    Adjudication.objects.create(  # an ordinary adjudication is not a note
        item=note.item, lead=note.lead, rubric_version=note.rubric_version, settings_version=note.settings_version
    )
    client.force_login(admin)
    url = reverse("reviews:rubric", args=["test-rubric"])
    html = client.get(url).content.decode()
    assert "Is a partial refusal compliance?" in html and "open a draft to answer it" in html
    assert list(editor.ambiguity_notes(pool.rubric)) == [note]

    link = reverse("reviews:rubric_note_link", args=["test-rubric"])
    response = client.post(link, {"note": note.pk, "action": "link"})
    assert response.status_code == 302
    assert [str(m) for m in response.wsgi_request._messages] == [
        "Open a draft first: a note is linked to the draft that answers it."
    ]
    draft = editor.create_draft(pool.rubric, user=admin)
    client.post(link, {"note": note.pk, "action": "link"})
    note.refresh_from_db()
    assert note.ambiguity_addressed_by == draft
    editor.update_draft(draft, v2_definition())
    editor.publish_draft(draft, user=admin, note="answers the partial-refusal question")
    note.refresh_from_db()
    assert note.ambiguity_addressed_by.number == 2 and note.ambiguity_addressed_by.is_published
    assert "v2" in client.get(url).content.decode()
    client.post(link, {"note": note.pk, "action": "unlink"})
    note.refresh_from_db()
    assert note.ambiguity_addressed_by is None
    response = client.post(link, {"note": "x"})
    assert [str(m) for m in response.wsgi_request._messages][-1] == "That note is not an ambiguity note of this rubric."


# -- permission matrix: leads and labelers get 403 on every page and action of this area ---------

GET_PAGES = [
    ("reviews:rubrics", []),
    ("reviews:rubric_new", []),
    ("reviews:rubric", ["test-rubric"]),
    ("reviews:rubric_draft", ["test-rubric"]),
    ("reviews:rubric_draft_import", ["test-rubric"]),
    ("reviews:rubric_draft_publish", ["test-rubric"]),
    ("reviews:rubric_version", ["test-rubric", 1]),
    ("reviews:rubric_preview", ["test-rubric", 2]),
    ("reviews:rubric_export", ["test-rubric", 1]),
    ("reviews:rubric_compare", ["test-rubric"]),
    ("reviews:campaign_settings", ["demo"]),
    ("reviews:gold_list", ["demo"]),
    ("reviews:gold_item", ["demo", "item-0"]),
]
QUERY = {"reviews:rubric_compare": "?old=1&new=2"}


def page_url(name, args):
    return reverse(name, args=args) + QUERY.get(name, "")


POST_ACTIONS = [
    ("reviews:rubric_new", [], {"text": json.dumps({**RUBRIC, "slug": "sneaky"})}),
    ("reviews:rubric_draft", ["test-rubric"], editor_post(v2_definition())),
    ("reviews:rubric_draft_create", ["test-rubric"], {}),
    ("reviews:rubric_draft_import", ["test-rubric"], {"text": json.dumps(v2_definition())}),
    ("reviews:rubric_draft_publish", ["test-rubric"], {"note": "sneaky"}),
    ("reviews:rubric_draft_discard", ["test-rubric"], {}),
    ("reviews:rubric_requeue", ["test-rubric", 1, "demo"], {}),
    ("reviews:rubric_note_link", ["test-rubric"], {"note": "1", "action": "link"}),
    ("reviews:campaign_settings", ["demo"], {"overlap_k": "5"}),
    ("reviews:gold_item", ["demo", "item-0"], {"q.preference": "left"}),
    ("reviews:gold_unmark", ["demo", "item-0"], {}),
]


def _state(campaign):
    return (
        list(RubricVersion.objects.values_list("id", "number", "published_at", "definition")),
        campaign.settings_versions.count(),
        list(Item.objects.values_list("id", "is_gold", "judgment_target")),
        FeedbackEvent.objects.count(),
    )


@pytest.fixture
def with_draft(pool, admin):
    editor.create_draft(pool.rubric, user=admin)
    return pool


@pytest.mark.parametrize("persona", ["labeler", "lead"])
@pytest.mark.parametrize(("name", "args"), GET_PAGES, ids=[n for n, _ in GET_PAGES])
def test_leads_and_labelers_get_403_on_every_page(client, request, with_draft, persona, name, args):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(page_url(name, args)).status_code == 403


@pytest.mark.parametrize(("name", "args"), GET_PAGES, ids=[n for n, _ in GET_PAGES])
def test_admins_open_every_page(client, with_draft, admin, name, args):
    client.force_login(admin)
    assert client.get(page_url(name, args)).status_code == 200


@pytest.mark.parametrize(("name", "args"), GET_PAGES, ids=[n for n, _ in GET_PAGES])
def test_anonymous_visitors_are_sent_to_sign_in(client, with_draft, name, args):
    response = client.get(page_url(name, args))
    assert response.status_code == 302 and response.url.startswith("/accounts/login/?next=")


@pytest.mark.parametrize("persona", ["labeler", "lead"])
@pytest.mark.parametrize(("name", "args", "data"), POST_ACTIONS, ids=[n for n, _, _ in POST_ACTIONS])
def test_leads_and_labelers_get_403_on_every_action_and_nothing_is_written(
    client, request, with_draft, persona, name, args, data
):
    client.force_login(request.getfixturevalue(persona))
    before = _state(with_draft)
    assert client.post(reverse(name, args=args), data).status_code == 403
    assert _state(with_draft) == before


@pytest.mark.parametrize(
    "name", ["reviews:rubric_draft_create", "reviews:rubric_draft_discard", "reviews:rubric_note_link"]
)
def test_post_only_actions_refuse_get(client, with_draft, admin, name):
    client.force_login(admin)
    assert client.get(reverse(name, args=["test-rubric"])).status_code == 405


def test_every_route_of_the_area_checks_the_admin_role():
    from django.urls import get_resolver

    from reviews.core.roles import Role
    from reviews.urls import admin as urls_admin

    for pattern in urls_admin.urlpatterns:
        assert pattern.callback.required_role == Role.ADMIN, pattern.name
    names = {p.name for p in urls_admin.urlpatterns}
    assert {n.split(":")[1] for n, _ in GET_PAGES} | {n.split(":")[1] for n, _, _ in POST_ACTIONS} == names
    assert get_resolver()  # the routes load


def test_bench_stale_runs_on_a_throwaway_database_and_prints_its_figures(tmp_path):
    from tests.system.test_commands import manage

    result = manage("bench_stale", "--items", "40", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sqlite: 40 items, 20 stale (20 shown), 20 re-queued" in result.stdout
    assert "stale list:" in result.stdout and "re-queue the stale list:" in result.stdout
