"""Admins' API token page: create (the secret is shown once), list, revoke."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from reviews.access import role_required
from reviews.api.forms import TokenForm
from reviews.api.tokens import create_token, revoke_token
from reviews.core.exceptions import DomainError
from reviews.core.roles import Role
from reviews.models import ApiToken


def _page(request, form, *, secret=None, token=None, status=200):
    tokens = ApiToken.objects.select_related("created_by").prefetch_related("campaigns").order_by("-created_at")
    response = render(
        request,
        "reviews/tokens/list.html",
        {"form": form, "tokens": tokens, "secret": secret, "new_token": token},
        status=status,
    )
    if secret:
        # The one response that holds the secret must not be kept by any cache.
        response["Cache-Control"] = "no-store"
    return response


@role_required(Role.ADMIN)
def api_tokens(request):
    """Every token (active and revoked) and the form that creates one."""
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, secret = create_token(form.cleaned_data["name"], form.cleaned_data["campaigns"], user=request.user)
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            return _page(request, TokenForm(), secret=secret, token=token, status=201)
    else:
        messages.error(request, "The token was not created: correct the fields marked below.")
    return _page(request, form, status=400)


@require_POST
@role_required(Role.ADMIN)
def api_token_revoke(request):
    """Revoke a token: every request with it gets 401 from now on."""
    raw = request.POST.get("token", "")
    token = ApiToken.objects.filter(pk=int(raw)).first() if raw.isdigit() else None
    if token is None:
        messages.error(request, "No such token.")
    elif not token.is_active:
        messages.warning(request, f"Token {token.name!r} was already revoked.")
    else:
        revoke_token(token, user=request.user)
        messages.success(request, f"Token {token.name!r} is revoked: its requests now get 401.")
    return redirect("reviews:api_tokens")
