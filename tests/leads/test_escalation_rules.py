"""The escalation policy (DESIGN.md): each rule fires at its threshold and not below it, on submit
and after a scoring run; settings changes apply to new judgments and are recorded."""

import math

import pytest

from reviews.core.roles import Role
from reviews.data.importer import import_pool
from reviews.data.pool_actions import requeue
from reviews.labeling import queue
from reviews.leads import adjudication, escalation, policy
from reviews.models import Escalation, FeedbackEvent, Item, ScoringRun
from reviews.people.accounts import create_user
from scoring import jobs
from tests.conftest import PASSWORD, join, jsonl, pool_line
from tests.labeling.test_queue import labelers

T = policy.Thresholds(tau_risk=0.8, tau_disagree=0.5, tau_conf=2.0, k=2)


# -- the pure rules ------------------------------------------------------------------------


def test_normalized_entropy_is_one_for_any_even_split_of_two_and_zero_for_unanimity():
    assert policy.normalized_entropy([1, 1], 2) == 1.0
    assert policy.normalized_entropy([1, 1], 7) == 1.0  # a two-vote split on a 7-point scale too
    assert policy.normalized_entropy([3], 3) == 0.0
    assert policy.normalized_entropy([], 3) == 0.0
    assert policy.normalized_entropy([2, 1], 3) == pytest.approx(
        -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)) / math.log2(3)
    )


@pytest.mark.parametrize(("risk", "fires"), [(0.8, True), (0.79999, False), (1.0, True), (None, False)])
def test_the_risk_rule_fires_at_tau_risk(risk, fires):
    assert (policy.risk_rule(risk, 1, T) is not None) == fires


def test_the_risk_rule_waits_for_a_label():
    assert policy.risk_rule(0.99, 0, T) is None
    assert policy.risk_rule(0.99, 1, T) == {"rule": "risk", "value": 0.99, "threshold": 0.8}


@pytest.mark.parametrize(("confidences", "fires"), [([0.25], True), ([0.25, 0.5], False), ([0.0, 0.5], True)])
def test_the_confidence_rule_compares_the_mean_on_the_1_to_5_scale(confidences, fires):
    # 0.25 is 2/5, 0.5 is 3/5: means 2 (fires at τ=2), 2.5 (does not), 2 (fires).
    assert (policy.confidence_rule(confidences, T) is not None) == fires


def test_the_confidence_rule_leaves_out_missing_confidences_and_needs_one():
    assert policy.confidence_rule([None, None], T) is None
    assert policy.confidence_rule([None, 0.0], T) == {
        "rule": "confidence",
        "value": 1.0,
        "threshold": 2.0,
        "judgments": 1,
    }


def test_the_disagreement_rule_waits_for_k_judgments_and_compares_with_tau():
    votes = {("preference", ("item", 1)): {"a": 1, "b": 1}}
    assert policy.disagreement_rule(votes, {"preference": 3}, 1, T) is None
    fired = policy.disagreement_rule(votes, {"preference": 3}, 2, T)
    assert fired["rule"] == "disagreement" and fired["value"] == 1.0 and fired["criterion"] == "preference"
    h = policy.normalized_entropy([2, 1], 3)
    three = {("preference", ("item", 1)): {"a": 2, "b": 1}}
    at_edge = policy.Thresholds(0.8, h, 2.0, 3)
    above = policy.Thresholds(0.8, h + 0.001, 2.0, 3)
    assert policy.disagreement_rule(three, {"preference": 3}, 3, at_edge) is not None
    assert policy.disagreement_rule(three, {"preference": 3}, 3, above) is None


# -- the rules in the app ------------------------------------------------------------------


def submit(user, campaign, *, prefer="a", confidence=4, compliance="full_compliance"):
    """Claim the next item and submit answers naming responses by key (whatever side they were on)."""
    claim = queue.claim_next(campaign, user)
    assert claim.state == "item", claim.state
    item = claim.assignment.item
    chosen = item.response_a if prefer == "a" else item.response_b
    answers = [
        ("preference", None, chosen.key),
        ("compliance", item.response_a_id, compliance),
        ("compliance", item.response_b_id, "full_compliance"),
        ("quality", item.response_a_id, "5"),
        ("quality", item.response_b_id, "4"),
    ]
    queue.submit(user, claim.assignment.uid, answers, confidence=confidence, rationale="", time_spent_ms=900)
    return Item.objects.get(pk=item.pk)


@pytest.fixture
def one_item(campaign):
    import_pool(campaign, jsonl(pool_line("one")))
    return campaign


pytestmark = pytest.mark.django_db


def test_agreeing_confident_labelers_raise_nothing(one_item):
    a, b = labelers(2)
    submit(a, one_item)
    item = submit(b, one_item)
    assert item.resolved and not item.escalated
    assert not Escalation.objects.exists()


def test_a_split_vote_after_k_judgments_escalates_with_the_rule_and_its_values(one_item):
    a, b = labelers(2)
    item = submit(a, one_item, prefer="a")
    assert not item.escalated  # one vote cannot disagree
    item = submit(b, one_item, prefer="b")
    e = Escalation.objects.get()
    assert item.escalated and not item.resolved
    assert (e.reason, e.status, e.opened_by) == ("rule", "open", None)
    assert e.rules == [
        {"rule": "disagreement", "value": 1.0, "threshold": 0.5, "criterion": "preference", "votes": {"a": 1, "b": 1}}
    ]
    event = FeedbackEvent.objects.get(action="escalated")
    assert event.feedback["rules"] == e.rules and event.feedback["trigger"].startswith("judgment ")
    assert event.settings_version == one_item.settings
    # The item left the labelers' queue.
    third = join(one_item, create_user("third", Role.LABELER, password=PASSWORD))[0]
    assert queue.claim_next(one_item, third).state == "empty"


def test_a_per_response_split_names_the_response(one_item):
    a, b = labelers(2)
    submit(a, one_item, compliance="full_compliance")
    submit(b, one_item, compliance="full_refusal")
    (rule,) = Escalation.objects.get().rules
    assert (rule["criterion"], rule["response"]) == ("compliance", "a")


def test_the_disagreement_threshold_edge_with_three_votes(one_item):
    h = policy.normalized_entropy([2, 1], 3)
    one_item.update_settings(overlap_k=3, tau_disagree=h + 1e-6)
    users = labelers(3)
    for user, side in zip(users, "aab", strict=True):
        item = submit(user, one_item, prefer=side)
    assert not item.escalated  # 0.5794 < τ
    one_item.update_settings(tau_disagree=h)
    assert [e.rules[0]["rule"] for e in escalation.run_rules(one_item, trigger="test")] == ["disagreement"]


@pytest.mark.parametrize(
    ("confidence", "tau", "fires"), [(2, 2.0, True), (3, 2.0, False), (3, 3.0, True), (1, 1.0, True)]
)
def test_low_confidence_escalates_at_tau_conf(one_item, confidence, tau, fires):
    one_item.update_settings(tau_conf=tau)
    item = submit(labelers(1)[0], one_item, confidence=confidence)
    assert item.escalated == fires
    if fires:
        assert Escalation.objects.get().rules == [
            {"rule": "confidence", "value": float(confidence), "threshold": tau, "judgments": 1}
        ]


def test_judgments_without_confidence_never_fire_the_confidence_rule(one_item):
    one_item.update_settings(tau_conf=5.0)
    item = submit(labelers(1)[0], one_item, confidence=None)
    assert not item.escalated


def test_mean_confidence_counts_every_human_judgment(one_item):
    a, b = labelers(2)
    one_item.update_settings(tau_conf=2.5)
    assert not submit(a, one_item, confidence=3).escalated
    item = submit(b, one_item, confidence=2)  # mean 2.5 ≤ 2.5
    assert item.escalated
    assert Escalation.objects.get().rules[0] == {"rule": "confidence", "value": 2.5, "threshold": 2.5, "judgments": 2}


@pytest.mark.parametrize(("prior", "fires"), [(0.8, True), (0.79, False)])
def test_a_risky_item_escalates_once_it_has_a_label(campaign, prior, fires):
    import_pool(campaign, jsonl(pool_line("risky", risk_prior=prior)))
    assert not escalation.run_rules(campaign, trigger="test")  # no label yet
    item = submit(labelers(1)[0], campaign)
    assert item.escalated == fires
    if fires:
        e = Escalation.objects.get()
        assert e.rules == [{"rule": "risk", "value": prior, "threshold": 0.8}] and e.severity == prior


def test_a_scoring_run_applies_the_rules_to_the_pool(campaign):
    import_pool(campaign, jsonl(pool_line("calm", risk_prior=0.1), pool_line("risky", risk_prior=0.95)))
    campaign.update_settings(tau_risk=0.99)  # nothing fires on submit
    a = labelers(1)[0]
    submit(a, campaign)
    submit(a, campaign)
    assert not Escalation.objects.exists()
    campaign.update_settings(tau_risk=0.9)
    run = jobs.rescore_in_foreground(campaign, "test")
    assert run.status == ScoringRun.Status.SUCCEEDED
    e = Escalation.objects.get()
    assert e.item.external_id == "risky" and e.rules[0]["rule"] == "risk" and e.rules[0]["threshold"] == 0.9
    assert e.severity == pytest.approx(run.scores.get(item=e.item).risk)
    event = FeedbackEvent.objects.get(action="escalated")
    assert event.scoring_run_id == run.id and event.feedback["trigger"] == f"scoring run {run.id}"
    assert event.settings_version.number == campaign.settings.number
    # A second run finds it escalated already: not twice.
    jobs.rescore_in_foreground(campaign, "again")
    assert Escalation.objects.count() == 1


def test_settings_changes_apply_to_new_judgments_and_are_recorded(one_item):
    import_pool(one_item, jsonl(pool_line("two")))
    a, b = labelers(2)
    first = submit(a, one_item, confidence=3)
    assert not first.escalated  # 3 > τ_conf = 2
    old = one_item.settings
    new = one_item.update_settings(tau_conf=3.0, note="escalate unsure labels")
    second = submit(b, one_item, confidence=3)
    assert second.escalated
    e = Escalation.objects.get()
    assert e.rules[0]["threshold"] == 3.0
    assert FeedbackEvent.objects.get(action="escalated").settings_version == new
    assert new.number == old.number + 1


def test_an_escalated_item_is_not_escalated_twice(one_item, lead):
    a, b = labelers(2)
    submit(a, one_item, prefer="a")
    item = submit(b, one_item, prefer="b")
    assert escalation.run_rules(one_item, trigger="again") == []
    again, created = escalation.open_escalation(item, reason="harmful", comment="also harmful", user=lead)
    assert not created and Escalation.objects.count() == 1
    assert [r["rule"] for r in again.rules] == ["disagreement", "manual"]
    assert "also harmful" in again.comment


def test_an_adjudicated_disagreement_is_not_escalated_again(one_item, lead):
    a, b, c = labelers(3)
    submit(a, one_item, prefer="a")
    item = submit(b, one_item, prefer="b")
    e = escalation.claim(Escalation.objects.get(), lead)
    adjudication.adjudicate(
        item,
        lead,
        [
            ("preference", None, item.response_a.key),
            ("compliance", item.response_a_id, "full_compliance"),
            ("compliance", item.response_b_id, "full_compliance"),
            ("quality", item.response_a_id, "5"),
            ("quality", item.response_b_id, "4"),
        ],
        rationale="A answers the question.",
        escalation=e,
    )
    assert escalation.run_rules(one_item, trigger="after") == []
    # More judgments later (a re-queue) still split on the adjudicated question: no new escalation.
    requeue(one_item, [item.id], user=lead, reason="more votes", request_run=False)
    item = submit(c, one_item, prefer="b")
    assert not item.escalated
    assert Escalation.objects.count() == 1


def test_a_dismissed_escalation_is_not_raised_again_without_new_judgments(one_item, lead):
    a, b = labelers(2)
    submit(a, one_item, prefer="a")
    submit(b, one_item, prefer="b")
    e = escalation.claim(Escalation.objects.get(), lead)
    escalation.dismiss(e, lead, "Both are fine; a matter of taste.")
    assert not Item.objects.get().escalated
    assert escalation.run_rules(one_item, trigger="after") == []


def test_fired_rules_read_as_text_for_the_queue():
    rules = [
        {"rule": "risk", "value": 0.91, "threshold": 0.8},
        {"rule": "confidence", "value": 1.5, "threshold": 2.0, "judgments": 2},
        {"rule": "manual", "value": "harmful", "threshold": None},
    ]
    assert policy.describe(rules) == "High risk 0.91 ≥ 0.8; Low confidence 1.50 ≤ 2; Escalated by hand"
