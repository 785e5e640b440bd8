"""The JSON API: bearer tokens, ingest (idempotent, all or nothing), limits, and its OpenAPI document."""

import hashlib
import json

import orjson
import pytest
import redis
from django.urls import reverse
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec

from reviews.api.schema import openapi_document
from reviews.api.tokens import create_token, revoke_token
from reviews.campaigns.setup import create_campaign
from reviews.datasets.export import Filters, create_dataset
from reviews.models import ApiToken, FeedbackEvent, Item
from tests.conftest import RUBRIC, pool_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def api_redis(redis_url):
    """The rate limiter's Redis, empty for every test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def dataset_dir(settings, tmp_path):
    settings.REVIEWS_DATASET_DIR = tmp_path / "datasets"


@pytest.fixture
def secret(campaign, admin):
    return create_token("monitoring", [campaign], user=admin)[1]


def spec():
    return openapi_document()


def check(response, path: str, method: str = "get") -> None:
    """The response's status, content type, headers and body are as the OpenAPI document says."""
    document = spec()
    operation = document["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path}: status {response.status_code} is not documented"
    for header in documented.get("headers", {}):
        assert header in response, f"header {header} missing"
    content = documented.get("content", {})
    media_type = response["Content-Type"].split(";")[0]
    assert media_type in content, f"{media_type} not documented for {response.status_code}"
    schema = content[media_type].get("schema")
    if media_type == "application/json" and schema:
        OAS31Validator({**schema, "components": document["components"]}).validate(response.json())


def post_items(client, slug, body, token=None, content_type="application/json"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(f"/api/v1/campaigns/{slug}/items", data=data, content_type=content_type, **headers)


def get(client, url, token):
    return client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def nothing_written():
    return not Item.objects.exists() and not FeedbackEvent.objects.filter(action__in=["imported", "ingested"]).exists()


ITEMS_PATH = "/campaigns/{slug}/items"


def test_the_schema_is_a_valid_openapi_document_served_without_a_token(client):
    validate_spec(spec())
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(spec()))
    check(response, "/schema")


class TestAuthentication:
    def test_a_missing_token_gets_401_and_writes_nothing(self, client, campaign):
        response = post_items(client, "demo", [pool_line("a")])
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        check(response, ITEMS_PATH, "post")
        assert nothing_written()

    def test_a_wrong_token_gets_401(self, client, campaign, secret):
        response = post_items(client, "demo", [pool_line("a")], token=secret + "x")
        assert response.status_code == 401
        check(response, ITEMS_PATH, "post")
        assert nothing_written()

    def test_a_revoked_token_gets_401(self, client, campaign, secret, admin):
        revoke_token(ApiToken.objects.get(), user=admin)
        response = post_items(client, "demo", [pool_line("a")], token=secret)
        assert response.status_code == 401 and "revoked" in response.json()["error"]
        assert nothing_written()

    def test_a_signed_in_session_is_not_a_token(self, client, campaign, admin):
        client.force_login(admin)
        assert post_items(client, "demo", [pool_line("a")]).status_code == 401
        assert client.get("/api/v1/campaigns/demo").status_code == 401
        assert nothing_written()

    def test_a_campaign_the_token_is_not_granted_gets_403(self, client, campaign, secret):
        create_campaign("other", "Other", RUBRIC)
        for slug in ("other", "no-such-campaign"):
            response = post_items(client, slug, [pool_line("a")], token=secret)
            assert response.status_code == 403
            check(response, ITEMS_PATH, "post")
        assert get(client, "/api/v1/campaigns/other", secret).status_code == 403
        assert nothing_written()

    def test_only_the_hash_of_the_secret_is_stored(self, campaign, secret):
        token = ApiToken.objects.get()
        assert token.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in (token.key_hash, token.prefix) and secret.startswith(token.prefix)

    def test_wrong_methods_get_405(self, client, campaign, secret):
        response = get(client, "/api/v1/campaigns/demo/items", secret)
        assert response.status_code == 405 and response["Allow"] == "POST"
        check(response, ITEMS_PATH, "post")


class TestIngest:
    def test_a_json_list_is_imported_with_per_item_results(self, client, campaign, secret):
        body = [pool_line("a"), pool_line("b", tags=["unsafe"])]
        response = post_items(client, "demo", body, token=secret)
        assert response.status_code == 201, response.content
        check(response, ITEMS_PATH, "post")
        data = response.json()
        assert data["counts"]["created"] == 2 and data["status"] == "imported"
        assert [(i["line"], i["external_id"], i["status"]) for i in data["items"]] == [
            (1, "a", "created"),
            (2, "b", "created"),
        ]
        assert set(Item.objects.values_list("external_id", flat=True)) == {"a", "b"}
        event = FeedbackEvent.objects.get(action=FeedbackEvent.Action.INGESTED)
        assert event.item is None and event.feedback["token"] == "monitoring" and event.feedback["created"] == 2
        assert ApiToken.objects.get().last_used_at is not None

    def test_the_same_body_posted_twice_creates_nothing_the_second_time(self, client, campaign, secret):
        body = [pool_line("a"), pool_line("b")]
        assert post_items(client, "demo", body, token=secret).status_code == 201
        again = post_items(client, "demo", body, token=secret)
        assert again.status_code == 200
        check(again, ITEMS_PATH, "post")
        assert again.json()["counts"] | {} == {
            "lines": 2,
            "created": 0,
            "skipped": 2,
            "conflicts": 0,
            "labels": 0,
            "error_count": 0,
        }
        assert {i["status"] for i in again.json()["items"]} == {"skipped"}
        assert Item.objects.count() == 2

    def test_json_lines_bodies_are_accepted(self, client, campaign, secret):
        body = b"".join(orjson.dumps(pool_line(x)) + b"\n" for x in ("a", "b", "c"))
        response = post_items(client, "demo", body, token=secret, content_type="application/x-ndjson")
        assert response.status_code == 201 and response.json()["counts"]["created"] == 3
        check(response, ITEMS_PATH, "post")
        # The same items as a JSON list: skipped, whatever the framing.
        again = post_items(client, "demo", [pool_line(x) for x in ("a", "b", "c")], token=secret)
        assert again.json()["counts"]["skipped"] == 3

    def test_malformed_items_get_per_item_errors_and_nothing_is_written(self, client, campaign, secret):
        body = b"\n".join(
            [
                orjson.dumps(pool_line("good")),
                orjson.dumps({**pool_line("no-prompt"), "prompt": ""}),
                b"{not json",
                orjson.dumps(pool_line("three", responses=[{"key": "a", "model": "m", "text": "t"}])),
            ]
        )
        response = post_items(client, "demo", body, token=secret, content_type="application/jsonl")
        assert response.status_code == 422
        check(response, ITEMS_PATH, "post")
        items = {i["line"]: i for i in response.json()["items"]}
        assert items[1]["status"] == "not_written"
        assert items[2]["status"] == "error" and items[2]["errors"] == ["prompt: must not be empty"]
        assert items[3]["status"] == "error" and "invalid JSON" in items[3]["errors"][0]
        assert items[4]["errors"] == ["responses: expected exactly 2, got 1"]
        assert response.json()["counts"]["created"] == 0
        assert nothing_written()

    def test_a_changed_item_under_a_known_external_id_is_a_conflict(self, client, campaign, secret):
        assert post_items(client, "demo", [pool_line("a")], token=secret).status_code == 201
        changed = pool_line("a", tags=["unsafe"])
        response = post_items(client, "demo", [pool_line("new"), changed], token=secret)
        assert response.status_code == 422
        [entry] = [i for i in response.json()["items"] if i["status"] == "error"]
        assert entry["external_id"] == "a" and "conflict" in entry["errors"][0]
        assert not Item.objects.filter(external_id="new").exists()

    @pytest.mark.parametrize(
        ("body", "content_type", "status"),
        [
            (b"{oops", "application/json", 400),
            (b'{"external_id": "a"}', "application/json", 400),
            (b"[]", "application/json", 422),
            (b"external_id,prompt", "text/csv", 415),
        ],
    )
    def test_unreadable_bodies_are_refused_whole(self, client, campaign, secret, body, content_type, status):
        response = post_items(client, "demo", body, token=secret, content_type=content_type)
        assert response.status_code == status
        check(response, ITEMS_PATH, "post")
        assert nothing_written()

    def test_an_oversized_body_gets_413_and_writes_nothing(self, client, campaign, secret, settings):
        settings.API_MAX_BODY_BYTES = 2000
        body = [pool_line(f"i{n}") for n in range(20)]
        response = post_items(client, "demo", body, token=secret)
        assert response.status_code == 413 and "2000 bytes" in response.json()["error"]
        check(response, ITEMS_PATH, "post")
        assert nothing_written()

    def test_bodies_over_djangos_form_upload_limit_are_fine_below_ours(self, client, campaign, secret, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = post_items(client, "demo", [pool_line(f"i{n}") for n in range(20)], token=secret)
        assert response.status_code == 201 and response.json()["counts"]["created"] == 20

    def test_over_the_rate_limit_gets_429_with_retry_after(self, client, campaign, secret, settings, admin):
        settings.API_RATE_LIMIT = 2
        for _ in range(2):
            assert get(client, "/api/v1/campaigns/demo", secret).status_code == 200
        response = post_items(client, "demo", [pool_line("a")], token=secret)
        assert response.status_code == 429
        check(response, ITEMS_PATH, "post")
        assert 1 <= int(response["Retry-After"]) <= settings.API_RATE_WINDOW_SECONDS
        assert nothing_written()
        # The limit is per token.
        other = create_token("other client", [campaign], user=admin)[1]
        assert get(client, "/api/v1/campaigns/demo", other).status_code == 200

    @pytest.mark.slow
    def test_ten_thousand_items_in_one_request(self, client, campaign, secret):
        meta = {"source": "production monitoring", "trace": "t" * 64}
        body = b"".join(orjson.dumps(pool_line(f"bulk-{n}", metadata=meta)) + b"\n" for n in range(10_000))
        assert len(body) > 2.5 * 1024 * 1024  # over Django's default DATA_UPLOAD_MAX_MEMORY_SIZE
        response = post_items(client, "demo", body, token=secret, content_type="application/x-ndjson")
        assert response.status_code == 201
        assert response.json()["counts"]["created"] == 10_000
        assert len(response.json()["items"]) == 10_000
        assert Item.objects.filter(campaign=campaign).count() == 10_000


class TestReading:
    def test_campaign_status(self, client, campaign, secret):
        post_items(client, "demo", [pool_line("a")], token=secret)
        response = get(client, "/api/v1/campaigns/demo", secret)
        assert response.status_code == 200 and response.json()["items"] == 1
        check(response, "/campaigns/{slug}")

    def test_dataset_metadata_and_the_exact_bytes(self, client, campaign, secret, admin):
        post_items(client, "demo", [pool_line("a"), pool_line("b")], token=secret)
        version = create_dataset(campaign, "full", Filters(), user=admin)
        response = get(client, f"/api/v1/datasets/{version.uid}", secret)
        assert response.status_code == 200
        check(response, "/datasets/{uid}")
        meta = response.json()
        assert (meta["content_hash"], meta["created_by"], meta["counts"]["lines"]) == (version.content_hash, "ada", 2)
        download = get(client, meta["download"], secret)
        assert download.status_code == 200
        check(download, "/datasets/{uid}/download")
        data = b"".join(download.streaming_content)
        assert hashlib.sha256(data).hexdigest() == version.content_hash == download["X-Content-SHA256"]
        listing = get(client, "/api/v1/campaigns/demo/datasets", secret)
        check(listing, "/campaigns/{slug}/datasets")
        assert [d["uid"] for d in listing.json()["datasets"]] == [str(version.uid)]

    def test_datasets_of_campaigns_not_granted_are_not_found(self, client, campaign, admin):
        other = create_campaign("other", "Other", RUBRIC)
        secret = create_token("other only", [other], user=admin)[1]
        version = create_dataset(campaign, "full", Filters(), user=admin)
        for url in (f"/api/v1/datasets/{version.uid}", f"/api/v1/datasets/{version.uid}/download"):
            response = get(client, url, secret)
            assert response.status_code == 404
        check(response, "/datasets/{uid}/download")

    def test_the_routes_are_named(self):
        assert reverse("api:campaign_items", args=["demo"]) == "/api/v1/campaigns/demo/items"


@pytest.mark.django_db(transaction=True)
def test_two_clients_posting_the_same_items_at_once_create_them_once(campaign, admin):
    import threading

    from django.db import connection

    from reviews.api.ingest import ingest

    tokens = [create_token(f"client {n}", [campaign], user=admin)[0] for n in range(2)]
    body = json.dumps([pool_line(f"race-{n}") for n in range(50)]).encode()
    barrier = threading.Barrier(2)
    results = []

    def post(token):
        try:
            barrier.wait()
            results.append(ingest(campaign, body, "application/json", token=token))
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results)
    assert sorted(r.counts["created"] for r in results) == [0, 50]
    statuses = sorted({i["status"] for i in r.items}.pop() for r in results)
    assert statuses == ["created", "skipped"]
    assert Item.objects.count() == 50
