"""Hostile prompts and outputs (tests/hostile.py) render inertly on every page that shows text, in a real browser.

For each page: no script ran (a window flag, no dialog), the Content-Security-Policy reported no
violation (nothing even tried), no injected element or attribute exists, nothing was fetched from
another origin, the text is visible as text, and a 1 MB single line does not widen the page.

Pages that show imported text are listed in TEXT_PAGES; an area adding such a page adds a line there.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import Assignment, Item
from reviews.people.accounts import create_user
from tests import hostile
from tests.conftest import PASSWORD, RUBRIC, join, jsonl
from tests.labeling.test_queue import judge
from tests.system.test_permission_matrix import all_routes

pytestmark = pytest.mark.browser

SLUG = "hostile"

# Runs before any page script: record CSP violations.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
"""

# Elements and attributes that only an injection could have put in the page.
INJECTED = """
() => {
  const found = [];
  const origin = location.origin;
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith('on')) found.push(`${el.tagName} ${name}`);
      if (name === 'style') found.push(`${el.tagName} style="${attr.value.slice(0, 40)}"`);
      if (name === 'hostile') found.push(`${el.tagName} [hostile]`);
      if (name === 'autofocus' && el.closest('.markdown, .response, .prompt')) found.push('autofocus in content');
    }
    if ((el.id || '').startsWith('hostile')) found.push(`#${el.id}`);
    if (el.classList && el.classList.contains('hostile')) found.push(`${el.tagName}.hostile`);
  }
  for (const el of document.querySelectorAll('script')) {
    if (!el.src || !el.src.startsWith(origin + '/static/')) found.push(`script ${el.src || '(inline)'}`);
  }
  // Our charts are server-drawn <svg class="chart"> (reviews/monitoring/charts.py); any other svg is foreign.
  const foreign = 'iframe, object, embed, base, meta[http-equiv], svg:not(.chart), form[action^="http"]';
  for (const el of document.querySelectorAll(foreign)) {
    found.push(el.tagName.toLowerCase());
  }
  for (const el of document.querySelectorAll('link')) {
    if (!el.href.startsWith(origin + '/static/')) found.push(`link ${el.href}`);
  }
  for (const el of document.querySelectorAll('img')) {
    if (!el.src.startsWith(origin + '/static/')) found.push(`img ${el.src.slice(0, 60)}`);
  }
  for (const el of document.querySelectorAll('a[href]')) {
    const protocol = new URL(el.href, location.href).protocol;
    if (!['http:', 'https:', 'mailto:'].includes(protocol)) found.push(`a ${el.getAttribute('href').slice(0, 60)}`);
  }
  for (const el of document.querySelectorAll('style')) found.push('style element');
  return found;
}
"""


@dataclass(frozen=True)
class TextPage:
    name: str
    persona: str  # "labeler" (who judged every resolved item), "lead", "admin"
    url_name: str
    args: Callable[[dict], list] = lambda ctx: []
    # Text the page must show as text (from tests/hostile.py).
    shows: tuple[str, ...] = ("<script>",)


# Every page that shows imported text. Pages of areas not merged yet are skipped until their URL exists.
TEXT_PAGES = [
    TextPage("history", "labeler", "reviews:history", shows=("<script>", "javascript:")),
    TextPage("campaign-as-lead", "lead", "reviews:campaign", lambda ctx: [SLUG], shows=(hostile.HOSTILE_MODEL,)),
    TextPage("campaign-as-admin", "admin", "reviews:campaign", lambda ctx: [SLUG], shows=(hostile.HOSTILE_TAG,)),
    TextPage("campaigns", "lead", "reviews:campaigns", shows=("<b>Hostile</b>",)),
    TextPage("escalations", "lead", "reviews:escalations", shows=()),
    TextPage("adjudicate", "lead", "reviews:adjudicate", lambda ctx: [ctx["escalation"].uid], shows=("<script>",)),
    TextPage("campaign-escalations", "lead", "reviews:campaign_escalations", lambda ctx: [SLUG], shows=()),
    TextPage("items", "lead", "reviews:items", lambda ctx: [SLUG], shows=()),
    TextPage("dashboard", "lead", "reviews:dashboard", lambda ctx: [SLUG], shows=()),
    TextPage("datasets", "admin", "reviews:datasets", lambda ctx: [SLUG], shows=()),
]


@pytest.fixture
def hostile_campaign(transactional_db):
    """The hostile pool, a labeler who has judged some of it (for their history) and an escalation."""
    campaign = create_campaign(SLUG, "<b>Hostile</b> <script>window.__pwned=1</script>", RUBRIC)
    report = import_pool(campaign, jsonl(*hostile.hostile_pool()))
    assert not report.errors, report.errors
    users = {
        "labeler": create_user("lena", Role.LABELER, password=PASSWORD),
        "browser": create_user("bea", Role.LABELER, password=PASSWORD),
        "lead": create_user("leo", Role.LEAD, password=PASSWORD),
        "admin": create_user("ada", Role.ADMIN, password=PASSWORD),
    }
    join(campaign, users["labeler"], users["browser"], users["lead"])
    # The labeler judges four open items (with a hostile rationale) and escalates one.
    for _ in range(4):
        judge(users["labeler"], campaign)
    lease = queue.claim_next(campaign, users["labeler"]).assignment
    escalation = queue.escalate(
        users["labeler"], lease.uid, reason="harmful", comment=hostile.PAYLOADS[0][1], time_spent_ms=500
    )
    return {"campaign": campaign, "users": users, "escalation": escalation}


class Watcher:
    """A page's dialogs and foreign requests, recorded from the start."""

    def __init__(self, page, origin: str):
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        page.on("dialog", self._dialog)
        page.on("request", lambda req: None if req.url.startswith(origin) else self.foreign.append(req.url))
        page.add_init_script(WATCH)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


def sign_in(context, live_server, user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])


def assert_inert(page, watcher: Watcher, where: str, shows=()):
    page.wait_for_load_state("load")
    assert page.evaluate("window.__pwned") is None, f"{where}: a payload ran"
    assert not watcher.dialogs, f"{where}: dialogs {watcher.dialogs}"
    assert page.evaluate("window.__violations") == [], f"{where}: CSP violations {page.evaluate('window.__violations')}"
    injected = page.evaluate(INJECTED)
    assert injected == [], f"{where}: injected {injected}"
    assert not watcher.foreign, f"{where}: fetched {watcher.foreign}"
    text = page.inner_text("body")
    for fragment in shows:
        assert fragment in text, f"{where}: {fragment!r} is not shown as text"
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{where}: the page is {width[0]}px wide in a {width[1]}px window"


def test_the_compare_page_shows_every_hostile_item_inertly(page, context, live_server, hostile_campaign, artifacts):
    """A second labeler goes through the whole open pool, skipping each item after the checks."""
    watcher = Watcher(page, live_server.url)
    bea = hostile_campaign["users"]["browser"]
    sign_in(context, live_server, bea)
    open_items = Item.objects.filter(campaign=hostile_campaign["campaign"], resolved=False, escalated=False).count()
    seen = []
    page.goto(f"{live_server.url}{reverse('reviews:work', args=[SLUG])}")
    while page.locator("[data-compare]").count():
        expect(page.locator("[data-compare][data-ready]")).to_have_count(1)
        lease = Assignment.objects.get(user=bea, status=Assignment.Status.LIVE)
        name = lease.item.external_id
        payload = dict(hostile.PAYLOADS).get(name.removeprefix("hostile-"), "")
        shows = ["Response A", "<script>"] if "<script>" in payload else ["Response A"]
        assert_inert(page, watcher, f"compare {name}", shows)
        if name == "hostile-one-mb":
            page.screenshot(path=artifacts / "hostile-one-mb.png")
            assert page.locator(".response").first.is_visible()
        if name == "hostile-css-injection":
            page.screenshot(path=artifacts / "hostile-css.png")
        seen.append(name)
        with page.expect_navigation():
            page.locator("#skip-form button[type=submit], #skip-form [type=submit]").first.click()
        assert len(seen) <= open_items, "the queue served more items than it holds"
    assert len(seen) == open_items
    assert "hostile-one-mb" in seen and "hostile-script-tag" in seen


@pytest.mark.parametrize("spec", TEXT_PAGES, ids=lambda s: s.name)
def test_pages_showing_imported_text_render_it_inertly(spec, page, context, live_server, hostile_campaign, artifacts):
    try:
        path = reverse(spec.url_name, args=spec.args(hostile_campaign))
    except NoReverseMatch:
        routed = any(route.name == spec.url_name for route in all_routes())
        assert not routed, f"TEXT_PAGES entry {spec.name!r}: {spec.url_name} takes other arguments; fix its args"
        pytest.skip(f"{spec.url_name} is not routed on this branch")
    watcher = Watcher(page, live_server.url)
    user = get_user_model().objects.get(username=hostile_campaign["users"][spec.persona].username)
    sign_in(context, live_server, user)
    response = page.goto(f"{live_server.url}{path}")
    assert response.status == 200, f"{spec.name}: {response.status}"
    assert_inert(page, watcher, spec.name, spec.shows)
    page.screenshot(path=artifacts / f"hostile-{spec.name}.png", full_page=True)
