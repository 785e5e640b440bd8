"""The item browser (leads and admins): a campaign's items with filters, search, sorting, keyset
pages and bulk actions; and one item's whole story."""

import json

from django.contrib import messages
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from reviews import nav
from reviews.access import get_campaign_for, role_required, user_role
from reviews.core.roles import Role
from reviews.data import item_browser, pool_actions
from reviews.data.item_browser import ItemFilter
from reviews.data.pool_actions import BULK_ACTIONS, PoolActionError

MAX_SELECTION = 10_000  # ids posted as a selection; a whole filter has no limit


@role_required(Role.LEAD)
@require_GET
def items(request, slug):
    """A page of the campaign's items under the filter in the query string."""
    campaign = get_campaign_for(request.user, slug)
    f = ItemFilter.from_params(request.GET)
    for error in f.errors:
        messages.error(request, error)
    page = item_browser.page(campaign, f, after=request.GET.get("after"))
    context = {
        "campaign": campaign,
        "filter": f,
        "page": page,
        "statuses": item_browser.STATUSES,
        "sorts": {key: label for key, (label, _, _) in item_browser.SORTS.items()},
        "facets": item_browser.facets(campaign),
        "actions": {key: label for key, (label, _, _) in BULK_ACTIONS.items()},
        "querystring": f.querystring(),
        "next_url": f"?{f.querystring(after=page.next_cursor)}" if page.has_next else "",
        "first_url": f"?{f.querystring()}",
        "is_later_page": bool(request.GET.get("after")),
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
    }
    return render(request, "reviews/items/list.html", context)


def _back(request, campaign):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(reverse("reviews:items", args=[campaign.slug]))


@role_required(Role.LEAD)
@require_POST
def bulk(request, slug):
    """Run a bulk action on the checked items or on every item of the posted filter."""
    campaign = get_campaign_for(request.user, slug)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "").strip()
    if request.POST.get("scope") == "filter":
        f = ItemFilter.from_params(QueryDict(request.POST.get("filter", "")))
        if f.errors:
            messages.error(request, "The filter has errors; nothing was changed: " + " ".join(f.errors))
            return _back(request, campaign)
        ids = item_browser.matching_ids(campaign, f)
        if request.POST.get("confirmed") != "1":
            # A whole filter can be thousands of items: say how many, and act only once confirmed.
            return _confirm(request, campaign, f, action, reason, len(ids))
    else:
        ids, problem = _checked_ids(request.POST.getlist("item"))
        if problem:
            messages.error(request, problem)
            return _back(request, campaign)
    try:
        count = pool_actions.run_bulk(campaign, action, ids, user=request.user, reason=reason)
    except PoolActionError as exc:
        messages.error(request, str(exc))
        return _back(request, campaign)
    skipped = len(ids) - count
    note = f" ({skipped} already in that state, left as they were)" if skipped else ""
    messages.success(request, f"{BULK_ACTIONS[action][0]}: {count} item{'s' if count != 1 else ''} changed{note}.")
    return _back(request, campaign)


def _checked_ids(raw: list[str]) -> tuple[list[int], str]:
    """The checked item ids, or a message saying why the selection is refused."""
    if not all(value.isdigit() for value in raw):
        return [], "The selection is malformed; nothing was changed."
    if not raw:
        return [], "Select at least one item, or choose every item of the filter."
    if len(raw) > MAX_SELECTION:
        return [], f"Select at most {MAX_SELECTION} items, or use the whole filter."
    return [int(value) for value in raw], ""


def _confirm(request, campaign, f: ItemFilter, action: str, reason: str, count: int):
    if action not in BULK_ACTIONS:
        messages.error(request, f"Unknown action {action!r}.")
        return _back(request, campaign)
    context = {
        "campaign": campaign,
        "filter": f,
        "querystring": f.querystring(),
        "action": action,
        "action_label": BULK_ACTIONS[action][0],
        "reason": reason,
        "count": count,
        "next": request.POST.get("next", ""),
    }
    return render(request, "reviews/items/confirm.html", context)


@role_required(Role.LEAD)
@require_GET
def item(request, slug, item_id):
    """One item as the labeler sees it, with its scores, labels, decisions and feedback timeline."""
    campaign = get_campaign_for(request.user, slug)
    story = item_browser.item_story(campaign, item_id)
    if story is None:
        raise Http404("No such item in this campaign.")
    events = [
        {"event": event, "feedback": json.dumps(event.feedback, indent=1, sort_keys=True, ensure_ascii=False)}
        for event in story.events
    ]
    context = {
        "campaign": campaign,
        "story": story,
        "item": story.item,
        "events": events,
        "actions": {key: label for key, (label, _, _) in BULK_ACTIONS.items()},
        # The list's filter to go back to, re-parsed so that only filter values pass through.
        "back": ItemFilter.from_params(QueryDict(request.GET.get("back", ""))).querystring(),
        "campaign_links": nav.campaign_links(user_role(request.user), campaign.slug),
    }
    return render(request, "reviews/items/detail.html", context)
