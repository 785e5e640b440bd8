"""People (admins): users, roles, activation, and each labeler's recent work and quality."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from reviews.access import role_required
from reviews.core.roles import Role
from reviews.people import directory as people_domain
from reviews.people.directory import PeopleError
from reviews.people.forms import ROLE_CHOICES, PersonForm


def _dashboard_url(campaign) -> str | None:
    """The monitoring page of a campaign, once that area routes it."""
    try:
        return reverse("reviews:dashboard", args=[campaign.slug])
    except NoReverseMatch:
        return None


def _page(request, form, status=200):
    rows = people_domain.people_rows()
    for row in rows:
        row.links = [{"campaign": c, "dashboard": _dashboard_url(c)} for c in row.campaigns]
    context = {
        "rows": rows,
        "form": form,
        "roles": ROLE_CHOICES,
        "recent_days": people_domain.RECENT_DAYS,
        "history": people_domain.account_history(),
    }
    return render(request, "reviews/people/list.html", context, status=status)


@role_required(Role.ADMIN)
@require_GET
def people(request):
    """Every user with their role, campaigns, throughput, agreement and gold accuracy."""
    return _page(request, PersonForm())


@role_required(Role.ADMIN)
@require_POST
def person_create(request):
    form = PersonForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            user = people_domain.create_person(
                data["username"],
                Role(data["role"]),
                password=data["password"],
                email=data["email"],
                campaigns=list(data["campaigns"]),
                by=request.user,
            )
        except PeopleError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"User {user.username} created.")
            return redirect("reviews:people")
    return _page(request, form, status=400)


def _person(username):
    return get_object_or_404(get_user_model(), username=username)


@role_required(Role.ADMIN)
@require_POST
def person_role(request, username):
    user = _person(username)
    value = request.POST.get("role", "")
    if value not in Role.values:
        messages.error(request, f"Unknown role {value!r}; nothing was changed.")
        return redirect("reviews:people")
    try:
        changed = people_domain.change_role(user, Role(value), by=request.user)
    except PeopleError as exc:
        messages.error(request, str(exc))
    else:
        if changed:
            messages.success(request, f"{user.username} is now {Role(value).label.lower()}.")
    return redirect("reviews:people")


@role_required(Role.ADMIN)
@require_POST
def person_active(request, username):
    user = _person(username)
    active = request.POST.get("active") == "1"
    try:
        changed = people_domain.set_active(user, active, by=request.user)
    except PeopleError as exc:
        messages.error(request, str(exc))
    else:
        if changed:
            messages.success(request, f"{user.username} {'re-activated' if active else 'deactivated'}.")
    return redirect("reviews:people")
