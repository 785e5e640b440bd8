"""Dev-only WSGI entry: the whole app plus the floor page of reviews.dev.floor_urls (/dev/floor/).

Only `bench_queue` starts gunicorn on this module, to measure the floor; production serves
config.wsgi, whose URLconf has no such route. The settings and middleware are the production ones:
only the URLconf differs, set per request (Django resolves with `request.urlconf` when it has one).
"""

import os

import django
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)  # as get_wsgi_application() does for config.wsgi

URLCONF = "reviews.dev.floor_urls"


class FloorRequest(WSGIRequest):
    urlconf = URLCONF


class FloorHandler(WSGIHandler):
    request_class = FloorRequest


application = FloorHandler()
