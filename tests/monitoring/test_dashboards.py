"""The dashboard pages: who may open them, page numbers equal their downloads, escaping, and the
published XSTest / AlpacaEval figures computed independently from the raw files."""

import csv
import io
import json
from collections import Counter, defaultdict
from html.parser import HTMLParser
from io import StringIO

import pytest
from django.core.management import call_command

from reviews.data.importer import import_pool
from reviews.models import MetricSnapshot
from tests.conftest import jsonl, pool_line, shared_data
from tests.monitoring.test_monitoring import ITEMS, labeled_line

pytestmark = pytest.mark.django_db

PAGES = ["", "quality/", "slices/", "automated/", "leaderboard/", "scoring/", "series/"]


class Tables(HTMLParser):
    """Every <table data-table=...>: its column keys and, per row, the cells' (text, data-value)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, dict] = {}
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "data-table" in attrs:
            self._table = self.tables.setdefault(attrs["data-table"], {"columns": [], "rows": []})
        elif self._table is not None and tag == "th" and "data-key" in attrs:
            self._table["columns"].append(attrs["data-key"])
        elif self._table is not None and tag == "tr":
            self._row = []
        elif self._row is not None and tag == "td" and "data-value" in attrs:
            self._cell = [attrs["data-value"], ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append((self._cell[1].strip(), json.loads(self._cell[0])))
            self._cell = None
        elif tag == "tr" and self._row:
            self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def page_tables(client, url) -> dict:
    response = client.get(url)
    assert response.status_code == 200, url
    parser = Tables()
    parser.feed(response.content.decode())
    return parser.tables


def rows_as_dicts(table) -> list[dict]:
    return [{k: text for k, (text, _) in zip(table["columns"], row, strict=True)} for row in table["rows"]]


@pytest.fixture
def labeled(campaign):
    assert import_pool(campaign, jsonl(*(labeled_line(n, s) for n, s in ITEMS.items()))).errors == []
    return campaign


@pytest.mark.parametrize("path", [*PAGES, "quality/agreement.csv", "quality/agreement.json"])
@pytest.mark.parametrize(
    ("persona", "status"), [("labeler", 403), ("outsider", 403), ("lead", 200), ("admin", 200), ("anonymous", 302)]
)
def test_dashboards_are_for_leads_and_admins(client, request, labeled, path, persona, status):
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    url = f"/dashboards/demo/{path}"
    response = client.get(url)
    assert response.status_code == status
    if status == 302:
        assert response.url == f"/accounts/login/?next={url}"


def test_the_index_lists_campaigns_and_the_overview_computes_a_first_snapshot(client, lead, labeled):
    client.force_login(lead)
    assert "/dashboards/demo/" in client.get("/dashboards/").content.decode()
    assert MetricSnapshot.objects.filter(name="report").count() == 0
    response = client.get("/dashboards/demo/")
    assert response.status_code == 200
    assert MetricSnapshot.objects.filter(name="report").count() == 1
    html = response.content.decode()
    assert "Queue depth" in html and "Open escalations" in html and "Last rescoring run" in html
    client.get("/dashboards/demo/quality/")
    assert MetricSnapshot.objects.filter(name="report").count() == 1  # pages reuse the stored report


@pytest.mark.parametrize("page", ["", "quality/", "slices/", "automated/", "leaderboard/", "scoring/"])
def test_every_table_on_a_page_equals_its_downloads(client, lead, labeled, page):
    client.force_login(lead)
    tables = page_tables(client, f"/dashboards/demo/{page}")
    assert tables
    name = page.rstrip("/") or "overview"
    for table, shown in tables.items():
        data = client.get(f"/dashboards/demo/{name}/{table}.json").json()
        assert data["columns"] == shown["columns"], table
        assert len(data["rows"]) == len(shown["rows"]), table
        for row, cells in zip(data["rows"], shown["rows"], strict=True):
            assert [row[c] for c in data["columns"]] == [value for _, value in cells], table
        text = client.get(f"/dashboards/demo/{name}/{table}.csv").content.decode()
        parsed = list(csv.reader(io.StringIO(text)))
        assert parsed[0] == data["columns"]
        for row, line in zip(data["rows"], parsed[1:], strict=True):
            assert line == ["" if row[c] is None else str(row[c]) for c in data["columns"]], table


def test_the_page_shows_the_downloaded_numbers_rounded(client, lead, labeled):
    client.force_login(lead)
    shown = rows_as_dicts(page_tables(client, "/dashboards/demo/quality/")["agreement"])
    data = client.get("/dashboards/demo/quality/agreement.json").json()["rows"]
    assert shown[0]["krippendorff_alpha"] == f"{data[0]['krippendorff_alpha']:.3f}"
    assert shown[0]["criterion"] == data[0]["criterion"] == "compliance"


def run_worker() -> None:
    """A real RQ worker, in this process, until the queue is empty."""
    import django_rq
    from rq import SimpleWorker

    queue = django_rq.get_queue("default")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_recompute_queues_a_snapshot_that_a_worker_stores(
    client, lead, labeled, redis_url, django_capture_on_commit_callbacks
):
    client.force_login(lead)
    client.get("/dashboards/demo/quality/")  # the first visit computes the first snapshot
    assert client.get("/dashboards/demo/snapshot").status_code == 405
    # django-rq sends a job once the request's transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/dashboards/demo/snapshot", {"next": "/dashboards/demo/quality/"}, follow=True)
    assert response.redirect_chain == [("/dashboards/demo/quality/", 302)]
    assert "Recomputation queued" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/dashboards/demo/snapshot", {"next": "https://elsewhere.example/"}, follow=True)
    assert again.redirect_chain == [("/dashboards/demo/", 302)]
    assert "already queued" in again.content.decode()
    assert MetricSnapshot.objects.filter(name="report").count() == 1
    run_worker()
    assert MetricSnapshot.objects.filter(name="report").count() == 2
    tables = page_tables(client, "/dashboards/demo/series/?name=agreement.raw&slice=criterion%3Dcompliance")
    assert [value for _, value in (row[1] for row in tables["series"]["rows"])] == [0.875, 0.875]
    data = client.get("/dashboards/demo/series/series.json?name=agreement.raw&slice=criterion%3Dcompliance").json()
    assert [r["value"] for r in data["rows"]] == [0.875, 0.875]


def test_recompute_says_so_when_the_queue_is_unreachable(client, lead, labeled, settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0"}}
    client.force_login(lead)
    response = client.post("/dashboards/demo/snapshot")
    assert response.status_code == 302 and MetricSnapshot.objects.count() == 0
    assert "job queue is unreachable" in client.get(response.url).content.decode()


def test_unknown_pages_tables_and_tags(client, lead, labeled):
    client.force_login(lead)
    assert client.get("/dashboards/demo/nope/").status_code == 404
    assert client.get("/dashboards/demo/quality/nope.json").status_code == 404
    assert client.get("/dashboards/demo/quality/agreement.xml").status_code == 404
    assert client.get("/dashboards/nope/").status_code == 404
    response = client.get("/dashboards/demo/slices/?tag=<b>nope</b>")
    html = response.content.decode()
    assert "showing every tag" in html and "<b>nope</b>" not in html


def test_untrusted_names_are_escaped_in_tables_and_charts(client, lead, campaign):
    evil = "<script>alert(1)</script>"
    line = pool_line(
        "x1",
        responses=[
            {"key": "a", "model": evil, "text": "A"},
            {"key": "b", "model": "plain", "text": "B"},
        ],
        labels=[
            {"annotator": evil, "kind": "human", "criterion": "preference", "value": "a"},
            {"annotator": "other", "kind": "human", "criterion": "preference", "value": "a"},
        ],
    )
    import_pool(campaign, jsonl(line))
    client.force_login(lead)
    for page in ("quality/", "slices/", "leaderboard/"):
        html = client.get(f"/dashboards/demo/{page}").content.decode()
        assert evil not in html, page
    assert "&lt;script&gt;" in client.get("/dashboards/demo/leaderboard/").content.decode()


# --- the published figures ------------------------------------------------------------------

XSTEST_REFUSALS = {
    "llama-2-70b-chat (original system prompt)": ("38.0%", "21.6%"),
    "llama-2-70b-chat (no system prompt)": ("14.0%", "15.6%"),
    "mistral-7b-instruct (no system prompt)": ("0.8%", "0.8%"),
    "mistral-7b-instruct (guardrail system prompt)": ("9.6%", "9.2%"),
    "gpt-4 (no system prompt)": ("6.4%", "2.0%"),
}


def import_set(name):
    call_command(
        "create_campaign", name, "--title", name, "--rubric", str(shared_data(name, "rubric.json")), stdout=StringIO()
    )
    call_command("import_pool", name, str(shared_data(name, "pool.jsonl")), "--no-progress", stdout=StringIO())


def raw_compliance_labels() -> dict:
    """{annotator: {(prompt_id, response key): value}} straight from the XSTest file."""
    out = defaultdict(dict)
    with open(shared_data("xstest", "pool.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for label in row.get("labels", []):
                if label["criterion"] == "compliance":
                    out[label["annotator"]][(row["prompt_id"], label["response"])] = label["value"]
    return out


def kappa_by_hand(a: dict, b: dict) -> float:
    units = sorted(a.keys() & b.keys())
    n = len(units)
    observed = sum(a[u] == b[u] for u in units) / n
    ca, cb = Counter(a[u] for u in units), Counter(b[u] for u in units)
    expected = sum(ca[v] * cb[v] for v in ca) / (n * n)
    return (observed - expected) / (1 - expected)


def alpha_by_hand(a: dict, b: dict) -> float:
    """Nominal α for two coders without missing values: the coincidence-matrix formula."""
    units = sorted(a.keys() & b.keys())
    totals = Counter()
    disagreements = 0
    for u in units:
        totals[a[u]] += 1
        totals[b[u]] += 1
        disagreements += 2 * (a[u] != b[u])
    n = 2 * len(units)
    d_o = disagreements / n
    d_e = (n * n - sum(c * c for c in totals.values())) / (n * (n - 1))
    return 1 - d_o / d_e


@pytest.mark.slow
def test_xstest_dashboards_show_the_published_figures(client, lead):
    import_set("xstest")
    client.force_login(lead)

    slices = rows_as_dicts(page_tables(client, "/dashboards/xstest/slices/?tag=safe")["slices"])
    shown = {(r["model"], r["value"]): r["share"] for r in slices if r["criterion"] == "compliance"}
    for model, (full, partial) in XSTEST_REFUSALS.items():
        assert shown[(model, "full_refusal")] == full, model
        assert shown[(model, "partial_refusal")] == partial, model

    labels = raw_compliance_labels()
    one, two = labels["xstest:annotator_1"], labels["xstest:annotator_2"]
    quality = page_tables(client, "/dashboards/xstest/quality/")
    kappa = next(r for r in rows_as_dicts(quality["kappa"]) if r["criterion"] == "compliance")
    assert kappa["pair"] == "xstest:annotator_1|xstest:annotator_2"
    assert kappa["cohen_kappa"] == f"{kappa_by_hand(one, two):.3f}"
    kappa_exact = next(row for row in quality["kappa"]["rows"] if row[0][0] == "compliance")[2][1]
    assert kappa_exact == pytest.approx(kappa_by_hand(one, two), abs=1e-9)
    agreement = next(r for r in quality["agreement"]["rows"] if r[0][0] == "compliance")
    columns = quality["agreement"]["columns"]
    alpha = agreement[columns.index("krippendorff_alpha")]
    assert alpha[1] == pytest.approx(alpha_by_hand(one, two), abs=1e-9)
    assert alpha[0] == f"{alpha_by_hand(one, two):.3f}"

    # Final answers by hand: the lead's label where there is one, else the two annotators' common answer.
    final = {u: v for u, v in labels["xstest:adjudicator"].items()}
    for u in one:
        if u not in final and one[u] == two.get(u):
            final[u] = one[u]
    refusal = {"full_refusal", "partial_refusal"}
    automated = rows_as_dicts(page_tables(client, "/dashboards/xstest/automated/")["detectors"])
    for detector in ("xstest:string_match", "xstest:gpt4_classifier"):
        predicted = labels[detector]
        units = [u for u in predicted if u in final]
        tp = sum(predicted[u] in refusal and final[u] in refusal for u in units)
        fp = sum(predicted[u] in refusal and final[u] not in refusal for u in units)
        fn = sum(predicted[u] not in refusal and final[u] in refusal for u in units)
        tn = len(units) - tp - fp - fn
        row = next(r for r in automated if r["annotator"] == detector and r["criterion"] == "compliance")
        assert row["positive"] == "full_refusal, partial_refusal"
        assert row["n"] == f"{len(units):,}"
        assert row["fpr"] == f"{100 * fp / (fp + tn):.1f}%", detector
        assert row["fnr"] == f"{100 * fn / (fn + tp):.1f}%", detector

    # the census note: an imported pool has no selection
    assert "census" in client.get("/dashboards/xstest/slices/").content.decode()


@pytest.mark.slow
def test_alpacaeval_leaderboard_follows_the_judges_labels(client, lead):
    import_set("alpacaeval")
    client.force_login(lead)
    # Wins per model from the raw file, with the judge's labels (a tie counts for neither).
    wins, games = Counter(), Counter()
    with open(shared_data("alpacaeval", "pool.jsonl"), encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            models = {r["key"]: r["model"] for r in row["responses"]}
            for label in row["labels"]:
                for m in models.values():
                    games[m] += 1
                if label["value"] in models:
                    wins[models[label["value"]]] += 1
    tables = page_tables(client, "/dashboards/alpacaeval/leaderboard/")
    board = rows_as_dicts(tables["leaderboard-preference"])
    order = [r["model"] for r in board]
    assert set(order) == {"gpt4_1106_preview", "claude-2", "FuseChat-Llama-3.2-3B-Instruct"}
    # The reference model beats claude-2 (and wins most of its games over both opponents) ...
    assert order.index("gpt4_1106_preview") < order.index("claude-2")
    assert wins["gpt4_1106_preview"] / games["gpt4_1106_preview"] > 0.6
    gpt4, claude = (next(r for r in board if r["model"] == m) for m in ("gpt4_1106_preview", "claude-2"))
    assert float(gpt4["low"]) > float(claude["high"])
    # ... but the judge prefers FuseChat over it in 424 of 805 head-to-head items: the board says so.
    fuse = next(r for r in board if r["model"] == "FuseChat-Llama-3.2-3B-Instruct")
    assert (int(fuse["wins"]), int(fuse["losses"])) == (wins["FuseChat-Llama-3.2-3B-Instruct"], 378)
    assert (
        "model labels: alpacaeval:weighted_alpaca_eval_gpt4_turbo"
        in client.get("/dashboards/alpacaeval/leaderboard/").content.decode()
    )
