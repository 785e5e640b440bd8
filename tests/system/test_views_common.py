"""Sign in and out, home routing by role, and the campaign pages every role shares."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.views.defaults import permission_denied

from reviews.access import get_campaign_for, role_required, user_has_role, user_role
from reviews.campaigns.setup import create_campaign
from reviews.campaigns.status import final_answer_tables
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.models import Annotator, Escalation, Item, Judgment, ScoringRun
from reviews.views.common import HOME_BY_ROLE
from tests.conftest import PASSWORD, RUBRIC, jsonl, pool_line

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "outsider", "labeler", "lead", "admin"]


def sign_in(client, request, persona):
    """Log the persona in (nothing for "anonymous"); return the user or None."""
    if persona == "anonymous":
        return None
    user = request.getfixturevalue(persona)
    client.force_login(user)
    return user


def human(annotator, criterion, value, response=None):
    out = {"annotator": annotator, "kind": "human", "criterion": criterion, "value": value}
    if response is not None:
        out["response"] = response
    return out


def unanimous_labels(*annotators):
    """Every criterion of the test rubric answered alike, so the item resolves."""
    labels = []
    for name in annotators:
        labels += [
            human(name, "preference", "a"),
            human(name, "compliance", "full_compliance", "a"),
            human(name, "compliance", "full_refusal", "b"),
            human(name, "quality", 6, "a"),
            human(name, "quality", 2, "b"),
        ]
    return labels


@pytest.fixture
def imported(campaign):
    """Three items, one resolved by two unanimous human annotators, and one open escalation."""
    import_pool(
        campaign,
        jsonl(
            pool_line("one", labels=unanimous_labels("ext:h1", "ext:h2"), tags=["safe", "short"]),
            pool_line("two"),
            pool_line("three", tags=["unsafe"]),
        ),
    )
    Escalation.objects.create(
        uid="00000000-0000-0000-0000-000000000001",
        campaign=campaign,
        item=Item.objects.get(external_id="two"),
        reason=Escalation.Reason.HARMFUL,
    )
    return campaign


def html_of(response) -> str:
    return response.content.decode()


# -- sign in and out -----------------------------------------------------------------------


def test_the_login_page_focuses_the_username_and_submits_with_a_button(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = html_of(response)
    assert re.search(r'<input[^>]*name="username"[^>]*autofocus', html)
    assert '<button type="submit"' in html
    assert 'method="post"' in html


def test_signing_in_sends_the_user_home(client, labeler):
    response = client.post("/accounts/login/", {"username": "lena", "password": PASSWORD})
    assert response.status_code == 302
    assert response.url == reverse("reviews:home")
    assert client.get("/").url == reverse("reviews:work_start")  # labelers start at their queue


def test_a_wrong_password_keeps_the_user_on_the_login_page(client, labeler):
    response = client.post("/accounts/login/", {"username": "lena", "password": "wrong"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert 'role="alert"' in html_of(response)


def test_signing_out_takes_a_post_and_ends_the_session(client, labeler):
    client.force_login(labeler)
    assert client.get("/accounts/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session
    assert client.get("/").url.startswith("/accounts/login/")


def test_the_layout_offers_sign_out_as_a_post_form(client, labeler):
    client.force_login(labeler)
    html = html_of(client.get("/campaigns/"))
    assert re.search(r'<form method="post" action="/accounts/logout/"', html)
    assert "lena" in html
    assert "Review desk" in html


# -- home routing --------------------------------------------------------------------------


def test_home_sends_anonymous_visitors_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=/"


@pytest.mark.parametrize(
    ("persona", "target"),
    [("labeler", "/work/"), ("lead", "/escalations/"), ("admin", "/campaigns/")],
)
def test_home_sends_each_role_to_its_work(client, request, persona, target):
    sign_in(client, request, persona)
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == target
    assert client.get(response.url).status_code == 200


def test_every_role_has_a_home():
    assert set(HOME_BY_ROLE) == set(Role)
    for name in HOME_BY_ROLE.values():
        reverse(name)


def test_a_user_without_a_role_is_told_to_ask_an_admin(client, outsider):
    client.force_login(outsider)
    response = client.get("/")
    assert response.status_code == 403
    html = html_of(response)
    assert "No role yet" in html
    assert "Ask an admin" in html
    assert "otto" in html


# -- permission matrix ---------------------------------------------------------------------

LOGIN = "login"
NO_ROLE = "no role"
DENIED = 403
OK = 200
MISSING = 404


def for_roles(expected) -> dict:
    """A matrix row: anonymous visitors go to the login page, users without a role see why."""
    return {"anonymous": LOGIN, "outsider": NO_ROLE, "labeler": expected, "lead": expected, "admin": expected}


MATRIX = {
    "/": for_roles(302),
    "/campaigns/": for_roles(OK),
    "/campaigns/demo/": for_roles(OK),
    "/campaigns/nope/": for_roles(MISSING),
}


@pytest.mark.parametrize(
    ("url", "persona", "expected"),
    [(url, persona, expected) for url, row in MATRIX.items() for persona, expected in row.items()],
)
def test_permission_matrix(client, request, campaign, url, persona, expected):
    sign_in(client, request, persona)
    response = client.get(url)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response.url == f"/accounts/login/?next={url}"
    elif expected == NO_ROLE:
        assert response.status_code == 403
        assert "No role yet" in html_of(response)
    else:
        assert response.status_code == expected


def test_the_matrix_covers_every_persona():
    assert all(set(row) == set(PERSONAS) for row in MATRIX.values())


# -- campaign pages ------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["labeler", "lead", "admin"])
def test_the_campaign_list_shows_each_campaigns_counts(client, request, imported, persona):
    sign_in(client, request, persona)
    response = client.get("/campaigns/")
    assert response.status_code == 200
    row = response.context["campaigns"][0]
    assert (row.item_count, row.prompt_count, row.resolved_count) == (3, 3, 1)
    assert (row.human_judgment_count, row.open_escalation_count) == (2, 1)
    assert (row.rubric_version_number, row.settings_version_number, row.last_run_id) == (1, 1, None)
    html = html_of(response)
    assert 'href="/campaigns/demo/"' in html
    assert "test-rubric v1" in html
    assert re.search(r'<td class="num">3</td>\s*<td class="num">3</td>\s*<td class="num">1</td>', html)


def test_the_campaign_list_counts_only_your_own_judgments(client, imported, labeler, lead):
    item = Item.objects.get(external_id="two")
    Judgment.objects.create(
        item=item,
        annotator=Annotator.for_user(labeler),
        rubric_version=imported.rubric_version(),
        settings_version=imported.settings,
    )
    client.force_login(labeler)
    assert client.get("/campaigns/").context["campaigns"][0].your_judgments == 1
    client.force_login(lead)
    assert client.get("/campaigns/").context["campaigns"][0].your_judgments == 0


def test_the_campaign_list_shows_the_last_scoring_run(client, imported, lead):
    ScoringRun.objects.create(campaign=imported, status=ScoringRun.Status.FAILED)
    latest = ScoringRun.objects.create(campaign=imported, status=ScoringRun.Status.RUNNING)
    client.force_login(lead)
    row = client.get("/campaigns/").context["campaigns"][0]
    assert (row.last_run_id, row.last_run_status) == (latest.id, "running")


def test_the_campaign_list_says_so_when_there_are_no_campaigns(client, lead):
    client.force_login(lead)
    assert "No campaigns yet." in html_of(client.get("/campaigns/"))


def test_the_campaign_list_costs_the_same_queries_however_many_campaigns_and_items(
    client, lead, campaign, django_assert_max_num_queries
):
    import_pool(campaign, jsonl(pool_line("only")))
    client.force_login(lead)
    with CaptureQueriesContext(connection) as baseline:
        assert client.get("/campaigns/").status_code == 200
    assert len(baseline) <= 4  # session, user, role groups, campaigns
    for n in range(4):
        other = create_campaign(f"more-{n}", f"More {n}", RUBRIC)
        import_pool(other, jsonl(*(pool_line(f"x{i}", labels=unanimous_labels("ext:h1", "ext:h2")) for i in range(5))))
        ScoringRun.objects.create(campaign=other)
    with django_assert_max_num_queries(len(baseline)):
        response = client.get("/campaigns/")
    assert len(response.context["campaigns"]) == 5


@pytest.mark.parametrize("persona", ["lead", "admin"])
def test_leads_see_the_final_answers_by_model_and_tag(client, request, imported, persona):
    sign_in(client, request, persona)
    response = client.get("/campaigns/demo/")
    assert response.status_code == 200
    assert response.context["status"]["items"] == 3
    tables = {t["criterion"]: t for t in response.context["final_answer_tables"]}
    compliance = tables["compliance"]
    assert compliance["values"] == ["full_compliance", "full_refusal"]
    rows = {(r["model"], r["tag"]): r for r in compliance["rows"]}
    assert [c["count"] for c in rows[("model-b", "*")]["cells"]] == [0, 1]
    assert rows[("model-b", "safe")]["cells"][1]["percent"] == 100.0
    assert set(rows) == {(m, t) for m in ("model-a", "model-b") for t in ("*", "safe", "short")}
    html = html_of(response)
    assert "Final answers" in html
    assert '1 <span class="muted">(100.0%)</span>' in html


def test_labelers_see_counts_but_no_answers(client, imported, labeler):
    client.force_login(labeler)
    response = client.get("/campaigns/demo/")
    assert response.status_code == 200
    html = html_of(response)
    assert response.context["final_answer_tables"] == []
    assert "Final answers" not in html
    assert "model-a" not in html and "full_refusal" not in html
    assert re.search(r"<dt>Resolved items</dt><dd>1</dd>", html)
    assert re.search(r"<dt>Items</dt><dd>3</dd>", html)


# -- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/accounts/login/", "/campaigns/", "/campaigns/demo/", "/"])
def test_pages_carry_no_inline_scripts_or_styles(client, imported, admin, outsider, url):
    client.force_login(outsider if url == "/" else admin)
    if url == "/accounts/login/":
        client.logout()
    html = html_of(client.get(url))
    assert "<script" not in html
    assert " style=" not in html
    assert "/static/reviews/app.css" in html


def test_the_stylesheet_is_served_by_whitenoise(client):
    response = client.get("/static/reviews/app.css")
    assert response.status_code == 200
    assert b".topbar" in b"".join(response.streaming_content)


def test_admins_get_a_link_to_the_support_admin_and_labelers_do_not(client, admin, labeler):
    client.force_login(admin)
    assert 'href="/admin/"' in html_of(client.get("/campaigns/"))
    client.force_login(labeler)
    assert 'href="/admin/"' not in html_of(client.get("/campaigns/"))


def test_a_missing_campaign_gets_the_not_found_page(client, lead):
    client.force_login(lead)
    response = client.get("/campaigns/nope/")
    assert response.status_code == MISSING
    assert "Not found" in html_of(response)


# -- access helpers ------------------------------------------------------------------------


def lead_only_view():
    return role_required(Role.LEAD)(lambda request: HttpResponse("lead page"))


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("anonymous", LOGIN), ("outsider", NO_ROLE), ("labeler", DENIED), ("lead", OK), ("admin", OK)],
)
def test_role_required_lets_in_the_role_and_those_above_it(rf, request, persona, expected):
    web_request = rf.get("/lead-only/")
    web_request.user = request.getfixturevalue(persona) if persona != "anonymous" else AnonymousUser()
    if expected == DENIED:
        with pytest.raises(PermissionDenied):
            lead_only_view()(web_request)
        return
    response = lead_only_view()(web_request)
    if expected == LOGIN:
        assert (response.status_code, response.url) == (302, "/accounts/login/?next=/lead-only/")
    elif expected == NO_ROLE:
        assert response.status_code == 403
        assert "No role yet" in html_of(response)
    else:
        assert (response.status_code, response.content) == (OK, b"lead page")


def test_a_refused_role_sees_the_not_allowed_page(rf, labeler):
    web_request = rf.get("/lead-only/")
    web_request.user = labeler
    response = permission_denied(web_request, PermissionDenied("This page needs the lead role."))
    assert response.status_code == DENIED
    html = html_of(response)
    assert "Not allowed" in html
    assert "This page needs the lead role." in html


def test_the_role_is_looked_up_once_per_user_object(labeler, django_assert_num_queries):
    user = type(labeler).objects.get(pk=labeler.pk)
    with django_assert_num_queries(1):
        assert user_role(user) == Role.LABELER
        assert user_has_role(user, Role.LABELER)
        assert not user_has_role(user, Role.LEAD)


def test_get_campaign_for_loads_by_slug_or_404s(campaign, labeler, outsider):
    assert get_campaign_for(labeler, "demo") == campaign
    with pytest.raises(Http404):
        get_campaign_for(labeler, "nope")
    with pytest.raises(PermissionDenied):
        get_campaign_for(outsider, "demo")


def test_final_answer_tables_order_scale_values_as_numbers():
    counts = {"quality": {"m": {"*": {"10": 1, "2": 3, "9": 0}}}}
    (table,) = final_answer_tables(counts)
    assert table["values"] == ["2", "9", "10"]
    assert [c["count"] for c in table["rows"][0]["cells"]] == [3, 0, 1]
    assert table["rows"][0]["cells"][0]["percent"] == 75.0


def test_password_reset_pages_are_not_routed(client):
    for path in ("/accounts/password_reset/", "/accounts/password_change/", "/accounts/reset/done/"):
        assert client.get(path).status_code == 404, path
