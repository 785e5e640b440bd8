"""In a real browser: an admin creates an API token, a client ingests with it over HTTP, and the
admin creates a dataset version and downloads the exact hashed bytes."""

import hashlib
import json
import urllib.request

import pytest
from playwright.sync_api import expect

from reviews.campaigns.setup import create_campaign
from reviews.models import DatasetVersion, Item
from tests.conftest import PASSWORD, RUBRIC, pool_line

pytestmark = pytest.mark.browser


def test_an_admin_issues_a_token_a_client_ingests_and_the_admin_exports(
    page, live_server, admin, artifacts, settings, tmp_path, redis_url
):
    settings.REVIEWS_DATASET_DIR = tmp_path / "datasets"
    create_campaign("prod", "Production monitoring", RUBRIC)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("guardrail monitor")
    page.get_by_label("Production monitoring").check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-secret").inner_text()
    expect(page.get_by_text("will not be shown again")).to_be_visible()
    page.screenshot(path=str(artifacts / "datasets-token-created.png"), full_page=True)

    body = json.dumps([pool_line(f"m-{n}") for n in range(3)]).encode()
    request = urllib.request.Request(  # noqa: S310 - the test server
        f"{live_server.url}/api/v1/campaigns/prod/items",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        assert response.status == 201
        assert json.loads(response.read())["counts"]["created"] == 3
    assert Item.objects.filter(campaign__slug="prod").count() == 3

    page.reload()
    expect(page.get_by_text(secret)).to_have_count(0)  # shown once only

    page.goto(f"{live_server.url}/campaigns/prod/")
    page.get_by_role("navigation", name="Campaign").get_by_role("link", name="Datasets").click()
    page.get_by_label("Full JSONL").check()
    page.get_by_role("button", name="Create dataset version").click()
    version = DatasetVersion.objects.get()
    expect(page.get_by_text(version.content_hash).first).to_be_visible()
    page.screenshot(path=str(artifacts / "datasets-list.png"), full_page=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="full.jsonl").click()
    with open(info.value.path(), "rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == version.content_hash
    assert len(data.splitlines()) == 3
