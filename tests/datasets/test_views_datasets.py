"""The datasets and API token pages: admins only, forms that refuse bad input, secrets shown once."""

import hashlib

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from reviews.api.tokens import authenticate, create_token
from reviews.data.importer import import_pool
from reviews.datasets.export import Filters, create_dataset
from reviews.models import ApiToken, DatasetVersion, FeedbackEvent
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dataset_dir(settings, tmp_path):
    settings.REVIEWS_DATASET_DIR = tmp_path / "datasets"


@pytest.fixture
def pool(campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}", tags=["safe" if n % 2 else "unsafe"]) for n in range(4))))
    return campaign


@pytest.fixture
def version(pool):
    return create_dataset(pool, "full", Filters())


@pytest.fixture
def token(pool, admin):
    return create_token("monitor", [pool], user=admin)[0]


def requests(version, token):
    """Every page and action of the area: (method, url, data)."""
    return [
        ("get", reverse("reviews:datasets", args=["demo"]), None),
        ("post", reverse("reviews:datasets", args=["demo"]), {"format": "full"}),
        ("get", reverse("reviews:dataset_download", args=[version.uid]), None),
        ("get", reverse("reviews:api_tokens"), None),
        ("post", reverse("reviews:api_tokens"), {"name": "x", "campaigns": [version.campaign_id]}),
        ("post", reverse("reviews:api_token_revoke"), {"token": token.pk}),
    ]


@pytest.mark.parametrize("persona", ["labeler", "lead", "outsider"])
def test_labelers_leads_and_people_without_a_role_get_403_everywhere(client, request, persona, version, token):
    client.force_login(request.getfixturevalue(persona))
    for method, url, data in requests(version, token):
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert response.status_code == 403, (persona, method, url)
    assert DatasetVersion.objects.count() == 1 and ApiToken.objects.count() == 1
    assert ApiToken.objects.get().is_active


def test_anonymous_visitors_are_sent_to_sign_in(client, version, token):
    for method, url, data in requests(version, token):
        response = getattr(client, method)(url, data) if data else getattr(client, method)(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url


def test_every_route_of_the_area_requires_the_admin_role(version, token):
    from django.urls import resolve

    from reviews.core.roles import Role

    for _, url, _ in requests(version, token):
        assert resolve(url).func.required_role == Role.ADMIN, url


class TestDatasetsPage:
    def test_admins_see_versions_and_the_campaign_links_to_the_page(self, client, admin, version):
        client.force_login(admin)
        page = client.get(reverse("reviews:datasets", args=["demo"])).content.decode()
        assert version.content_hash in page and str(version.uid) in page
        assert reverse("reviews:dataset_download", args=[version.uid]) in page
        assert 'value="unsafe"' in page  # known tags are suggested
        campaign_page = client.get(reverse("reviews:campaign", args=["demo"])).content.decode()
        assert reverse("reviews:datasets", args=["demo"]) in campaign_page

    def test_creating_a_version_records_who_and_the_filters(self, client, admin, pool):
        client.force_login(admin)
        response = client.post(
            reverse("reviews:datasets", args=["demo"]),
            {"format": "full", "tags": "safe, safe", "min_agreement": "", "rubric_version": "1"},
        )
        assert response.status_code == 302 and response.url == reverse("reviews:datasets", args=["demo"])
        version = DatasetVersion.objects.get()
        assert version.created_by == admin and version.format == "full"
        assert version.filters == {
            "rubric_version": 1,
            "adjudicated_only": False,
            "min_agreement": None,
            "tags": ["safe"],
        }
        [message] = get_messages(response.wsgi_request)
        assert version.content_hash in str(message)
        assert FeedbackEvent.objects.filter(action="dataset_created", actor=admin).count() == 1

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ({"format": "full", "min_agreement": "1.5"}, "less than or equal to 1"),
            ({"format": "zip"}, "Select a valid choice"),
            ({"format": "full", "rubric_version": "7"}, "Select a valid choice"),
        ],
    )
    def test_bad_input_re_renders_with_a_message_and_writes_nothing(self, client, admin, pool, data, expected):
        client.force_login(admin)
        response = client.post(reverse("reviews:datasets", args=["demo"]), data)
        assert response.status_code == 200
        assert expected in response.content.decode()
        assert "was not created" in response.content.decode()
        assert not DatasetVersion.objects.exists() and not FeedbackEvent.objects.filter(action="dataset_created")

    def test_a_domain_refusal_is_shown_too(self, client, admin, db):
        from reviews.campaigns.setup import create_campaign

        create_campaign("bare", "No rubric")
        client.force_login(admin)
        response = client.post(reverse("reviews:datasets", args=["bare"]), {"format": "full"})
        assert response.status_code == 200 and "no published rubric" in response.content.decode()
        assert not DatasetVersion.objects.exists()

    def test_the_download_is_the_exact_hashed_bytes(self, client, admin, version):
        client.force_login(admin)
        response = client.get(reverse("reviews:dataset_download", args=[version.uid]))
        data = b"".join(response.streaming_content)
        assert hashlib.sha256(data).hexdigest() == version.content_hash
        assert "attachment" in response["Content-Disposition"] and response["Content-Type"] == "application/jsonl"


class TestTokensPage:
    def test_the_secret_is_shown_once_and_works(self, client, admin, pool):
        client.force_login(admin)
        response = client.post(reverse("reviews:api_tokens"), {"name": "prod monitor", "campaigns": [pool.pk]})
        assert response.status_code == 201 and response["Cache-Control"] == "no-store"
        secret = response.context["secret"]
        assert secret in response.content.decode() and "will not be shown again" in response.content.decode()
        token = ApiToken.objects.get()
        assert authenticate(secret) == token and list(token.campaigns.all()) == [pool]
        assert token.created_by == admin
        page = client.get(reverse("reviews:api_tokens")).content.decode()
        assert "prod monitor" in page and token.prefix in page and secret not in page

    @pytest.mark.parametrize(
        ("data", "expected"), [({"name": "", "campaigns": []}, "This field is required"), ({"name": "x"}, "required")]
    )
    def test_bad_input_creates_no_token(self, client, admin, pool, data, expected):
        client.force_login(admin)
        response = client.post(reverse("reviews:api_tokens"), data)
        assert response.status_code == 400 and expected in response.content.decode()
        assert not ApiToken.objects.exists()

    def test_two_active_tokens_cannot_share_a_name(self, client, admin, token, pool):
        client.force_login(admin)
        response = client.post(reverse("reviews:api_tokens"), {"name": "monitor", "campaigns": [pool.pk]})
        assert response.status_code == 400 and "already named" in response.content.decode()
        assert ApiToken.objects.count() == 1

    def test_revoking_a_token_stops_it(self, client, admin, pool):
        token, secret = create_token("old client", [pool], user=admin)
        client.force_login(admin)
        response = client.post(reverse("reviews:api_token_revoke"), {"token": token.pk})
        assert response.status_code == 302
        token.refresh_from_db()
        assert token.revoked_at is not None and authenticate(secret) is None
        again = client.post(reverse("reviews:api_token_revoke"), {"token": token.pk}, follow=True)
        assert "already revoked" in again.content.decode()
        missing = client.post(reverse("reviews:api_token_revoke"), {"token": "nope"}, follow=True)
        assert "No such token" in missing.content.decode()

    def test_revoke_is_post_only(self, client, admin):
        client.force_login(admin)
        assert client.get(reverse("reviews:api_token_revoke")).status_code == 405

    def test_the_navigation_shows_the_page_to_admins_only(self, client, admin, lead):
        client.force_login(admin)
        assert reverse("reviews:api_tokens") in client.get(reverse("reviews:campaigns")).content.decode()
        client.force_login(lead)
        assert reverse("reviews:api_tokens") not in client.get(reverse("reviews:campaigns")).content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_large_campaigns_are_built_by_the_worker(client, admin, pool, settings, redis_url, tmp_path):
    from reviews.datasets.export import dataset_file
    from tests.processes import manage_run, process_env

    settings.REVIEWS_DATASET_INLINE_ITEMS = 2
    client.force_login(admin)
    response = client.post(reverse("reviews:datasets", args=["demo"]), {"format": "full"}, follow=True)
    assert "background worker is building" in response.content.decode()
    assert not DatasetVersion.objects.exists()
    env = process_env(redis_url, REVIEWS_DATASET_DIR=str(settings.REVIEWS_DATASET_DIR))
    result = manage_run("rqworker", "--burst", "default", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    version = DatasetVersion.objects.get()
    assert version.created_by == admin and version.counts["lines"] == 4
    assert hashlib.sha256(dataset_file(version).read_bytes()).hexdigest() == version.content_hash
    page = client.get(reverse("reviews:datasets", args=["demo"])).content.decode()
    assert version.content_hash in page


def test_a_large_campaign_with_the_queue_down_gets_a_message_and_nothing_is_queued(client, admin, pool, settings):
    settings.REVIEWS_DATASET_INLINE_ITEMS = 2
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}
    client.force_login(admin)
    response = client.post(reverse("reviews:datasets", args=["demo"]), {"format": "full"})
    assert response.status_code == 200 and "background queue is unreachable" in response.content.decode()
    assert not DatasetVersion.objects.exists()


def test_an_empty_dataset_is_created_with_a_warning_that_says_why(client, admin, pool):
    client.force_login(admin)
    response = client.post(reverse("reviews:datasets", args=["demo"]), {"format": "preference"})
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "warning" and "It is empty" in str(message)
    assert DatasetVersion.objects.get().counts["unresolved_left_out"] == 4
