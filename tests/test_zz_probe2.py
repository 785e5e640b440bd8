import cProfile
import pstats
import re
import time

import pytest
from django.urls import reverse

from reviews.accounts import create_user
from reviews.importer import import_pool
from reviews.roles import Role
from tests.conftest import jsonl, pool_line

pytestmark = pytest.mark.django_db


def test_probe(client, campaign):
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(400))))
    users = [create_user(f"l{i}", Role.LABELER, password="x") for i in range(4)]
    url = reverse("reviews:work", args=[campaign.slug])

    def cycle(u):
        client.force_login(u)
        html = client.get(url).content.decode()
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
        assert client.post(action, data).status_code == 302

    cycle(users[0])
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    for i in range(200):
        cycle(users[i % 4])
    prof.disable()
    print("per cycle ms", (time.perf_counter() - t) / 200 * 1000)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(120)
