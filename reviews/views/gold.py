"""Gold items: the list of a campaign's gold items, and a page to set or clear an item's known answers."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from reviews.access import get_campaign_for, role_required
from reviews.core.roles import Role
from reviews.labeling import gold
from reviews.labeling.forms import GoldForm
from reviews.labeling.gold import GoldError
from reviews.labeling.progress import gold_answer_map
from reviews.models import Item


def _item(campaign, external_id: str) -> Item:
    items = Item.objects.select_related("campaign", "prompt", "response_a", "response_b")
    return get_object_or_404(items, campaign=campaign, external_id=external_id)


@role_required(Role.ADMIN)
@require_GET
def gold_list(request, slug):
    """The campaign's gold items with their known answers; find an item by its external id to mark it."""
    campaign = get_campaign_for(request.user, slug)
    query = request.GET.get("item", "").strip()
    if query:
        if Item.objects.filter(campaign=campaign, external_id=query).exists():
            return redirect("reviews:gold_item", campaign.slug, query)
        messages.error(request, f"No item with external id “{query}” in this campaign.")
    rows = [
        {"item": item, "answers": sorted(gold_answer_map(item).items()), "problems": gold.gold_problems(item)}
        for item in gold.gold_items(campaign)
    ]
    context = {"campaign": campaign, "rows": rows, "gold_rate": campaign.settings.gold_rate, "query": query}
    return render(request, "reviews/settings/gold_list.html", context)


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def gold_item(request, slug, external_id):
    """Give an item's known answers with the compare page's questions; saving marks it gold."""
    campaign = get_campaign_for(request.user, slug)
    item = _item(campaign, external_id)
    version = campaign.rubric_version()
    if version is None:
        messages.error(request, "The campaign has no published rubric: publish one before marking gold items.")
        return redirect("reviews:gold_list", campaign.slug)
    form = GoldForm(
        item,
        version,
        request.POST if request.method == "POST" else None,
        gold=item.gold_answers if item.is_gold else None,
    )
    if request.method == "POST" and form.is_valid():
        try:
            gold.mark_gold(item, form.gold_answers(), user=request.user)
        except GoldError as exc:
            for error in exc.errors:
                form.add_error(None, error)
        else:
            count = len(item.gold_answers)
            messages.success(request, f"{item.external_id} is a gold item with {count} known answer(s).")
            return redirect("reviews:gold_list", campaign.slug)
    return _gold_page(request, campaign, item, form, version)


def _gold_page(request, campaign, item, form, version):
    context = {
        "campaign": campaign,
        "item": item,
        "form": form,
        "rubric": form.rubric,
        "version": version,
        "left": form.responses["left"],
        "right": form.responses["right"],
    }
    return render(request, "reviews/settings/gold_item.html", context, status=400 if form.errors else 200)


@role_required(Role.ADMIN)
@require_POST
def gold_unmark(request, slug, external_id):
    campaign = get_campaign_for(request.user, slug)
    item = _item(campaign, external_id)
    was_gold = item.is_gold
    gold.unmark_gold(item, user=request.user)
    if was_gold:
        messages.success(request, f"{item.external_id} is no longer a gold item.")
    else:
        messages.info(request, f"{item.external_id} was not a gold item.")
    return redirect("reviews:gold_list", campaign.slug)
