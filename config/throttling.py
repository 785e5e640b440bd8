"""Login throttling: django-axes' backend, wired in AUTHENTICATION_BACKENDS."""

from axes.backends import AxesStandaloneBackend


class ThrottledLoginBackend(AxesStandaloneBackend):
    """django-axes' lockout check; a call without a request (a script, Django's test client) is not throttled.

    The sign-in page always passes its request, so every password typed into it is counted.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
