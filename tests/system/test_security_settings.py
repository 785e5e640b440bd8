"""Security plumbing on every route: headers (CSP, framing), login throttling, body size limits, secrets out of logs."""

import io
import logging
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from config.redaction import REDACTED, RedactSecretsFilter, redact
from config.security import content_security_policy
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


# -- headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["anonymous", "labeler", "admin"])
def test_every_page_carries_a_csp_without_inline_script_and_refuses_framing(client, request, persona, campaign):
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    url = "/accounts/login/" if persona == "anonymous" else reverse("reviews:campaign", args=[campaign.slug])
    response = client.get(url)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    if persona != "anonymous":
        assert response["Cache-Control"] == "private, no-store"


def test_the_policy_applies_to_errors_and_the_support_admin_too(client, admin):
    client.force_login(admin)
    assert client.get("/no-such-page/")["Content-Security-Policy"] == content_security_policy()
    assert client.get("/admin/login/")["Content-Security-Policy"] == content_security_policy()


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.I)


def test_no_template_has_inline_script_style_or_event_handlers():
    """The CSP would block them: scripts and styles are static files, behaviour is attached by the scripts."""
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        for name, pattern in [
            ("inline <script>", INLINE_SCRIPT),
            ("inline style", INLINE_STYLE),
            ("on* handler", EVENT_HANDLER),
            ("javascript: URL", JS_URL),
        ]:
            if pattern.search(text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, "move these to static files:\n" + "\n".join(offenders)


# -- login throttling ----------------------------------------------------------------------


def _sign_in(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_repeated_wrong_passwords_lock_that_account_out_from_that_address(client, labeler, lead):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = _sign_in(client, "lena", "wrong-password")
        assert response.status_code == 200  # the login page again, with its error
    response = _sign_in(client, "lena", "wrong-password")
    assert response.status_code == 429
    assert "Sign-in paused" in response.content.decode()
    # Even the right password is refused while the lockout lasts ...
    response = _sign_in(client, "lena", PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # ... while another account from the same address still signs in.
    response = _sign_in(client, "leo", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(lead.pk)


def test_a_successful_sign_in_resets_the_count(client, labeler):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, "lena", "wrong-password")
    assert _sign_in(client, "lena", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, "lena", "wrong-password").status_code == 200
    assert _sign_in(client, "lena", PASSWORD).status_code == 302


def test_the_lockout_is_stored_in_the_database_so_every_web_process_sees_it(client, labeler):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "lena", "wrong-password")
    attempt = AccessAttempt.objects.get(username="lena")
    assert attempt.failures_since_start == settings.AXES_FAILURE_LIMIT
    assert "wrong-password" not in str(attempt.post_data)


# -- body size ------------------------------------------------------------------------------


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(client, labeler, settings):
    settings.REVIEWS_MAX_REQUEST_BYTES = 1000
    client.force_login(labeler)
    response = client.post("/history/", data=b"x" * 1001, content_type="application/octet-stream")
    assert response.status_code == 413
    assert "limit is 1000 bytes" in response.content.decode()


def test_the_request_limit_leaves_room_for_a_pool_import():
    """A pool of 10,000 items with 1 MB responses fits twice over; forms stay small."""
    assert settings.REVIEWS_MAX_REQUEST_BYTES >= 512 * 1024 * 1024
    assert settings.REVIEWS_MAX_REQUEST_BYTES >= settings.REVIEWS_IMPORT_MAX_LINE_BYTES
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024


# -- logs -----------------------------------------------------------------------------------


def test_known_secrets_and_secret_looking_values_are_redacted(settings):
    settings.SECRET_KEY = "s3cr3t-key-value-0123456789"
    text = (
        f"key {settings.SECRET_KEY}; Authorization: Bearer rdk_abcdef0123456789; "
        "POST password=hunter22&username=lena; postgres://desk:pa55word@db:5432/desk"
    )
    cleaned = redact(text)
    for secret in ("s3cr3t-key-value-0123456789", "rdk_abcdef0123456789", "hunter22", "pa55word"):
        assert secret not in cleaned
    assert "username=lena" in cleaned
    assert cleaned.count(REDACTED) == 4


def test_the_logging_configuration_filters_every_record_including_tracebacks(settings):
    settings.SECRET_KEY = "another-secret-key-98765"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecretsFilter())
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        logger.warning("token=%s for %s", "tok_1234567890abcdef", "lena")
        try:
            raise RuntimeError(f"connect failed with {settings.SECRET_KEY}")
        except RuntimeError:
            logger.exception("while connecting")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "tok_1234567890abcdef" not in output
    assert "another-secret-key-98765" not in output
    assert "for lena" in output and "RuntimeError" in output
    # The project's handlers all carry the filter.
    for name, handler_config in settings.LOGGING["handlers"].items():
        assert "redact_secrets" in handler_config.get("filters", []), name
