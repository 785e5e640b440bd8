"""The permission matrix, generated from the URL configuration: every route × every persona × GET and POST.

Where the expectation comes from:
- a view decorated with `@role_required(Role.X)` carries `required_role` (reviews/access.py);
- the sign-in pages, the support admin (Django's staff check) and the token API are in PUBLIC and
  NAMESPACE_RULES below;
- anything else fails `test_every_route_has_an_access_rule`: a new page without a check fails the suite.

URL parameters are filled by name from a populated fixture (SAMPLES). A route with a parameter name
that has no sample fails `test_every_route_parameter_has_a_sample`, naming the route.
"""

import hashlib
import secrets
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from reviews.core.roles import RANK, Role
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import (
    ApiToken,
    Assignment,
    Escalation,
    FeedbackEvent,
    Item,
    Judgment,
    Response,
    RubricVersion,
)
from reviews.people.accounts import create_user
from tests.conftest import PASSWORD, join, jsonl, pool_line
from tests.labeling.test_queue import judge

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "outsider", "labeler", "lead", "admin"]
PERSONA_ROLE = {"anonymous": None, "outsider": None, "labeler": Role.LABELER, "lead": Role.LEAD, "admin": Role.ADMIN}
CSRF_SECRET = "a" * 32  # an unmasked CSRF secret is a valid token and cookie value (Django 4.1+)
LOGIN_URL = "/accounts/login/"
ADMIN_LOGIN_URL = "/admin/login/"


@dataclass(frozen=True)
class Route:
    pattern: str  # the full pattern, e.g. "campaigns/<slug:slug>/"
    name: str | None  # "namespace:name"
    namespace: str
    callback: object
    params: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.name or self.pattern


def _walk(patterns, prefix="", namespace="", params=()):
    for entry in patterns:
        captured = params + tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), ns, captured)
        elif isinstance(entry, URLPattern):
            name = (f"{namespace}:{entry.name}" if namespace else entry.name) if entry.name else None
            yield Route(prefix + str(entry.pattern), name, namespace, entry.callback, captured)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


ROUTES = all_routes()

# Routes without a role decorator, by URL name, with who may use them. Keep this table small.
PUBLIC = {
    "login": "anyone may open the sign-in page",
    "logout": "signing out needs no role (POST only)",
    "api:schema": "the OpenAPI description of the API: it documents the endpoints and holds no data",
}
# Whole namespaces with their own access rule.
NAMESPACE_RULES = {
    "admin": "Django's support admin: staff only (admins), through admin_site.admin_view",
    "djdt": "debug toolbar",  # never routed in production settings; listed so a local install does not fail
    "api": "the ingest API: an ApiToken (bearer) limited to its campaigns; no session access",
}


def rule_for(route: Route) -> str | None:
    top = route.namespace.split(":")[0] if route.namespace else ""
    if route.name in PUBLIC:
        return "public"
    if top in NAMESPACE_RULES:
        return top
    if getattr(route.callback, "required_role", None) is not None:
        return "role"
    return None


APP_ROUTES = [r for r in ROUTES if rule_for(r) == "role"]
API_ROUTES = [r for r in ROUTES if rule_for(r) == "api"]
ADMIN_ROUTES = [r for r in ROUTES if rule_for(r) == "admin"]


def allowed_methods(view) -> set[str] | None:
    """The methods a require_http_methods gate in the view's decorator chain lets through (None: any)."""
    func, methods = view, None
    while func is not None:
        code = getattr(func, "__code__", None)
        if code is not None and "request_method_list" in code.co_freevars:
            cell = func.__closure__[code.co_freevars.index("request_method_list")]
            gate = {m.upper() for m in cell.cell_contents}
            methods = gate if methods is None else methods & gate
        func = getattr(func, "__wrapped__", None)
    if methods is not None and "GET" in methods:
        methods.add("HEAD")
    return methods


# -- the populated fixture ----------------------------------------------------------------


@pytest.fixture
def world(campaign, labeler, lead, admin, outsider):
    """A campaign with items, a labeler's live lease, a judged item, an escalation and an API token."""
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(6))))
    other = join(campaign, create_user("lars", Role.LABELER, password=PASSWORD))[0]
    judged = judge(labeler, campaign)
    escalated = queue.claim_next(campaign, other).assignment
    escalation = queue.escalate(other, escalated.uid, reason="ambiguous", comment="unclear", time_spent_ms=1000)
    lease = queue.claim_next(campaign, labeler).assignment
    secret = "rdk_" + secrets.token_urlsafe(24)
    token = ApiToken.objects.create(
        name="matrix", prefix=secret[:8], key_hash=hashlib.sha256(secret.encode()).hexdigest()
    )
    token.campaigns.add(campaign)
    item = lease.item
    judgment = Judgment.objects.filter(item=judged.item, annotator__user=labeler).first()
    rubric_version = RubricVersion.objects.filter(rubric=campaign.rubric).order_by("-number").first()
    return {
        "campaign": campaign,
        "lease": lease,
        "item": item,
        "judgment": judgment,
        "escalation": escalation,
        "rubric_version": rubric_version,
        "token": token,
        "token_secret": secret,
        "other_labeler": other,
        "users": {"outsider": outsider, "labeler": labeler, "lead": lead, "admin": admin},
    }


def samples(world) -> dict:
    """A value for every URL parameter name in use, from the fixture. Add names here as routes gain them."""
    campaign, item, lease, escalation = world["campaign"], world["item"], world["lease"], world["escalation"]
    rubric_version = world["rubric_version"]
    return {
        # campaigns, rubrics and their versions
        "slug": campaign.slug,
        "campaign": campaign.slug,
        "campaign_slug": campaign.slug,
        "rubric": campaign.rubric.slug,
        "rubric_slug": campaign.rubric.slug,
        "version": rubric_version.number,
        "number": rubric_version.number,
        "rubric_version": rubric_version.number,
        # the labeler's lease, items, judgments, escalations
        "uid": lease.uid,
        "lease": lease.uid,
        "lease_uid": lease.uid,
        "item": item.pk,
        "item_id": item.pk,
        "item_pk": item.pk,
        "external_id": item.external_id,
        "judgment": world["judgment"].pk,
        "judgment_id": world["judgment"].pk,
        "escalation": escalation.uid,
        "escalation_uid": escalation.uid,
        "escalation_id": escalation.pk,
        "prompt_id": item.prompt.pk,
        "response_id": item.response_a.pk,
        # people and tokens
        "username": "lena",
        "user_id": world["users"]["labeler"].pk,
        "token_id": world["token"].pk,
        "token": world["token"].pk,
        "pk": item.pk,
        "id": item.pk,
        # dashboards: a page, one of its tables and a download format
        "page": "quality",
        "table": "agreement",
        "fmt": "csv",
    }


def url_for(route: Route, values: dict) -> str:
    missing = [p for p in route.params if p not in values]
    assert not missing, f"route {route.label!r} ({route.pattern}) needs a sample value for {missing}: add to samples()"
    return reverse(route.name, kwargs={p: values[p] for p in route.params})


def client_for(persona: str, world, *, csrf: bool = True) -> Client:
    client = Client(enforce_csrf_checks=True)
    if persona != "anonymous":
        client.force_login(world["users"][persona])
    if csrf:
        client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    return client


def request(client: Client, method: str, url: str, *, csrf: bool = True, **extra):
    if method == "POST":
        return client.post(url, {"csrfmiddlewaretoken": CSRF_SECRET} if csrf else {}, **extra)
    return client.get(url, **extra)


def events_snapshot() -> dict:
    return {e["id"]: e for e in FeedbackEvent.objects.order_by("id").values()}


# -- the rules exist ----------------------------------------------------------------------


def test_every_route_has_an_access_rule():
    unchecked = [f"{r.label} ({r.pattern})" for r in ROUTES if rule_for(r) is None]
    assert not unchecked, (
        "new page without a check: decorate these views with @role_required(Role.X) "
        "(reviews/access.py) or list them in PUBLIC / NAMESPACE_RULES:\n" + "\n".join(unchecked)
    )


def test_every_app_route_has_a_name(world):
    unnamed = [r.pattern for r in APP_ROUTES + API_ROUTES if not r.name]
    assert not unnamed, f"routes without a URL name cannot be tested by the matrix: {unnamed}"


def test_every_route_parameter_has_a_sample(world):
    values = samples(world)
    missing = [
        f"route {r.label!r} ({r.pattern}) needs a sample value for {p!r}: add it to samples()"
        for r in APP_ROUTES + API_ROUTES
        for p in r.params
        if p not in values
    ]
    assert not missing, "\n".join(missing)


def test_the_matrix_sees_the_labelers_pages():
    """A guard against a walker that finds nothing: the routes known today are all in it."""
    names = {r.name for r in APP_ROUTES}
    for name in ("reviews:home", "reviews:campaign", "reviews:work", "reviews:lease_submit", "reviews:history"):
        assert name in names
    assert allowed_methods(next(r for r in APP_ROUTES if r.name == "reviews:lease_submit").callback) == {"POST"}
    assert allowed_methods(next(r for r in APP_ROUTES if r.name == "reviews:campaign").callback) is None


# -- role routes: every persona, GET and POST ---------------------------------------------


def _denied_status(persona: str, minimum: Role) -> int | None:
    """What a persona below `minimum` gets: anonymous → the sign-in page, no role or too low → 403."""
    role = PERSONA_ROLE[persona]
    if persona == "anonymous":
        return 302
    if role is None or RANK[role] < RANK[minimum]:
        return 403
    return None


@pytest.mark.parametrize("route", APP_ROUTES, ids=lambda r: r.label)
def test_role_routes_answer_each_persona_as_their_role_says(route, world):
    values = samples(world)
    url = url_for(route, values)
    minimum = route.callback.required_role
    methods = allowed_methods(route.callback)
    before = events_snapshot()
    failures = []
    for persona in PERSONAS:
        for method in ("GET", "POST"):
            response = request(client_for(persona, world), method, url)
            status, location = response.status_code, response.get("Location", "")
            denied = _denied_status(persona, minimum)
            method_ok = methods is None or method in methods
            where = f"{method} {url} as {persona}: got {status} {location}".strip()
            if not method_ok and status == 405:
                continue
            if denied == 302:
                if status != 302 or not location.startswith(LOGIN_URL):
                    failures.append(f"{where}; expected a redirect to the sign-in page")
            elif denied == 403:
                if status != 403:
                    failures.append(f"{where}; expected 403 (needs {minimum.label})")
            elif not method_ok:
                failures.append(f"{where}; expected 405 (the view takes {sorted(methods)})")
            elif status >= 500 or status in (401, 403, 405) or location.startswith(LOGIN_URL):
                failures.append(f"{where}; expected the page ({minimum.label} may use it)")
    assert not failures, "\n".join(failures)
    # Nothing that any persona did changed the feedback log's existing rows.
    after = events_snapshot()
    assert {k: after.get(k) for k in before} == before


# Routes that take a POST (the 405 of the others is checked by the matrix above).
POST_ROUTES = [r for r in APP_ROUTES if (allowed_methods(r.callback) or {"POST"}) >= {"POST"}]


@pytest.mark.parametrize("route", POST_ROUTES, ids=lambda r: r.label)
def test_a_post_without_a_csrf_token_is_refused(route, world):
    url = url_for(route, samples(world))
    client = client_for("admin", world, csrf=False)
    response = client.post(url, {})
    assert response.status_code == 403, f"POST {url} without a CSRF token got {response.status_code}"
    assert b"CSRF" in response.content


def test_a_labeler_cannot_act_on_another_labelers_lease_by_its_id(world):
    """Object-level: every lease route, with the first labeler's lease id, by a second labeler: nothing happens."""
    lease = world["lease"]
    lease_routes = [r for r in APP_ROUTES if "uid" in r.params and r.pattern.startswith("leases/")]
    assert lease_routes
    client = client_for("labeler", world)
    client.force_login(world["other_labeler"])
    counts = (Judgment.objects.count(), Escalation.objects.count(), FeedbackEvent.objects.count())
    for route in lease_routes:
        url = url_for(route, samples(world))
        data = {"csrfmiddlewaretoken": CSRF_SECRET, "preference": "left", "reason": "other", "comment": "x"}
        response = client.post(url, data)
        assert response.status_code in (302, 404), f"{url}: {response.status_code}"
        lease.refresh_from_db()
        assert lease.status == Assignment.Status.LIVE, url
    assert (Judgment.objects.count(), Escalation.objects.count(), FeedbackEvent.objects.count()) == counts


def test_a_labelers_history_shows_only_their_own_judgments(world, client):
    client.force_login(world["other_labeler"])
    page = client.get(reverse("reviews:history")).content.decode()
    judged = world["judgment"].item
    assert f"Question {judged.external_id}?" not in page
    client.force_login(world["users"]["labeler"])
    assert f"Question {judged.external_id}?" in client.get(reverse("reviews:history")).content.decode()


# -- the support admin ------------------------------------------------------------------------


def _admin_url(route: Route, world) -> str:
    """Fill an admin route's parameters: app labels, object ids of its model, the view-on-site shortcut."""
    values = {}
    model_admin = getattr(route.callback, "model_admin", None)
    for param in route.params:
        if param == "app_label":
            values[param] = "reviews"
        elif param == "object_id":
            model = model_admin.model if model_admin else None
            managed = model is not None and model._meta.managed  # django-rq's dashboard "model" has no table
            obj = model._default_manager.first() if managed else None
            values[param] = str(obj.pk) if obj is not None else "1"
        elif param == "content_type_id":
            values[param] = ContentType.objects.get_for_model(Item).pk
        elif param == "id":
            values[param] = world["users"]["labeler"].pk
        elif param in ("queue_index", "connection_index", "scheduler_index"):
            values[param] = 0
        else:
            values[param] = "x"
    if route.name is None:
        return "/" + route.pattern.replace("<path:object_id>", values.get("object_id", "1"))
    return reverse(route.name, kwargs=values)


def test_the_support_admin_is_closed_to_everyone_but_staff(world):
    """Every admin route, GET and POST, sends anonymous users, labelers and leads to the admin's sign-in."""
    failures = []
    for route in ADMIN_ROUTES:
        if route.name in ("admin:login", "admin:logout", "admin:jsi18n") or "(?P<url>" in route.pattern:
            continue
        if "^stats.json" in route.pattern or "(?P<" in route.pattern:
            continue  # django-rq's regex stats routes: covered by its own staff check (dashboard below)
        url = _admin_url(route, world)
        for persona in ("anonymous", "labeler", "lead"):
            for method in ("GET", "POST"):
                response = request(client_for(persona, world), method, url)
                location = response.get("Location", "")
                if response.status_code != 302 or not location.startswith(ADMIN_LOGIN_URL):
                    failures.append(f"{method} {url} as {persona}: {response.status_code} {location}")
    assert not failures, "\n".join(failures)


def test_the_feedback_log_cannot_be_edited_through_the_admin(world):
    client = client_for("admin", world)
    event = FeedbackEvent.objects.order_by("id").first()
    before = events_snapshot()
    base = "/admin/reviews/feedbackevent/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{event.pk}/change/").status_code == 200  # viewable, read-only
    for url, data in [
        (f"{base}add/", {"action": "judged"}),
        (f"{base}{event.pk}/change/", {"action": "skipped", "feedback": "{}"}),
        (f"{base}{event.pk}/delete/", {"post": "yes"}),
        (base, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"}),
    ]:
        response = client.post(url, {"csrfmiddlewaretoken": CSRF_SECRET, **data})
        # 403 for the views; the changelist re-renders (200) without the delete action it does not offer.
        assert response.status_code in (200, 302, 403), f"POST {url}: {response.status_code}"
    assert events_snapshot() == before


def test_append_only_and_derived_tables_are_read_only_in_the_admin(world, rf):
    """Append-only models (the feedback log, settings versions, datasets) and derived rows: no add/change/delete."""
    from django.contrib import admin as django_admin

    from reviews.models import FinalAnswer, ItemScore
    from reviews.models.base import AppendOnlyModel

    request_ = rf.get("/admin/")
    request_.user = world["users"]["admin"]
    registered = django_admin.site._registry
    read_only = [m for m in registered if issubclass(m, AppendOnlyModel)] + [FinalAnswer, ItemScore]
    assert FeedbackEvent in read_only
    for model in read_only:
        model_admin = registered[model]
        name = model._meta.model_name
        assert not model_admin.has_add_permission(request_), name
        assert not model_admin.has_change_permission(request_), name
        assert not model_admin.has_delete_permission(request_), name


# -- the token API ----------------------------------------------------------------------------


def _bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.mark.parametrize("route", API_ROUTES or [None], ids=lambda r: r.label if r else "no-api-routes-yet")
def test_api_routes_need_a_token_for_their_campaign(route, world, campaign):
    if route is None:
        pytest.skip("no /api/v1/ routes are mounted on this branch")
    url = url_for(route, samples(world))
    failures = []
    for persona in ("anonymous", "labeler", "admin"):
        for method in ("GET", "POST"):
            response = request(client_for(persona, world, csrf=False), method, url, csrf=False)
            if response.status_code not in (401, 403, 405):
                failures.append(f"{method} {url} as {persona} without a token: {response.status_code}")
    # A token that exists but is not for this campaign gets nowhere either.
    stranger = "rdk_" + secrets.token_urlsafe(24)
    ApiToken.objects.create(name="other", prefix=stranger[:8], key_hash=hashlib.sha256(stranger.encode()).hexdigest())
    revoked_for_nothing = request(Client(), "POST", url, csrf=False, **_bearer(stranger))
    if "slug" in route.params and revoked_for_nothing.status_code not in (401, 403, 404, 405):
        failures.append(f"POST {url} with another campaign's token: {revoked_for_nothing.status_code}")
    assert not failures, "\n".join(failures)


def test_the_fixture_reaches_every_kind_of_object(world):
    """The samples point at real rows: a route that takes an id gets a live object, not a 404 by accident."""
    assert Item.objects.filter(pk=world["item"].pk).exists()
    assert Response.objects.filter(pk=world["item"].response_a_id).exists()
    assert world["lease"].status == Assignment.Status.LIVE
    assert world["escalation"].status == Escalation.Status.OPEN
    assert world["judgment"] is not None


def test_a_view_without_a_check_is_caught():
    """The rule lookup itself: a plain view has no rule; the same view behind role_required has one."""
    from reviews.access import role_required

    def plain(request):
        return None

    assert rule_for(Route("x/", "reviews:x", "reviews", plain, ())) is None
    assert rule_for(Route("x/", "reviews:x", "reviews", role_required(Role.LEAD)(plain), ())) == "role"
