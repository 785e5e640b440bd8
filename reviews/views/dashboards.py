"""Dashboards for leads and admins: pages render the newest stored report (a MetricSnapshot);
the overview's live counts are computed per request. Every table downloads as CSV or JSON."""

from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from reviews import nav
from reviews.access import get_campaign_for, role_required, user_role
from reviews.campaigns.status import ALL_TAGS
from reviews.core.roles import Role
from reviews.models import Campaign, MetricSnapshot
from reviews.monitoring import figures, snapshots
from reviews.monitoring.tables import PAGES, series_table, slice_charts, tables_for


@role_required(Role.LEAD)
def dashboards(request):
    """Pick a campaign."""
    reports = MetricSnapshot.objects.filter(campaign=OuterRef("pk"), name=snapshots.REPORT, slice="")
    campaigns = Campaign.objects.annotate(
        last_snapshot=Subquery(reports.order_by("-computed_at").values("computed_at")[:1])
    ).order_by("-created_at", "slug")
    return render(request, "reviews/dashboards/index.html", {"campaigns": campaigns})


def _report(campaign, page: str) -> tuple[dict, MetricSnapshot]:
    snapshot = snapshots.report_for(campaign)
    report = snapshot.data
    if page == "overview":
        report = {**report, "overview": figures.overview(campaign)}
    return report, snapshot


def _tag(request, report) -> str | None:
    tag = request.GET.get("tag") or None
    if tag is None:
        return None
    known = {t for by_model in report["slice_counts"].values() for by_tag in by_model.values() for t in by_tag}
    if tag not in known:
        messages.warning(request, f"No final answers carry the tag {tag!r}; showing every tag.")
        return None
    return tag


def _context(request, campaign, page, snapshot, **extra):
    return {
        "campaign": campaign,
        "page": page,
        "page_title": PAGES[page],
        "pages": [(key, title) for key, title in PAGES.items()],
        "snapshot": snapshot,
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
        **extra,
    }


@role_required(Role.LEAD)
def dashboard(request, slug):
    """The overview: queue depth, budget burn, throughput, escalations, last rescoring run."""
    return _page(request, slug, "overview")


@role_required(Role.LEAD)
def dashboard_page(request, slug, page):
    """Quality, safety slices, automated labelers, leaderboard or scoring."""
    if page not in PAGES or page in ("overview", "series"):
        raise Http404("no such dashboard")
    return _page(request, slug, page)


def _page(request, slug, page):
    campaign = get_campaign_for(request.user, slug)
    report, snapshot = _report(campaign, page)
    tag = _tag(request, report) if page == "slices" else None
    context = _context(
        request,
        campaign,
        page,
        snapshot,
        report=report,
        tables=tables_for(page, report, tag=tag),
        tag=tag,
        query=f"?tag={tag}" if tag else "",
    )
    if page == "slices":
        context["tags"] = sorted(
            {t for by_model in report["slice_counts"].values() for by_tag in by_model.values() for t in by_tag}
        )
        chart_tag = tag or ("safe" if _has_tag(report, "safe") else ALL_TAGS)
        context["chart_tag"] = chart_tag
        context["slice_charts"] = slice_charts(report, chart_tag)
    return render(request, f"reviews/dashboards/{page}.html", context)


def _has_tag(report, tag) -> bool:
    return any(tag in by_tag for by_model in report["slice_counts"].values() for by_tag in by_model.values())


@role_required(Role.LEAD)
def dashboard_series(request, slug):
    """Each metric over time from its snapshots."""
    campaign = get_campaign_for(request.user, slug)
    snapshot = snapshots.latest_report(campaign)
    index = snapshots.series_index(campaign)
    name, slice_ = request.GET.get("name", ""), request.GET.get("slice", "")
    if not name and index:
        name, slice_ = index[0]["name"], index[0]["slice"]
    if name and not any(s["name"] == name and s["slice"] == slice_ for s in index):
        messages.warning(request, f"No stored series {name} {slice_}.")
        name = ""
    table = series_table(name, slice_, snapshots.series(campaign, name, slice_)) if name else None
    context = _context(
        request,
        campaign,
        "series",
        snapshot,
        index=index,
        name=name,
        slice=slice_,
        tables=[table] if table else [],
        query="?" + urlencode({"name": name, "slice": slice_}),
    )
    return render(request, "reviews/dashboards/series.html", context)


@role_required(Role.LEAD)
def dashboard_download(request, slug, page, table, fmt):
    """One table of a page as CSV or JSON, with the page's numbers unrounded."""
    campaign = get_campaign_for(request.user, slug)
    if page == "series":
        name, slice_ = request.GET.get("name", ""), request.GET.get("slice", "")
        tables = [series_table(name, slice_, snapshots.series(campaign, name, slice_))]
    elif page in PAGES:
        report, _ = _report(campaign, page)
        tag = request.GET.get("tag") or None
        tables = tables_for(page, report, tag=tag)
    else:
        raise Http404("no such dashboard")
    found = next((t for t in tables if t.name == table), None)
    if found is None or fmt not in ("csv", "json"):
        raise Http404("no such table")
    filename = f"{campaign.slug}-{page}-{found.name}.{fmt}"
    if fmt == "json":
        response = JsonResponse(found.as_json(), json_dumps_params={"indent": 1})
    else:
        response = HttpResponse(found.as_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@role_required(Role.LEAD)
def dashboard_snapshot(request, slug):
    """The 'Recompute now' button: queue a snapshot of the campaign's figures for a worker."""
    campaign = get_campaign_for(request.user, slug)
    outcome, message = snapshots.request_snapshot(campaign)
    level = messages.WARNING if outcome == "unavailable" else messages.SUCCESS
    messages.add_message(request, level, message[:1].upper() + message[1:] + ".")
    back = request.POST.get("next", "")
    if not back.startswith(f"/dashboards/{campaign.slug}/"):
        back = reverse("reviews:dashboard", args=[campaign.slug])
    return redirect(back)
