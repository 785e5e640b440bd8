"""Security middleware: response headers and request size limits.

Both apply to every route, so a page added later is covered without doing anything.
"""

from django.conf import settings
from django.http import HttpResponse


def content_security_policy() -> str:
    """The policy: our own static files only; no inline script or style, no plugins, no framing, no foreign forms."""
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        # No 'unsafe-inline': style="..." attributes and <style> blocks are refused too.
        "style-src": "'self'",
        "img-src": "'self'",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and the headers Django's SecurityMiddleware does not set."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        # Pages show unreleased model outputs and labelers' identities: no shared or back-button caches.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response.setdefault("Cache-Control", "private, no-store")
        return response


class RequestSizeLimitMiddleware:
    """Refuses a request body above REVIEWS_MAX_REQUEST_BYTES (413) before anything reads it.

    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE does not count uploaded files; this covers them.
    The ingest API (/api/) enforces its own limit (settings.API_MAX_BODY_BYTES) with a JSON 413.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            # The API refuses oversized bodies itself, with a JSON error its clients can read.
            return self.get_response(request)
        limit = settings.REVIEWS_MAX_REQUEST_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("Malformed Content-Length.\n", status=400, content_type="text/plain")
        if length > limit:
            message = f"Request body too large: {length} bytes, the limit is {limit} bytes.\n"
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)
