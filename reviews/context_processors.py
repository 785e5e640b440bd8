from reviews import nav
from reviews.access import user_has_role, user_role
from reviews.core.roles import Role


def role(request):
    """The signed-in user's role, which roles it includes, and the sections it may open."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"role": None, "role_at_least": {}, "nav_links": []}
    current = user_role(user)
    return {
        "role": current,
        "role_at_least": {r.value: user_has_role(user, r) for r in Role},
        "nav_links": nav.main_links(current),
    }
