"""Bearer-token authentication and the per-token rate limit of the API.

API views never look at the session: a signed-in browser gets nothing without a token.
"""

import logging
import math
import time
from functools import wraps

import redis
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from reviews.api.tokens import authenticate

logger = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}


def error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def unauthorized(message: str) -> JsonResponse:
    return error(401, message, WWW_Authenticate='Bearer realm="review-desk"')


def bearer_secret(request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def _redis() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def rate_limited(token_id: int) -> int | None:
    """Count a request of this token; return the seconds to wait when it is over the limit.

    A fixed window per token in Redis, so the limit holds across web processes. When Redis
    cannot be reached the request goes through (logged): ingest from production monitoring
    should not stop because the limiter is down.
    """
    window = settings.API_RATE_WINDOW_SECONDS
    now = time.time()
    slot = int(now // window)
    key = f"reviews:api:rate:{token_id}:{slot}"
    try:
        pipe = _redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, window * 2)
        count = pipe.execute()[0]
    except redis.RedisError as exc:
        logger.warning("API rate limit not applied, Redis is unreachable: %s", exc)
        return None
    if count > settings.API_RATE_LIMIT:
        return max(1, math.ceil((slot + 1) * window - now))
    return None


def api_view(*methods: str):
    """An API endpoint: allowed methods, then the bearer token, then the rate limit.

    The view is called as view(request, token, ...); it checks the token's campaigns itself.
    """

    def decorator(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method not in methods:
                return error(405, f"{request.method} is not allowed here", Allow=", ".join(methods))
            secret = bearer_secret(request)
            if secret is None:
                return unauthorized("authentication required: send Authorization: Bearer <token>")
            token = authenticate(secret)
            if token is None:
                return unauthorized("the token is unknown or revoked")
            wait = rate_limited(token.pk)
            if wait is not None:
                return error(
                    429,
                    f"rate limit of {settings.API_RATE_LIMIT} requests per "
                    f"{settings.API_RATE_WINDOW_SECONDS} s reached; retry in {wait} s",
                    Retry_After=str(wait),
                )
            return view(request, token, *args, **kwargs)

        return wrapped

    return decorator
