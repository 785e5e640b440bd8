"""The JSON API (/api/v1/): ingest, campaign status, dataset versions, and its OpenAPI document."""

from django.conf import settings
from django.http import FileResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from reviews.api.auth import api_view, error
from reviews.api.ingest import BodyError, ingest
from reviews.api.schema import openapi_document
from reviews.api.tokens import grants, mark_used
from reviews.campaigns.status import campaign_status
from reviews.datasets.export import DatasetUnavailable, dataset_file, dataset_metadata, download_name
from reviews.models import Campaign, DatasetVersion


def _campaign_for(token, slug):
    """(campaign, None) when the token may act on it, else (None, error response)."""
    campaign = Campaign.objects.select_related("rubric").filter(slug=slug).first()
    # An unknown campaign gets the same answer as one not granted: tokens cannot probe for slugs.
    if campaign is None or not grants(token, campaign):
        return None, error(403, f"this token is not granted campaign {slug!r}")
    return campaign, None


def _read_body(request) -> bytes | JsonResponse:
    """The body up to API_MAX_BODY_BYTES, or a 413; read from the stream, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE (meant for form posts) does not apply."""
    limit = settings.API_MAX_BODY_BYTES
    too_big = error(413, f"the body is larger than the limit of {limit} bytes; send fewer items per request")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "invalid Content-Length")
    if declared > limit:
        return too_big
    body = request.read(limit + 1)
    if len(body) > limit:
        return too_big
    return body


def _dataset_url(version) -> str:
    return reverse("api:dataset_download", args=[version.uid])


@api_view("POST")
def campaign_items(request, token, slug):
    """POST a JSON list or JSON Lines of pool items: all written, or none with per-item errors."""
    campaign, denied = _campaign_for(token, slug)
    if denied:
        return denied
    body = _read_body(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        result = ingest(campaign, body, request.content_type, token=token)
    except BodyError as exc:
        return error(exc.status, str(exc))
    if not result.ok:
        return JsonResponse(result.payload(campaign), status=422)
    mark_used(token)
    return JsonResponse(result.payload(campaign), status=201 if result.counts["created"] else 200)


@api_view("GET")
def campaign_detail(request, token, slug):
    """A campaign's figures, as `campaign_status --json` prints them."""
    campaign, denied = _campaign_for(token, slug)
    if denied:
        return denied
    mark_used(token)
    return JsonResponse(campaign_status(campaign))


@api_view("GET")
def campaign_datasets(request, token, slug):
    """The campaign's dataset versions, newest first."""
    campaign, denied = _campaign_for(token, slug)
    if denied:
        return denied
    versions = campaign.dataset_versions.select_related("campaign", "created_by").order_by("-created_at", "-id")
    mark_used(token)
    return JsonResponse(
        {"datasets": [{**dataset_metadata(v), "download": _dataset_url(v)} for v in versions]},
    )


def _version_for(token, uid):
    version = DatasetVersion.objects.select_related("campaign", "created_by").filter(uid=uid).first()
    if version is None or not grants(token, version.campaign):
        return None, error(404, f"no dataset version {uid} that this token may read")
    return version, None


@api_view("GET")
def dataset_detail(request, token, uid):
    """A dataset version's metadata: hash, who, when, filters, counts."""
    version, missing = _version_for(token, uid)
    if missing:
        return missing
    mark_used(token)
    return JsonResponse({**dataset_metadata(version), "download": _dataset_url(version)})


@api_view("GET")
def dataset_download(request, token, uid):
    """The exact bytes whose SHA-256 is the version's content hash."""
    version, missing = _version_for(token, uid)
    if missing:
        return missing
    try:
        path = dataset_file(version)
    except DatasetUnavailable as exc:
        return error(410, str(exc))
    mark_used(token)
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=download_name(version),
        content_type="application/jsonl",
    )
    response["ETag"] = f'"{version.content_hash}"'
    response["X-Content-SHA256"] = version.content_hash
    return response


@csrf_exempt
@require_GET
def schema(request):
    """The OpenAPI 3.1 description of this API (public: it holds no data)."""
    return JsonResponse(openapi_document())
