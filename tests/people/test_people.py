"""People (admins): create, deactivate, re-activate, set roles; throughput, agreement, gold accuracy."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.urls import reverse

from reviews.core.roles import Role, role_of
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import Item, Membership
from reviews.people import directory as people
from reviews.people.directory import PeopleError
from tests.conftest import PASSWORD, jsonl, pool_line
from tests.labeling.test_queue import answers_for, judge, labelers
from tests.system.test_views_common import human

pytestmark = pytest.mark.django_db


def test_create_person_with_role_and_campaigns(campaign, admin):
    user = people.create_person("rita", Role.LEAD, password=PASSWORD, campaigns=[campaign], by=admin)
    assert role_of(user) == Role.LEAD and user.check_password(PASSWORD)
    assert Membership.objects.get(user=user).campaign == campaign
    assert LogEntry.objects.get(object_id=str(user.pk)).user == admin


@pytest.mark.parametrize(
    "username, password, message", [("lena", PASSWORD, "taken"), ("", PASSWORD, "required"), ("x", "1", "Password")]
)
def test_create_person_refuses_bad_input_and_writes_nothing(labeler, admin, username, password, message):
    before = get_user_model().objects.count()
    with pytest.raises(PeopleError, match=message):
        people.create_person(username, Role.LABELER, password=password, by=admin)
    assert get_user_model().objects.count() == before


def test_roles_change_and_admins_cannot_demote_themselves(labeler, admin):
    assert people.change_role(labeler, Role.LEAD, by=admin)
    labeler = get_user_model().objects.get(pk=labeler.pk)
    assert role_of(labeler) == Role.LEAD
    assert not people.change_role(labeler, Role.LEAD, by=admin)
    with pytest.raises(PeopleError, match="own role"):
        people.change_role(admin, Role.LABELER, by=admin)


def test_deactivate_and_reactivate(labeler, admin):
    assert people.set_active(labeler, False, by=admin)
    labeler.refresh_from_db()
    assert not labeler.is_active and role_of(labeler) is None
    assert people.set_active(labeler, True, by=admin)
    assert get_user_model().objects.get(pk=labeler.pk).is_active
    with pytest.raises(PeopleError, match="yourself"):
        people.set_active(admin, False, by=admin)
    assert LogEntry.objects.filter(object_id=str(labeler.pk)).count() == 2


def test_throughput_agreement_and_gold_accuracy(campaign, labeler):
    # Two external annotators settle "ref"; the labeler then judges it against their answers.
    labels = [human(n, "preference", "a") for n in ("ext:h1", "ext:h2")]
    import_pool(campaign, jsonl(pool_line("ref", labels=labels), pool_line("other")))
    Item.objects.filter(external_id="ref").update(
        is_gold=True, gold_answers=[{"criterion": "preference", "value": "a"}], judgment_target=3
    )
    Item.objects.filter(external_id="other").update(excluded=True)
    campaign.update_settings(gold_rate=1.0)  # gold items are served only at the gold rate
    # The labeler agrees with the annotators ("a"), whichever side it was shown on.
    claim = queue.claim_next(campaign, labeler)
    assert claim.assignment.item.external_id == "ref"
    side = "left" if claim.assignment.left_response.key == "a" else "right"
    queue.submit(
        labeler,
        claim.assignment.uid,
        answers_for(claim.assignment, side),
        confidence=4,
        rationale="",
        time_spent_ms=900,
    )
    rows = {r.user.username: r for r in people.people_rows()}
    row = rows["lena"]
    assert (row.recent, row.total) == (1, 1)
    assert (row.compared, row.agreement) == (1, 1.0)  # the preference equals the final answer
    assert (row.gold_compared, row.gold) == (1, 1.0)
    assert [c.slug for c in row.campaigns] == ["demo"]
    assert rows["leo"].agreement is None and rows["leo"].total == 0


def test_people_page_flows(client, admin, campaign):
    client.force_login(admin)
    page = client.get(reverse("reviews:people"))
    assert page.status_code == 200 and 'data-person="lena"' in page.content.decode()
    response = client.post(
        reverse("reviews:person_create"),
        {"username": "zoe", "role": "labeler", "password": PASSWORD, "campaigns": [campaign.id]},
    )
    assert response.status_code == 302
    zoe = get_user_model().objects.get(username="zoe")
    assert Membership.objects.filter(user=zoe, campaign=campaign, active=True).exists()
    client.post(reverse("reviews:person_role", args=["zoe"]), {"role": "lead"})
    assert role_of(get_user_model().objects.get(username="zoe")) == Role.LEAD
    client.post(reverse("reviews:person_active", args=["zoe"]), {"active": "0"})
    assert not get_user_model().objects.get(username="zoe").is_active
    bad = client.post(reverse("reviews:person_create"), {"username": "zoe", "role": "labeler", "password": PASSWORD})
    assert bad.status_code == 400 and "taken" in bad.content.decode()
    weird = client.post(reverse("reviews:person_role", args=["zoe"]), {"role": "king"}, follow=True)
    assert "Unknown role" in weird.content.decode()
    assert client.post(reverse("reviews:person_role", args=["nobody"]), {"role": "lead"}).status_code == 404


def test_the_people_page_costs_a_bounded_number_of_queries(client, admin, campaign, django_assert_max_num_queries):
    import_pool(campaign, jsonl(*(pool_line(f"i{n}") for n in range(6))))
    for user in labelers(4, campaign):
        judge(user, campaign)
    client.force_login(admin)
    with django_assert_max_num_queries(20):
        assert client.get(reverse("reviews:people")).status_code == 200
