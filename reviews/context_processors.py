from reviews.access import user_has_role, user_role
from reviews.roles import Role


def role(request):
    """The signed-in user's role, and which roles it includes, for navigation."""
    user = getattr(request, "user", None)
    if user is None:
        return {"role": None, "role_at_least": {}}
    return {"role": user_role(user), "role_at_least": {r.value: user_has_role(user, r) for r in Role}}
