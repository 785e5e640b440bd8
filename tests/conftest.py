"""Personas and small campaigns shared by the tests."""

import io
import json
from pathlib import Path

import pytest

from reviews.campaigns.setup import create_campaign
from reviews.core.roles import Role
from reviews.people.accounts import create_user

pytest_plugins = ["tests.redis_fixtures"]

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct-horse-battery-staple"

RUBRIC = {
    "slug": "test-rubric",
    "title": "Test rubric",
    "guidelines": "Pick the **better** response.",
    "criteria": [
        {"slug": "preference", "kind": "pairwise", "allow_tie": True, "question": "Which is better?"},
        {
            "slug": "compliance",
            "kind": "choice",
            "per_response": True,
            "question": "Does it comply?",
            "options": [
                {"value": "full_compliance", "label": "Full compliance"},
                {"value": "full_refusal", "label": "Full refusal"},
                {"value": "harmful", "label": "Harmful", "risk": True},
            ],
        },
        {"slug": "quality", "kind": "scale", "per_response": True, "min": 1, "max": 7, "question": "Quality?"},
    ],
}


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test saying why."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the real data sets live beside the project, in ../shared/data")
    return path


def pool_line(external_id="item-1", **overrides) -> dict:
    line = {
        "external_id": external_id,
        "prompt_id": f"p-{external_id}",
        "prompt": f"Question {external_id}?",
        "responses": [
            {"key": "a", "model": "model-a", "text": f"Answer A to {external_id}"},
            {"key": "b", "model": "model-b", "text": f"Answer B to {external_id}"},
        ],
        "tags": ["safe"],
    }
    line.update(overrides)
    return line


def jsonl(*lines) -> io.BytesIO:
    """A binary stream of JSON Lines; str lines are written as they are."""
    body = b"".join(
        (ln if isinstance(ln, bytes) else (ln if isinstance(ln, str) else json.dumps(ln)).encode()) + b"\n"
        for ln in lines
    )
    return io.BytesIO(body)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright drives the system Chromium (Playwright cannot download browsers here)."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package to run the browser tests")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def artifacts() -> Path:
    """Where browser tests leave screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True)
def _fresh_immutable_cache():
    """Each test starts with empty caches (the process's immutable rows and fragments, Django's
    cache): on SQLite a rolled-back test's ids are handed out again, to other rows."""
    from django.core.cache import cache

    from reviews.labeling.forms import _QUESTION_HTML
    from reviews.models.campaigns import forget_immutable
    from reviews.templatetags.review_forms import _MEMO

    forget_immutable()
    cache.clear()
    _QUESTION_HTML.clear()
    _MEMO.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def labeler(db):
    return create_user("lena", Role.LABELER, password=PASSWORD)


@pytest.fixture
def lead(db):
    return create_user("leo", Role.LEAD, password=PASSWORD)


@pytest.fixture
def admin(db):
    return create_user("ada", Role.ADMIN, password=PASSWORD)


@pytest.fixture
def outsider(db):
    """Signed up, but holding no role."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("otto", password=PASSWORD)


@pytest.fixture
def campaign(db, labeler, lead):
    """A campaign with the test rubric; the `labeler` and `lead` personas are members."""
    campaign = create_campaign("demo", "Demo campaign", RUBRIC)
    join(campaign, labeler, lead)
    return campaign


def join(campaign, *users):
    """Make users active members of a campaign (labelers only see campaigns they belong to).

    Test setup, not a human action: rows are written directly, without a MEMBERSHIP_CHANGED
    event, so that tests counting events see only their own (reviews.people.membership records them).
    """
    from reviews.models import Membership

    for user in users:
        Membership.objects.update_or_create(campaign=campaign, user=user, defaults={"active": True})
    return users
