"""bench_queue's floor page: routed only by the dev WSGI entry (reviews.dev.floor), login-required, CSRF-checked."""

import re
from wsgiref.util import setup_testing_defaults

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.urls import Resolver404, resolve, reverse

from reviews.dev.floor_urls import FLOOR_FORM_ID, FLOOR_PATH

LOGIN_REDIRECT = f"/accounts/login/?next={FLOOR_PATH}"


def call_wsgi(application, method: str, path: str) -> tuple[str, dict]:
    """One anonymous request straight through a WSGI application: (status line, headers)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=dict(headers))

    # As Django's test client does: the test's transaction must survive the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = application(environ, start_response)
        b"".join(body)
        body.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"]


@pytest.fixture
def floor_urls(settings):
    """The URLconf the dev entry serves, as the test client's URLconf."""
    settings.ROOT_URLCONF = "reviews.dev.floor_urls"


@pytest.fixture
def csrf_client(client):
    return Client(enforce_csrf_checks=True)


def token_of(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode()).group(1)


def test_the_production_urlconf_has_no_floor(client, labeler):
    with pytest.raises(Resolver404):
        resolve(FLOOR_PATH)
    client.force_login(labeler)
    assert client.get(FLOOR_PATH).status_code == 404


@pytest.mark.django_db
def test_the_production_wsgi_entry_answers_404_and_the_dev_entry_asks_to_sign_in():
    from config.wsgi import application as production
    from reviews.dev.floor import application as dev

    assert call_wsgi(production, "GET", FLOOR_PATH)[0].startswith("404")
    status, headers = call_wsgi(dev, "GET", FLOOR_PATH)
    assert status.startswith("302") and headers["Location"] == LOGIN_REDIRECT
    # Every production route is still there.
    assert call_wsgi(dev, "GET", "/accounts/login/")[0].startswith("200")


def test_the_dev_urlconf_keeps_every_production_route(floor_urls):
    assert resolve("/campaigns/demo/work/").view_name == "reviews:work"
    assert reverse("login") == "/accounts/login/"
    assert reverse("dev_floor") == FLOOR_PATH


def test_the_floor_requires_a_signed_in_user(floor_urls, csrf_client):
    response = csrf_client.get(FLOOR_PATH)
    assert response.status_code == 302 and response["Location"] == LOGIN_REDIRECT


def test_the_floor_renders_a_form_with_a_csrf_token_and_a_radio_group(floor_urls, csrf_client, labeler):
    csrf_client.force_login(labeler)
    response = csrf_client.get(FLOOR_PATH)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<form id="{FLOOR_FORM_ID}" method="post" action="{FLOOR_PATH}">' in html
    assert token_of(response)
    assert html.count('type="radio" name="choice"') == 2


def test_a_post_without_the_csrf_token_is_refused(floor_urls, csrf_client, labeler):
    csrf_client.force_login(labeler)
    csrf_client.get(FLOOR_PATH)  # the CSRF cookie, but no token in the form
    assert csrf_client.post(FLOOR_PATH, {"choice": "a"}).status_code == 403


def test_a_post_with_the_token_redirects_back_to_the_page(floor_urls, csrf_client, labeler):
    csrf_client.force_login(labeler)
    token = token_of(csrf_client.get(FLOOR_PATH))
    response = csrf_client.post(FLOOR_PATH, {"csrfmiddlewaretoken": token, "choice": "a"})
    assert response.status_code == 302 and response["Location"] == FLOOR_PATH


def test_an_anonymous_post_with_a_token_is_sent_to_sign_in(floor_urls, csrf_client):
    # The CSRF check comes first (middleware), then the login requirement.
    token = token_of(csrf_client.get("/accounts/login/"))
    response = csrf_client.post(FLOOR_PATH, {"csrfmiddlewaretoken": token, "choice": "a"})
    assert response.status_code == 302 and response["Location"] == LOGIN_REDIRECT


def test_other_methods_are_not_allowed(floor_urls, client, labeler):
    client.force_login(labeler)
    assert client.put(FLOOR_PATH).status_code == 405
