"""The floor's URLconf: every production route (config.urls) plus a minimal authenticated page.

`bench_queue` measures the labeling cycle against this floor: a GET of a login-required page that
renders a CSRF token in a form, then a POST of it (CSRF-checked, login-required) that redirects back
to the GET, as a judgment's submit redirects back to the work page. The page does nothing else: no
role lookup, no context processors, no messages, so what it costs is the web server, the middleware
stack, the session and the user. Only the dev WSGI entry (reviews.dev.floor) routes here.
"""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect
from django.template import engines
from django.urls import path
from django.views.decorators.http import require_http_methods

from config.urls import urlpatterns as production_urlpatterns

FLOOR_PATH = "/dev/floor/"
FLOOR_FORM_ID = "floor-form"

PAGE = engines["django"].from_string(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Floor</title></head><body>'
    f'<form id="{FLOOR_FORM_ID}" method="post" action="{FLOOR_PATH}">{{% csrf_token %}}'
    '<label><input type="radio" name="choice" value="a"> A</label>'
    '<label><input type="radio" name="choice" value="b"> B</label>'
    "<button>Send</button></form></body></html>"
)


@login_required
@require_http_methods(["GET", "POST"])
def floor(request):
    """GET: the form with its CSRF token; POST (the middleware has checked the token): back to the GET."""
    if request.method == "POST":
        return redirect("dev_floor")
    return HttpResponse(PAGE.render({"csrf_token": get_token(request)}))


urlpatterns = [*production_urlpatterns, path(FLOOR_PATH.strip("/") + "/", floor, name="dev_floor")]
