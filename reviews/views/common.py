from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from reviews.roles import Role, role_of


@login_required
def home(request):
    """Send each role to its work."""
    role = role_of(request.user)
    if role is None:
        return render(request, "reviews/no_role.html", status=403)
    return redirect("reviews:campaigns")
