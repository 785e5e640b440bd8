"""bench_queue's wrk mode: reviews/dev/wrk_cycle.lua, run by the real wrk against a rendered compare page.

A small HTTP server on 127.0.0.1 plays the server's part with the page the Django test client
rendered; what the script posts is then replayed through the test client, which must accept it.
"""

import http.server
import itertools
import json
import re
import threading
from urllib.parse import parse_qs

import pytest
from django.contrib.messages import SUCCESS, get_messages
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import RequestFactory
from django.urls import reverse

from reviews.data.importer import import_pool
from reviews.dev import wrk
from reviews.management.commands.bench_queue import CSRF_RE, FORM_RE, JUDGMENT_FORM_ID, free_port, radio_groups
from reviews.models import Judgment
from tests.conftest import jsonl, pool_line

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(wrk.find_wrk() is None, reason=f"wrk is not installed ({wrk.INSTALL}); CI does without it"),
]

DELETED = 'messages=""; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax'
RENEWED = "csrftoken=the-csrf-cookie; expires=Thu, 01 Jan 2099 00:00:00 GMT; Max-Age=31449600; Path=/; SameSite=Lax"
SHOWN = '<ul class="messages" role="status"><li>Judgment saved.</li></ul>'


class PageServer(http.server.ThreadingHTTPServer):
    """Plays the app as Django does: a GET of `page` answers `html`, showing the message a cookie brings,
    deleting that cookie and renewing the CSRF cookie (in this order); a POST redirects back to the page
    and sets `message_cookie`. Records every request."""

    def __init__(self, port, page, html, message_cookie):
        self.page, self.html, self.message_cookie = page, html.encode(), message_cookie
        self.requests: list[dict] = []
        super().__init__(("127.0.0.1", port), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        cookie = self.headers.get("Cookie", "")
        self.server.requests.append({"method": "GET", "path": self.path, "cookie": cookie})
        html = self.server.html
        if "messages=" in cookie:
            html = html.replace(b"<main", SHOWN.encode() + b"<main", 1)
        self.send_response(200 if self.path == self.server.page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(html)))
        if "messages=" in cookie:
            self.send_header("Set-Cookie", DELETED)
        self.send_header("Set-Cookie", RENEWED)
        self.end_headers()
        self.wfile.write(html)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.requests.append(
            {
                "method": "POST",
                "path": self.path,
                "cookie": self.headers.get("Cookie", ""),
                "origin": self.headers.get("Origin"),
                "body": body,
            }
        )
        self.send_response(302)
        self.send_header("Location", self.server.page)
        self.send_header("Set-Cookie", f"messages={self.server.message_cookie}; HttpOnly; Path=/; SameSite=Lax")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def run_script(tmp_path, page, html, message_cookie, form_id=JUDGMENT_FORM_ID):
    """One wrk thread for a second against the page; the summary and the requests the server saw."""
    port = free_port()
    server = PageServer(port, page, html, message_cookie)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config, out = tmp_path / "wrk.conf", tmp_path / "summary.json"
    jar = {"sessionid": "the-session", "csrftoken": "the-csrf-cookie"}
    wrk.write_config(config, page=page, form_id=form_id, message_level=SUCCESS, out=out, jars=[jar])
    try:
        run = wrk.run(
            wrk.find_wrk(), port=port, config=config, out=out, threads=1, duration=1, log=tmp_path / "wrk.log"
        )
    finally:
        server.shutdown()
        server.server_close()
    return run, server.requests


@pytest.fixture
def compare_page(client, campaign, labeler):
    """The compare page as the labeler sees it: (work URL, HTML, the lease's uid)."""
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(2))))
    client.force_login(labeler)
    url = reverse("reviews:work", args=[campaign.slug])
    response = client.get(url)
    assert response.status_code == 200
    return url, response.content.decode(), str(response.context["assignment"].uid)


def success_cookie() -> str:
    """Django's own encoding of a "Judgment saved." message cookie."""
    return CookieStorage(RequestFactory().get("/"))._encode([Message(SUCCESS, "Judgment saved.")])


def test_the_script_posts_the_compare_page_as_a_browser_would_and_the_app_accepts_it(client, compare_page, tmp_path):
    url, html, uid = compare_page
    run, requests = run_script(tmp_path, url, html, success_cookie())

    [labeler] = run.labelers
    assert labeler["cycles"] > 0 and labeler["errors"] == {} and labeler["unverified"] == 0
    assert set(labeler["accepted"]) == {uid}
    assert len(labeler["next_ms"]) == len(labeler["submit_ms"]) == labeler["cycles"]
    posts = [r for r in requests if r["method"] == "POST"]
    assert {p["path"] for p in posts} == {reverse("reviews:lease_submit", args=[uid])}
    # What the page offers, read by the Python client's parser.
    inner = re.search(FORM_RE.format(JUDGMENT_FORM_ID), html, re.S).group(2)
    options = radio_groups(inner)
    for post in posts:
        fields = {k: v[0] for k, v in parse_qs(post["body"], keep_blank_values=True).items()}
        assert fields["csrfmiddlewaretoken"] == CSRF_RE.search(inner).group(1)
        assert set(fields) == {"csrfmiddlewaretoken", "rationale", "time_spent_ms", *options}
        assert all(fields[name] in values for name, values in options.items())
        assert 2_000 <= int(fields["time_spent_ms"]) <= 60_000
        assert post["origin"] == f"http://127.0.0.1:{post['origin'].rsplit(':', 1)[1]}"

    # The first POST, replayed to the app: a judgment is saved, with the success message.
    response = client.post(posts[0]["path"], {k: v[0] for k, v in parse_qs(posts[0]["body"]).items()})
    assert response.status_code == 302 and response["Location"] == url
    assert [m.level for m in get_messages(response.wsgi_request)] == [SUCCESS]
    assert Judgment.objects.filter(assignment__uid=uid).count() == 1


def test_the_script_keeps_cookies_as_a_browser_does(compare_page, tmp_path):
    url, html, _ = compare_page
    cookie = success_cookie()
    _, requests = run_script(tmp_path, url, html, cookie)

    assert requests[0]["method"] == "GET"
    for request in requests:
        names = [pair.split("=", 1)[0] for pair in request["cookie"].split("; ")]
        assert sorted(names) == sorted(set(names)), request["cookie"]  # each cookie once
        assert "sessionid=the-session" in request["cookie"] and "csrftoken=the-csrf-cookie" in request["cookie"]
    for before, after in itertools.pairwise(requests):
        # The message a POST's redirect set goes with the next GET, which deletes it.
        holds_message = f"messages={cookie}" in after["cookie"]
        assert holds_message == (before["method"] == "POST")


def test_the_app_sets_its_cookies_as_the_script_expects(client, compare_page):
    """wrk's Lua sees the last Set-Cookie of a response only: a submit sets one; a page GET deletes the
    messages cookie, then renews the CSRF cookie with its value, and shows the messages."""
    url, html, uid = compare_page
    answers = {name: values[0] for name, values in radio_groups(html).items()}
    submitted = client.post(reverse("reviews:lease_submit", args=[uid]), answers)
    assert submitted.status_code == 302
    assert list(submitted.cookies) == ["messages"]
    csrf = client.cookies["csrftoken"].value
    following = client.get(url)
    assert list(following.cookies) == ["messages", "csrftoken"]
    assert following.cookies["messages"]["max-age"] == 0
    assert following.cookies["csrftoken"].value == csrf
    assert '<ul class="messages"' in following.content.decode()


def test_the_summary_is_json_the_command_reads(compare_page, tmp_path):
    url, html, _ = compare_page
    _, _ = run_script(tmp_path, url, html, success_cookie())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"duration_us", "requests", "socket_errors", "status_errors", "labelers"}
    assert summary["requests"] >= 2
