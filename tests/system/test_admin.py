"""The support admin: every model is browsable, history is read-only, and immutability holds below the ORM."""

import uuid

import pytest
from django.apps import apps
from django.contrib import admin as django_admin
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from reviews.core.exceptions import ImmutableError
from reviews.data.importer import import_pool
from reviews.models import (
    Adjudication,
    Answer,
    ApiToken,
    Assignment,
    CampaignSettings,
    DatasetVersion,
    Escalation,
    FeedbackEvent,
    Item,
    Judgment,
    Membership,
    MetricSnapshot,
    Prompt,
    Response,
    RubricVersion,
    ScoringRun,
)
from tests.conftest import PASSWORD, jsonl, pool_line

pytestmark = pytest.mark.django_db

REVIEWS_MODELS = sorted(
    (model for model in django_admin.site._registry if model._meta.app_label == "reviews"),
    key=lambda m: m._meta.model_name,
)
# What the admin role's group may view (reviews.core.roles.GROUP_PERMISSIONS).
# Admins support everyone: the admin role may open every table (a few only to read).
ADMIN_ROLE_CHANGELISTS = [m._meta.model_name for m in apps.get_app_config("reviews").get_models()]


def admin_url(model_name: str, action: str = "changelist", *args) -> str:
    return reverse(f"admin:reviews_{model_name}_{action}", args=args)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.org", PASSWORD)


@pytest.fixture
def populated(campaign, admin):
    """A row in every reviews table the import, a run, an escalation and an export fill."""
    labels = [
        {"annotator": name, "kind": "human", "criterion": "preference", "value": "a"} for name in ("ext:h1", "ext:h2")
    ]
    labels.append({"annotator": "ext:lead", "kind": "lead", "criterion": "preference", "value": "a"})
    import_pool(campaign, jsonl(pool_line("one", labels=labels), pool_line("two")))
    item = Item.objects.get(external_id="one")
    run = ScoringRun.objects.create(campaign=campaign, status=ScoringRun.Status.SUCCEEDED)
    item.scores.create(run=run, risk=0.1, uncertainty=0.5, diversity=1, utility=1.6)
    Membership.objects.create(campaign=campaign, user=admin, added_by=admin)
    ApiToken.objects.create(name="monitor", prefix="abcd1234", key_hash="f" * 64, created_by=admin)
    Escalation.objects.create(uid=uuid.uuid4(), campaign=campaign, item=item, reason=Escalation.Reason.OTHER)
    Assignment.objects.create(
        uid=uuid.uuid4(),
        item=item,
        user=admin,
        left_response=item.response_a,
        rubric_version=campaign.rubric_version(),
        settings_version=campaign.settings,
        expires_at=timezone.now(),
    )
    MetricSnapshot.objects.create(campaign=campaign, name="throughput", value=3.0)
    DatasetVersion.objects.create(
        uid=uuid.uuid4(), campaign=campaign, format=DatasetVersion.Format.PREFERENCE, content_hash="0" * 64
    )
    return campaign


@pytest.fixture
def event(campaign, admin):
    return FeedbackEvent.objects.create(campaign=campaign, actor=admin, role="admin", action="judged")


# -- the admin pages -----------------------------------------------------------------------


def test_every_reviews_model_is_registered():
    from django.apps import apps

    assert set(REVIEWS_MODELS) == set(apps.get_app_config("reviews").get_models())


@pytest.mark.parametrize("model", REVIEWS_MODELS, ids=lambda m: m._meta.model_name)
def test_a_superuser_can_open_every_changelist_and_a_row(client, superuser, populated, model):
    client.force_login(superuser)
    name = model._meta.model_name
    assert client.get(admin_url(name)).status_code == 200
    row = model.objects.order_by("pk").first()
    assert row is not None, f"the fixture left {name} empty"
    assert client.get(admin_url(name, "change", row.pk)).status_code == 200


@pytest.mark.parametrize("name", ADMIN_ROLE_CHANGELISTS)
def test_the_admin_role_can_open_its_changelists(client, admin, populated, name):
    client.force_login(admin)
    assert client.get(admin_url(name)).status_code == 200


@pytest.mark.parametrize("persona", ["labeler", "lead", "outsider"])
def test_other_roles_cannot_enter_the_admin(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    response = client.get(admin_url("feedbackevent"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize("user", ["admin", "superuser"])
def test_feedback_events_are_read_only_in_the_admin(client, request, event, user):
    client.force_login(request.getfixturevalue(user))
    page = client.get(admin_url("feedbackevent", "change", event.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert admin_url("feedbackevent", "delete", event.pk) not in html
    assert client.post(admin_url("feedbackevent", "change", event.pk), {"role": "lead"}).status_code == 403
    assert client.post(admin_url("feedbackevent", "delete", event.pk), {"post": "yes"}).status_code == 403
    assert client.get(admin_url("feedbackevent", "add")).status_code == 403
    event.refresh_from_db()
    assert event.role == "admin"


def test_the_changelist_offers_no_delete_action_for_feedback_events(client, superuser, event):
    client.force_login(superuser)
    html = client.get(admin_url("feedbackevent")).content.decode()
    assert "delete_selected" not in html
    response = client.post(admin_url("feedbackevent"), {"action": "delete_selected", "_selected_action": [event.pk]})
    assert FeedbackEvent.objects.filter(pk=event.pk).exists()
    assert response.status_code in (200, 302)


@pytest.mark.parametrize(
    "model",
    [
        CampaignSettings,
        DatasetVersion,
        FeedbackEvent,
        # Human decisions and the pool change only through the app's flows, which write events.
        Assignment,
        Judgment,
        Answer,
        Escalation,
        Adjudication,
        Item,
        Prompt,
        Response,
        ScoringRun,
        MetricSnapshot,
    ],
    ids=lambda m: m._meta.model_name,
)
def test_history_models_cannot_be_added_changed_or_deleted_in_the_admin(rf, superuser, populated, model):
    model_admin = django_admin.site._registry[model]
    request = rf.get("/")
    request.user = superuser
    row = model.objects.first()
    assert row is not None
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, row)
    assert not model_admin.has_delete_permission(request, row)
    assert model_admin.has_view_permission(request, row)


def test_a_draft_rubric_version_can_be_edited_in_the_admin_but_a_published_one_cannot(client, superuser, campaign):
    published = campaign.rubric_version()
    draft = RubricVersion.objects.create(rubric=campaign.rubric, number=2, definition=published.definition)
    client.force_login(superuser)
    html = client.get(admin_url("rubricversion", "change", published.pk)).content.decode()
    assert 'name="_save"' not in html
    form = {
        "rubric": campaign.rubric.pk,
        "number": 2,
        "definition": '{"edited": true}',
        "change_note": "clarify",
        "created_at_0": "2024-01-01",
        "created_at_1": "00:00:00",
    }
    assert client.post(admin_url("rubricversion", "change", published.pk), form).status_code == 403
    assert client.post(admin_url("rubricversion", "delete", published.pk), {"post": "yes"}).status_code == 403
    assert 'name="_save"' in client.get(admin_url("rubricversion", "change", draft.pk)).content.decode()
    response = client.post(admin_url("rubricversion", "change", draft.pk), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    draft.refresh_from_db()
    assert draft.change_note == "clarify"
    published.refresh_from_db()
    assert published.change_note != "clarify"


# -- immutability below the admin: the ORM and the database --------------------------------


def raw_update(sql: str, params) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_feedback_event_cannot_be_saved_again(event):
    event.role = "lead"
    with pytest.raises(ImmutableError):
        event.save()


def test_a_feedback_event_cannot_be_deleted(event):
    with pytest.raises(ImmutableError):
        event.delete()
    assert FeedbackEvent.objects.filter(pk=event.pk).exists()


def test_feedback_event_querysets_refuse_update_and_delete(event):
    with pytest.raises(ImmutableError):
        FeedbackEvent.objects.filter(pk=event.pk).update(role="lead")
    with pytest.raises(ImmutableError):
        FeedbackEvent.objects.all().delete()
    event.refresh_from_db()
    assert event.role == "admin"


def test_new_feedback_events_can_still_be_written(campaign):
    FeedbackEvent.objects.create(campaign=campaign, action="skipped")
    FeedbackEvent(campaign=campaign, action="judged").save()
    assert FeedbackEvent.objects.count() == 2


def test_the_database_refuses_a_raw_update_of_a_feedback_event(event):
    with pytest.raises(DatabaseError):
        raw_update("UPDATE reviews_feedbackevent SET role = %s WHERE id = %s", ["lead", event.pk])
    event.refresh_from_db()
    assert event.role == "admin"


def test_a_published_rubric_version_cannot_be_saved(campaign):
    version = campaign.rubric_version()
    version.change_note = "sneaky"
    with pytest.raises(ImmutableError):
        version.save()
    with pytest.raises(ImmutableError):
        version.delete()


def test_the_database_refuses_a_raw_update_of_a_published_rubric_version(campaign):
    version = campaign.rubric_version()
    with pytest.raises(DatabaseError):
        raw_update("UPDATE reviews_rubricversion SET change_note = %s WHERE id = %s", ["sneaky", version.pk])
    version.refresh_from_db()
    assert version.change_note != "sneaky"


def test_a_draft_rubric_version_can_be_changed_by_orm_and_sql(campaign):
    draft = RubricVersion.objects.create(rubric=campaign.rubric, number=2, definition={"draft": True})
    draft.change_note = "orm"
    draft.save()
    raw_update("UPDATE reviews_rubricversion SET change_note = %s WHERE id = %s", ["sql", draft.pk])
    draft.refresh_from_db()
    assert draft.change_note == "sql"
    draft.published_at = timezone.now()
    draft.save()
    with pytest.raises(ImmutableError):
        draft.save()
