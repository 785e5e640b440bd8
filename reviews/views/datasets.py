"""Admins' dataset pages: a campaign's dataset versions, the form that creates one, downloads."""

from django.contrib import messages
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render

from reviews import nav
from reviews.access import get_campaign_for, role_required, user_role
from reviews.campaigns.status import response_tags
from reviews.core.exceptions import DomainError
from reviews.core.roles import Role
from reviews.datasets.export import DatasetUnavailable, dataset_file, download_name, request_dataset
from reviews.datasets.forms import DatasetForm
from reviews.models import DatasetVersion


def _published_numbers(campaign) -> list[int]:
    if campaign.rubric_id is None:
        return []
    return list(
        campaign.rubric.versions.filter(published_at__isnull=False).order_by("-number").values_list("number", flat=True)
    )


@role_required(Role.ADMIN)
def datasets(request, slug):
    """The campaign's dataset versions, newest first, and the form that creates the next one."""
    campaign = get_campaign_for(request.user, slug)
    form = DatasetForm(request.POST or None, rubric_versions=_published_numbers(campaign))
    if request.method == "POST" and form.is_valid():
        try:
            version = request_dataset(campaign, form.cleaned_data["format"], form.filters(), user=request.user)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            _report_created(request, version)
            return redirect("reviews:datasets", slug=campaign.slug)
    elif request.method == "POST":
        messages.error(request, "The dataset was not created: correct the fields marked below.")
    context = {
        "campaign": campaign,
        "form": form,
        "versions": _versions(campaign),
        "known_tags": sorted(set().union(*response_tags(campaign).values())) if request.method == "GET" else [],
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
    }
    return render(request, "reviews/datasets/list.html", context)


def _report_created(request, version) -> None:
    if version is None:
        messages.info(
            request,
            "The campaign is large: the background worker is building this dataset version. "
            "It is listed here once done; refresh in a minute.",
        )
        return
    lines = version.counts.get("lines", 0)
    messages.add_message(
        request,
        messages.SUCCESS if lines else messages.WARNING,
        f"Dataset {version.uid} created: {lines} lines, SHA-256 {version.content_hash}."
        + ("" if lines else " It is empty: no item passed the filters with a decided answer (see counts)."),
    )


def _versions(campaign) -> list:
    versions = list(campaign.dataset_versions.select_related("created_by").order_by("-created_at", "-id"))
    for version in versions:
        # A count is named "items", which a template would take for dict.items.
        version.count_rows = [
            (name.replace("_", " "), n) for name, n in version.counts.items() if n or name in ("items", "lines")
        ]
    return versions


@role_required(Role.ADMIN)
def dataset_download(request, uid):
    """The exact bytes whose SHA-256 is the version's content hash."""
    version = get_object_or_404(DatasetVersion.objects.select_related("campaign"), uid=uid)
    try:
        path = dataset_file(version)
    except DatasetUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("reviews:datasets", slug=version.campaign.slug)
    response = FileResponse(
        open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
        as_attachment=True,
        filename=download_name(version),
        content_type="application/jsonl",
    )
    response["X-Content-SHA256"] = version.content_hash
    return response
