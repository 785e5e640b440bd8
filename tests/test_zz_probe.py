import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from reviews.importer import import_pool
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db


def test_probe(client, campaign, labeler):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(20))))
    client.force_login(labeler)
    url = reverse("reviews:work", args=[campaign.slug])
    client.get(url)
    for _ in range(2):
        with CaptureQueriesContext(connection) as ctx:
            r = client.get(url)
        html = r.content.decode()
        print("GET queries", len(ctx.captured_queries))
        for q in ctx.captured_queries:
            print("   ", q["sql"][:150])
        action = re.search(r'action="([^"]*/submit)"', html).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        data = {
            "csrfmiddlewaretoken": token,
            "q.preference": "left",
            "q.compliance.left": "full_compliance",
            "q.compliance.right": "full_compliance",
            "q.quality.left": "5",
            "q.quality.right": "4",
        }
        with CaptureQueriesContext(connection) as ctx:
            r = client.post(action, data)
        print("POST queries", len(ctx.captured_queries), r.status_code)
        for q in ctx.captured_queries:
            print("   ", q["sql"][:150])
