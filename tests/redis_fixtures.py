"""A Redis for the tests: REDIS_URL when set (flushed first), else the embedded one for the session.

Registered in tests/conftest.py with `pytest_plugins = ["tests.redis_fixtures"]`.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import redis
from django.conf import settings

from reviews.dev.embedded_redis import EmbeddedRedis


def _point_django_rq_at(url: str) -> str:
    """Make django-rq (and anything reading settings.REDIS_URL) use `url`; return the previous URL."""
    previous = settings.RQ_QUEUES["default"]["URL"]
    settings.RQ_QUEUES["default"]["URL"] = url
    settings.REDIS_URL = url
    # django-rq 4 reads RQ_QUEUES on every get_queue() and caches no connection, so nothing to clear.
    return previous


@pytest.fixture(scope="session")
def redis_url():
    """The URL of a Redis that is empty at the start of the session."""
    url = os.environ.get("REDIS_URL")
    if url:
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
        previous = _point_django_rq_at(url)
        yield url
        _point_django_rq_at(previous)
        return
    # A short directory under /tmp: a unix socket path must stay under ~100 characters.
    directory = Path(tempfile.mkdtemp(prefix="rd-", dir="/tmp"))
    try:
        with EmbeddedRedis(directory / "redis.sock", directory=directory) as server:
            previous = _point_django_rq_at(server.url)
            try:
                yield server.url
            finally:
                _point_django_rq_at(previous)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
