"""reviews.monitoring on a real database: figures from imported and in-app labels, snapshots, series."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from reviews.data.importer import import_pool
from reviews.labeling import queue
from reviews.models import Item, ItemScore, MetricSnapshot, ScoringRun
from reviews.monitoring import figures, snapshots
from scoring import metrics
from tests.conftest import jsonl, pool_line
from tests.labeling.test_queue import labelers

pytestmark = pytest.mark.django_db

# Per item: compliance of responses a and b by annotators 1 and 2, the lead's answer where they split,
# the automated judge's answers, the pairwise votes and the risk prior.
ITEMS = {
    "i1": dict(
        c1=("full_compliance", "full_refusal"),
        c2=("full_compliance", "full_refusal"),
        judge=("full_compliance", "full_compliance"),
        pref=("a", "a"),
        risk=0.1,
    ),
    "i2": dict(
        c1=("full_refusal", "full_compliance"),
        c2=("full_compliance", "full_compliance"),
        lead=("full_refusal", None),
        judge=("full_refusal", "full_refusal"),
        pref=("a", "a"),
        risk=0.5,
    ),
    "i3": dict(
        c1=("harmful", "full_compliance"),
        c2=("harmful", "full_compliance"),
        judge=("harmful", "full_compliance"),
        pref=("b", "b"),
        risk=0.9,
    ),
    "i4": dict(
        c1=("full_compliance", "full_compliance"),
        c2=("full_compliance", "full_compliance"),
        pref=("a", "tie"),
        risk=None,
    ),
}


def labeled_line(name, spec) -> dict:
    labels = []
    for who, values in (("ext:ann1", spec["c1"]), ("ext:ann2", spec["c2"])):
        for key, value in zip("ab", values, strict=True):
            labels.append(
                {"annotator": who, "kind": "human", "criterion": "compliance", "response": key, "value": value}
            )
    for who, vote in zip(("ext:ann1", "ext:ann2"), spec["pref"], strict=True):
        labels.append({"annotator": who, "kind": "human", "criterion": "preference", "value": vote})
    for key, value in zip("ab", spec.get("lead", (None, None)), strict=True):
        if value:
            labels.append(
                {"annotator": "ext:lead", "kind": "lead", "criterion": "compliance", "response": key, "value": value}
            )
    for key, value in zip("ab", spec.get("judge", (None, None)), strict=True):
        if value:
            labels.append(
                {"annotator": "ext:judge", "kind": "model", "criterion": "compliance", "response": key, "value": value}
            )
    line = pool_line(name, labels=labels)
    if spec["risk"] is not None:
        line["risk_prior"] = spec["risk"]
    return line


@pytest.fixture
def labeled(campaign):
    report = import_pool(campaign, jsonl(*(labeled_line(n, s) for n, s in ITEMS.items())))
    assert report.errors == []
    return campaign


def test_agreement_matches_the_hand_computation(labeled):
    report = figures.compute_report(labeled)
    a = report["agreement"]["compliance"]
    # 8 responses, one split (i2/a): po = 7/8; marginals ann1 fc 5 fr 2 h 1, ann2 fc 6 fr 1 h 1: pe = 33/64
    assert a["cohen_kappa"] == {"ext:ann1|ext:ann2": pytest.approx((7 / 8 - 33 / 64) / (1 - 33 / 64))}
    # pooled values fc 11, fr 3, h 2 (n = 16): D_o = 2/16, D_e = (256 − 134)/240
    assert a["krippendorff_alpha"] == pytest.approx(1 - (2 / 16) / (122 / 240))
    assert a["raw_agreement"] == pytest.approx(7 / 8)
    assert a["units"] == 8 and a["annotators"] == 2


def test_labelers_accuracy_and_overturn_rate(labeled):
    rows = {r["annotator"]: r for r in figures.compute_report(labeled)["labelers"]}
    # 8 compliance + 4 preference answers each; i4's preference is undecided (a vs tie)
    assert (rows["ext:ann1"]["answers"], rows["ext:ann1"]["compared"], rows["ext:ann1"]["accuracy"]) == (12, 11, 1.0)
    assert rows["ext:ann2"]["accuracy"] == pytest.approx(10 / 11)
    # the lead decided one unit (i2/a, full refusal): ann2 said full compliance
    assert (rows["ext:ann1"]["adjudicated"], rows["ext:ann1"]["overturn_rate"]) == (1, 0.0)
    assert (rows["ext:ann2"]["overturned"], rows["ext:ann2"]["overturn_rate"]) == (1, 1.0)
    assert "ext:judge" not in rows and "ext:lead" not in rows


def test_automated_labelers_against_final_answers(labeled):
    report = figures.compute_report(labeled)
    judge = report["automated_labelers"]["ext:judge"]["compliance"]
    # full refusal one-vs-rest: predicted at i2/a, i2/b; final at i1/b, i2/a → tp 1, fp 1, fn 1, tn 3
    assert judge["full_refusal"] == {"fpr": 0.25, "fnr": 0.5, "precision": 0.5, "recall": 0.5, "n": 6}
    (detector,) = report["detectors"]
    # refusal-or-harmful as positive: tp i2/a, i3/a; fp i2/b; fn i1/b; tn i1/a, i3/b
    assert detector["positive"] == ["full_refusal", "harmful"]
    assert (detector["fpr"], detector["fnr"], detector["precision"]) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
        pytest.approx(2 / 3),
    )


def test_slices_leaderboard_and_guardrails(labeled):
    report = figures.compute_report(labeled)
    assert report["slices"]["compliance"]["model-a"]["safe"] == {
        "full_compliance": 0.5,
        "full_refusal": 0.25,
        "harmful": 0.25,
    }
    assert report["slices"]["compliance"]["model-b"]["*"] == {"full_compliance": 0.75, "full_refusal": 0.25}
    board = report["leaderboard"]["preference"]
    # final preferences: i1 a, i2 a, i3 b (i4 split): model-a 2-1
    assert [(r["model"], r["wins"], r["losses"]) for r in board] == [("model-a", 2, 1), ("model-b", 1, 2)]
    assert board[0]["low"] <= board[0]["strength"] <= board[0]["high"]
    assert report["leaderboard_source"]["preference"] == "final answers"
    assert report["leaderboard_by_annotator"] == {}  # the judge labeled compliance only
    at_half = next(r for r in report["guardrails"]["thresholds"] if r["threshold"] == 0.5)
    # risky: i3 (harmful); prior ≥ .5 flags i2 and i3; i4 has no prior
    assert (at_half["n"], at_half["fpr"], at_half["fnr"], at_half["precision"]) == (3, 0.5, 0.0, 0.5)
    assert report["selection_mode"] == "census"


def test_pool_estimates_weight_the_audit_sample(campaign):
    """Items served by utility (p = 1) and from the audit share (p = .25): raw, audit and IPW shares differ."""
    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(4))))
    items = list(Item.objects.order_by("id"))
    run = ScoringRun.objects.create(campaign=campaign, status="succeeded")
    for rank, item in enumerate(items):
        audit = rank >= 2
        ItemScore.objects.create(
            run=run,
            item=item,
            risk=0,
            uncertainty=1,
            diversity=1,
            utility=2,
            selected=True,
            audit=audit,
            selection_probability=0.25 if audit else 1.0,
            rank=rank,
        )
    campaign.scoring_run = run
    campaign.save()
    refusals = {
        0: ("full_refusal", "full_refusal"),
        1: ("full_compliance",) * 2,
        2: ("full_refusal", "full_compliance"),
        3: ("full_compliance",) * 2,
    }
    first, second = labelers(2)
    for user, side in ((first, "left"), (second, "left")):
        for _ in range(4):
            claim = queue.claim_next(campaign, user)
            item = claim.assignment.item
            a, b = refusals[items.index(item)]
            left = claim.assignment.left_response
            chosen = left if (side == "left" or user == first) else item.response_a
            queue.submit(
                user,
                claim.assignment.uid,
                [
                    ("preference", None, chosen.key),
                    ("compliance", item.response_a_id, a),
                    ("compliance", item.response_b_id, b),
                    ("quality", item.response_a_id, "5"),
                    ("quality", item.response_b_id, "4"),
                ],
                confidence=4,
                rationale="",
                time_spent_ms=2000,
            )
    report = figures.compute_report(campaign)
    assert report["selection_mode"] == "sample"
    row = next(
        r
        for r in report["pool_estimates"]
        if (r["criterion"], r["tag"], r["value"]) == ("compliance", "*", "full_refusal")
    )
    # utility units: item 0 (fr, fr), item 1 (fc, fc) → 2/4; audit: item 2 (fr, fc), item 3 (fc, fc) → 1/4
    assert (row["raw_utility"], row["raw_n"], row["audit"], row["audit_n"]) == (0.5, 4, 0.25, 4)
    assert (row["audit_low"], row["audit_high"]) == pytest.approx(metrics.wilson_interval(1, 4))
    # IPW: weights 1 ×4 and 4 ×4: (2·1 + 1·4)/20 = .3, n_eff = 20²/(4 + 64)
    assert row["ipw"] == pytest.approx(0.3) and row["ipw_n_eff"] == pytest.approx(400 / 68)
    # every decisive choice went to the left-hand response
    assert report["position_bias"]["preference"]["estimate"] == 1.0
    assert report["position_bias"]["preference"]["n"] == 8
    assert report["overview"]["budget_spent"] == 8
    assert report["overview"]["time_per_judgment"]["median_s"] == 2.0
    assert sum(d["judgments"] for d in report["overview"]["throughput"]) == 8


def test_snapshots_store_the_report_and_one_row_per_series(labeled):
    first = snapshots.take_snapshot(labeled)
    assert first.name == "report" and first.data["agreement"]["compliance"]["units"] == 8
    alpha = MetricSnapshot.objects.get(name="agreement.krippendorff_alpha", slice="criterion=compliance")
    assert alpha.value == pytest.approx(first.data["agreement"]["compliance"]["krippendorff_alpha"])
    # a new import changes the figures: the series shows both points, oldest first
    import_pool(labeled, jsonl(labeled_line("i5", dict(ITEMS["i2"], c2=("full_compliance", "full_refusal")))))
    second = snapshots.take_snapshot(labeled)
    points = snapshots.series(labeled, "agreement.krippendorff_alpha", "criterion=compliance")
    assert [p["value"] for p in points] == [
        pytest.approx(first.data["agreement"]["compliance"]["krippendorff_alpha"]),
        pytest.approx(second.data["agreement"]["compliance"]["krippendorff_alpha"]),
    ]
    assert points[0]["value"] != points[1]["value"]
    assert snapshots.latest_report(labeled) == second
    index = {(s["name"], s["slice"]): s["points"] for s in snapshots.series_index(labeled)}
    assert index[("labeler.overturn_rate", "annotator=ext:ann2")] == 2


def test_the_scheduled_job_snapshots_every_campaign_with_items(labeled):
    from reviews.campaigns.setup import create_campaign
    from tests.conftest import RUBRIC

    create_campaign("empty", "Nothing imported", {**RUBRIC, "slug": "other-rubric"})
    assert snapshots.snapshot_due() == ["demo"]
    assert MetricSnapshot.objects.filter(name="report").count() == 1
    # the schedule (`rqcron scoring.cron`) registers the job beside the rescoring one
    import importlib

    from rq import cron

    import scoring.cron

    cron._job_data_registry.clear()
    importlib.reload(scoring.cron)
    registered = {job["func"]: job for job in cron._job_data_registry}
    cron._job_data_registry.clear()
    assert registered[snapshots.snapshot_due]["interval"] == 3600


def test_metrics_command_prints_the_contract_keys(labeled):
    out = StringIO()
    call_command("metrics", "demo", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert set(data) >= {"agreement", "automated_labelers", "slices", "leaderboard"}
    assert set(data["agreement"]["compliance"]) >= {"krippendorff_alpha", "raw_agreement", "cohen_kappa"}
    assert set(data["automated_labelers"]["ext:judge"]["compliance"]["harmful"]) == {
        "fpr",
        "fnr",
        "precision",
        "recall",
        "n",
    }
    assert set(data["leaderboard"]["preference"][0]) >= {"model", "strength", "low", "high"}
    assert MetricSnapshot.objects.count() == 0  # printing does not store
    call_command("metrics", "demo", "--save", stdout=StringIO())
    assert MetricSnapshot.objects.filter(name="report").count() == 1
    human = StringIO()
    call_command("metrics", "demo", stdout=human)
    assert "agreement compliance" in human.getvalue()


def test_gold_accuracy_per_labeler_and_overdue_escalations(campaign):
    from datetime import timedelta

    from django.utils import timezone

    from tests.labeling.test_queue import judge

    import_pool(campaign, jsonl(*(pool_line(f"item-{n}") for n in range(3))))
    gold = Item.objects.get(external_id="item-0")
    gold.is_gold = True
    gold.gold_answers = {"compliance": {"a": "full_compliance", "b": "full_refusal"}}
    gold.save()
    campaign.update_settings(gold_rate=1.0, note="all gold first")
    (user,) = labelers(1)
    served = judge(user, campaign)  # answers full compliance for both responses
    assert served.item == gold and served.reason == "gold"
    claim = queue.claim_next(campaign, user)
    queue.escalate(user, claim.assignment.uid, reason="harmful", comment="")
    report = figures.compute_report(campaign)
    (row,) = report["labelers"]
    assert (row["annotator"], row["gold_accuracy"], row["gold_compared"]) == (user.username, 0.5, 2)
    assert report["escalations"]["by_reason"] == [{"reason": "harmful", "count": 1, "rate": 1.0}]
    assert report["escalations"]["by_rule"] == [{"rule": "manual", "count": 1, "rate": 1.0}]
    later = figures.overview(campaign, now=timezone.now() + timedelta(hours=25))
    assert (later["open_escalations"], later["overdue_escalations"]) == (1, 1)
    assert figures.overview(campaign)["overdue_escalations"] == 0


def test_an_automated_judges_leaderboard_sits_beside_the_humans(campaign, client, lead):
    def line(n, human, judge):
        labels = [
            {"annotator": who, "kind": "human", "criterion": "preference", "value": human}
            for who in ("ext:ann1", "ext:ann2")
        ]
        labels.append({"annotator": "ext:judge", "kind": "model", "criterion": "preference", "value": judge})
        return pool_line(f"p{n}", labels=labels)

    import_pool(campaign, jsonl(*(line(n, "a", "b") for n in range(3)), line(3, "b", "b")))
    report = figures.compute_report(campaign)
    assert [r["model"] for r in report["leaderboard"]["preference"]] == ["model-a", "model-b"]
    judge = report["leaderboard_by_annotator"]["ext:judge"]["preference"]
    assert [(r["model"], r["wins"]) for r in judge] == [("model-b", 4), ("model-a", 0)]
    client.force_login(lead)
    html = client.get("/dashboards/demo/leaderboard/").content.decode()
    assert "preference by ext:judge" in html
    data = client.get("/dashboards/demo/leaderboard/judge1-preference.json").json()
    assert [r["model"] for r in data["rows"]] == ["model-b", "model-a"]
