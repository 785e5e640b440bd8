from reviews.roles import role_of


def role(request):
    """The signed-in user's role, for navigation."""
    return {"role": role_of(request.user) if hasattr(request, "user") else None}
