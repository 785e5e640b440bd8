"""The item browser's query builder and the bulk pool actions: each filter, search, sort, keyset
pagination, and every bulk action (atomic, one event per item), on a selection or a whole filter."""

import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.data import item_browser, pool_actions
from reviews.data.importer import import_pool
from reviews.data.item_browser import ItemFilter, filtered_items, matching_ids, page
from reviews.data.pool_actions import PoolActionError
from reviews.models import Assignment, Escalation, FeedbackEvent, Item, ItemScore, ScoringRun
from tests.conftest import jsonl, pool_line
from tests.labeling.test_queue import judge
from tests.system.test_views_common import human, unanimous_labels

pytestmark = pytest.mark.django_db


def split_labels():
    """Two external annotators who disagree on the pairwise choice."""
    return [human("ext:x", "preference", "a"), human("ext:y", "preference", "b")]


def ids(qs_or_list):
    return sorted(
        Item.objects.filter(id__in=[getattr(i, "id", i) for i in qs_or_list]).values_list("external_id", flat=True)
    )


def found(campaign, **params):
    f = ItemFilter.from_params(params)
    assert f.errors == []
    return sorted(filtered_items(campaign, f).values_list("external_id", flat=True))


@pytest.fixture
def pool(campaign):
    """A small pool with one item in each state the filters tell apart."""
    lines = [
        pool_line("fresh", tags=["safe"]),
        pool_line("agreed", labels=unanimous_labels("ext:h1", "ext:h2"), tags=["unsafe"]),
        pool_line("split", labels=split_labels(), tags=["unsafe", "jailbreak"]),
        pool_line(
            "other-model",
            prompt="How do I bake sourdough bread?",
            responses=[
                {"key": "a", "model": "model-c", "text": "Start with a levain"},
                {"key": "b", "model": "model-a", "text": "Buy bread"},
            ],
        ),
        pool_line("leased"),
        pool_line("gone"),
        pool_line("golden"),
    ]
    import_pool(campaign, jsonl(*lines))
    Item.objects.filter(external_id="gone").update(excluded=True)
    Item.objects.filter(external_id="golden").update(is_gold=True, gold_answers=[])
    return campaign


def scored(campaign, values: dict[str, tuple[float, float]]):
    """A succeeded run in force with (utility, risk) per external id."""
    run = ScoringRun.objects.create(campaign=campaign, status=ScoringRun.Status.SUCCEEDED)
    for item in Item.objects.filter(campaign=campaign, external_id__in=list(values)):
        u, r = values[item.external_id]
        ItemScore.objects.create(run=run, item=item, utility=u, risk=r, uncertainty=0.5, diversity=0.5)
    campaign.scoring_run = run
    campaign.save(update_fields=["scoring_run"])
    return run


class TestFilters:
    def test_no_filter_lists_every_item_of_the_campaign_only(self, pool):
        from reviews.campaigns.setup import create_campaign

        other = create_campaign("other", "Other")
        import_pool(other, jsonl(pool_line("elsewhere")))
        assert len(found(pool)) == 7

    def test_status_unlabeled_in_progress_and_resolved(self, pool, labeler):
        item = Item.objects.get(external_id="leased")
        Assignment.objects.create(
            uid=uuid.uuid4(),
            item=item,
            user=labeler,
            left_response=item.response_a,
            rubric_version=pool.rubric_version(),
            settings_version=pool.settings,
            expires_at=timezone.now() + timedelta(minutes=5),
        )
        assert found(pool, status="unlabeled") == ["fresh", "golden", "other-model"]
        assert found(pool, status="in_progress") == ["leased", "split"]
        assert found(pool, status="resolved") == ["agreed"]

    def test_an_expired_lease_does_not_count_as_in_progress(self, pool, labeler):
        item = Item.objects.get(external_id="leased")
        Assignment.objects.create(
            uid=uuid.uuid4(),
            item=item,
            user=labeler,
            left_response=item.response_a,
            rubric_version=pool.rubric_version(),
            settings_version=pool.settings,
            expires_at=timezone.now() - timedelta(minutes=1),
        )
        assert "leased" in found(pool, status="unlabeled")

    def test_status_escalated_adjudicated_gold_excluded(self, pool):
        Item.objects.filter(external_id="split").update(escalated=True)
        Item.objects.filter(external_id="agreed").update(adjudicated=True)
        assert found(pool, status="escalated") == ["split"]
        assert found(pool, status="adjudicated") == ["agreed"]
        assert found(pool, status="gold") == ["golden"]
        assert found(pool, status="excluded") == ["gone"]

    def test_tag(self, pool):
        assert found(pool, tag="unsafe") == ["agreed", "split"]
        assert found(pool, tag="jailbreak") == ["split"]
        assert found(pool, tag="unsaf") == []  # a whole tag, not a substring

    def test_model_on_either_side(self, pool):
        assert found(pool, model="model-c") == ["other-model"]
        assert len(found(pool, model="model-a")) == 7

    def test_rubric_version(self, pool):
        assert found(pool, rubric_version="1") == ["agreed", "split"]
        assert found(pool, rubric_version="v1") == ["agreed", "split"]
        assert found(pool, rubric_version="2") == []

    def test_utility_and_risk_ranges_use_the_run_in_force(self, pool):
        old = scored(pool, {"fresh": (0.1, 0.1), "split": (0.1, 0.1)})
        scored(pool, {"fresh": (0.9, 0.2), "split": (0.5, 0.95), "agreed": (0.2, 0.5)})
        assert old.scores.count() == 2
        assert found(pool, utility_min="0.5") == ["fresh", "split"]
        assert found(pool, utility_min="0.4", utility_max="0.6") == ["split"]
        assert found(pool, risk_min="0.9") == ["split"]
        assert found(pool, risk_max="0.3") == ["fresh"]

    def test_has_disagreement_counts_differing_human_pairwise_answers_or_the_rule(self, pool):
        assert found(pool, disagreement="1") == ["split"]
        Escalation.objects.create(
            uid=uuid.uuid4(),
            campaign=pool,
            item=Item.objects.get(external_id="fresh"),
            reason=Escalation.Reason.RULE,
            rules=[{"rule": "disagreement", "value": 1.0, "threshold": 0.5}],
        )
        assert found(pool, disagreement="1") == ["fresh", "split"]

    def test_model_labels_do_not_make_a_disagreement(self, campaign):
        labels = [human("ext:x", "preference", "a"), {**human("judge", "preference", "b"), "kind": "model"}]
        import_pool(campaign, jsonl(pool_line("with-model", labels=labels)))
        assert found(campaign, disagreement="1") == []

    def test_labeled_by_a_labeler(self, pool, labeler):
        assignment = judge(labeler, pool)
        assert found(pool, labeled_by=labeler.username) == [assignment.item.external_id]
        assert found(pool, labeled_by="ext:y") == ["split"]
        assert found(pool, labeled_by="nobody") == []

    def test_filters_combine(self, pool):
        assert found(pool, tag="unsafe", disagreement="1") == ["split"]
        assert found(pool, tag="unsafe", status="unlabeled") == []

    def test_bad_values_are_reported_and_dropped(self):
        f = ItemFilter.from_params(
            {"status": "weird", "sort": "nope", "utility_min": "x", "risk_min": "2", "rubric_version": "abc"}
        )
        assert len(f.errors) == 5
        assert (f.status, f.sort, f.utility_min, f.risk_min, f.rubric_version) == ("", "-id", None, None, None)
        assert ItemFilter.from_params({"utility_min": "0.8", "utility_max": "0.2"}).errors

    def test_the_filter_round_trips_through_the_query_string(self):
        from django.http import QueryDict

        f = ItemFilter.from_params({"status": "resolved", "tag": "unsafe", "disagreement": "1", "sort": "-risk"})
        again = ItemFilter.from_params(QueryDict(f.querystring()))
        assert again == f
        assert f.as_params() == {"status": "resolved", "tag": "unsafe", "disagreement": "1", "sort": "-risk"}


class TestSearch:
    def test_it_finds_prompt_text_case_insensitively(self, pool):
        assert found(pool, q="SOURDOUGH") == ["other-model"]

    def test_it_finds_either_response(self, pool):
        assert found(pool, q="levain") == ["other-model"]
        assert found(pool, q="buy bread") == ["other-model"]
        assert found(pool, q="Answer B to split") == ["split"]

    def test_it_finds_an_external_id(self, pool):
        assert found(pool, q="golden") == ["golden"]

    def test_search_is_literal(self, pool):
        assert found(pool, q="%") == []
        assert found(pool, q="_") == []


class TestSortingAndPages:
    def test_each_sort_orders_as_promised(self, pool):
        scored(pool, {"fresh": (0.9, 0.1), "split": (0.5, 0.95), "agreed": (0.2, 0.5)})

        def order(sort):
            return [r.external_id for r in page(pool, ItemFilter(sort=sort)).rows]

        assert order("-utility")[:3] == ["fresh", "split", "agreed"]
        assert order("utility")[:3] == ["agreed", "split", "fresh"]
        assert order("utility")[3] == "golden"  # unscored items follow, newest first
        assert order("-risk")[:3] == ["split", "agreed", "fresh"]
        assert order("-judgments")[:2] == ["split", "agreed"]  # two each: the newer first
        newest = order("-id")
        assert newest == list(reversed(order("id")))
        assert newest[0] == "golden"

    @pytest.mark.parametrize("sort", list(item_browser.SORTS))
    def test_keyset_pages_cover_every_item_once_in_order(self, campaign, sort):
        import_pool(campaign, jsonl(*(pool_line(f"i{n:02}") for n in range(23))))
        # Ties in the sort value are broken by id: a run where many items share a utility.
        scored(campaign, {f"i{n:02}": (round((n % 4) / 4, 2), round((n % 3) / 3, 2)) for n in range(20)})
        everything = [r.id for r in page(campaign, ItemFilter(sort=sort), size=200).rows]
        walked, cursor = [], None
        while True:
            p = page(campaign, ItemFilter(sort=sort), after=cursor, size=5)
            walked += [r.id for r in p.rows]
            if not p.has_next:
                break
            cursor = p.next_cursor
        assert walked == everything and len(set(walked)) == 23

    def test_a_later_page_costs_the_same_queries_and_uses_no_offset(self, campaign):
        import_pool(campaign, jsonl(*(pool_line(f"i{n:02}") for n in range(30))))
        first = page(campaign, ItemFilter(), size=5)
        with CaptureQueriesContext(connection) as queries:
            later = page(campaign, ItemFilter(), after=first.next_cursor, size=5)
        assert len(queries) == 2  # the rows, the live leases of the page
        assert "OFFSET" not in queries[0]["sql"].upper()
        assert len(later.rows) == 5 and max(r.id for r in later.rows) < min(r.id for r in first.rows)

    def test_a_malformed_cursor_gives_the_first_page(self, pool):
        assert page(pool, ItemFilter(), after="garbage").rows == page(pool, ItemFilter()).rows

    def test_rows_carry_status_models_and_scores(self, pool):
        scored(pool, {"split": (0.5, 0.95)})
        rows = {r.external_id: r for r in page(pool, ItemFilter()).rows}
        assert rows["split"].status == "in_progress" and rows["split"].utility == 0.5
        assert rows["gone"].status == "excluded" and rows["fresh"].utility is None
        assert rows["other-model"].models == ("model-c", "model-a")


# -- bulk actions ------------------------------------------------------------------------------


def events(action):
    return FeedbackEvent.objects.filter(action=action)


class TestBulkActions:
    def test_exclude_and_return(self, pool, lead):
        targets = matching_ids(pool, ItemFilter.from_params({"tag": "unsafe"}))
        assert pool_actions.run_bulk(pool, "exclude", targets, user=lead, reason="broken prompts") == 2
        assert found(pool, status="excluded") == ["agreed", "gone", "split"]
        logged = events(FeedbackEvent.Action.EXCLUSION_CHANGED)
        assert logged.count() == 2
        event = logged.first()
        assert event.actor == lead and event.role == "lead" and event.feedback["reason"] == "broken prompts"
        assert event.settings_version == pool.settings and event.rubric_version == pool.rubric_version()
        assert pool_actions.run_bulk(pool, "include", targets, user=lead, reason="fixed") == 2
        assert found(pool, status="excluded") == ["gone"]

    def test_an_excluded_item_is_not_served(self, pool, labeler, lead):
        pool_actions.run_bulk(pool, "exclude", Item.objects.values_list("id", flat=True), user=lead, reason="stop")
        from reviews.labeling import queue

        assert queue.claim_next(pool, labeler).state == "empty"

    def test_mark_gold_takes_the_final_answers(self, pool, admin):
        agreed = Item.objects.get(external_id="agreed")
        assert pool_actions.run_bulk(pool, "gold", [agreed.id], user=admin, reason="clear case") == 1
        agreed.refresh_from_db()
        assert agreed.is_gold
        assert {"criterion": "preference", "value": "a"} in agreed.gold_answers
        assert {"criterion": "compliance", "response": "b", "value": "full_refusal"} in agreed.gold_answers
        event = events(FeedbackEvent.Action.GOLD_CHANGED).get()
        assert event.feedback["gold"] is True and event.feedback["answers"] == agreed.gold_answers

    def test_mark_gold_refuses_items_without_final_answers_and_writes_nothing(self, pool, admin):
        targets = Item.objects.filter(external_id__in=["agreed", "fresh"]).values_list("id", flat=True)
        with pytest.raises(PoolActionError, match="fresh"):
            pool_actions.run_bulk(pool, "gold", targets, user=admin, reason="x")
        assert not Item.objects.filter(external_id="agreed", is_gold=True).exists()
        assert not events(FeedbackEvent.Action.GOLD_CHANGED).exists()

    def test_unmark_gold(self, pool, admin):
        golden = Item.objects.get(external_id="golden")
        assert pool_actions.run_bulk(pool, "ungold", [golden.id], user=admin, reason="wrong key") == 1
        golden.refresh_from_db()
        assert not golden.is_gold and golden.gold_answers is None
        assert events(FeedbackEvent.Action.GOLD_CHANGED).get().feedback == {"gold": False, "reason": "wrong key"}

    def test_escalate_opens_escalations_with_the_current_risk(self, pool, lead):
        scored(pool, {"fresh": (0.9, 0.7)})
        targets = Item.objects.filter(external_id__in=["fresh", "split"]).values_list("id", flat=True)
        assert pool_actions.run_bulk(pool, "escalate", targets, user=lead, reason="looks like a jailbreak") == 2
        fresh = Escalation.objects.get(item__external_id="fresh")
        assert (fresh.status, fresh.reason, fresh.comment, fresh.severity, fresh.opened_by) == (
            "open",
            "other",
            "looks like a jailbreak",
            0.7,
            lead,
        )
        assert found(pool, status="escalated") == ["fresh", "split"]
        assert events(FeedbackEvent.Action.ESCALATED).count() == 2
        # Escalating again leaves open escalations alone.
        assert pool_actions.run_bulk(pool, "escalate", targets, user=lead, reason="again") == 0
        assert Escalation.objects.count() == 2

    def test_requeue_raises_the_target(self, pool, lead):
        agreed = Item.objects.get(external_id="agreed")
        assert pool_actions.requeue(pool, [agreed.id], user=lead, reason="recheck", request_run=False) == 1
        agreed.refresh_from_db()
        assert agreed.judgment_target == agreed.human_judgments + pool.settings.overlap_k

    def test_a_reason_is_required_and_nothing_is_written_without_one(self, pool, lead):
        before = FeedbackEvent.objects.count()
        for action in pool_actions.BULK_ACTIONS:
            with pytest.raises(PoolActionError, match="reason"):
                pool_actions.run_bulk(pool, action, Item.objects.values_list("id", flat=True), user=lead, reason=" ")
        assert FeedbackEvent.objects.count() == before
        assert not Item.objects.filter(excluded=True).exclude(external_id="gone").exists()

    def test_items_of_another_campaign_are_never_touched(self, pool, lead):
        from reviews.campaigns.setup import create_campaign

        other = create_campaign("other", "Other")
        ids_here = list(Item.objects.values_list("id", flat=True))
        assert pool_actions.run_bulk(other, "exclude", ids_here, user=lead, reason="x") == 0

    def test_a_failure_midway_rolls_back_everything(self, pool, admin):
        """Atomic: when the events cannot be written, no item changes either."""
        targets = list(Item.objects.filter(excluded=False).values_list("id", flat=True))
        # A real failure of the database (as a full disk would be): it refuses event rows.
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute(
                    "CREATE TEMP TRIGGER refuse_events BEFORE INSERT ON reviews_feedbackevent "
                    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            else:
                cursor.execute(
                    "CREATE FUNCTION refuse_events() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON reviews_feedbackevent "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_events()"
                )
        with pytest.raises(DatabaseError, match="disk full"):
            pool_actions.run_bulk(pool, "exclude", targets, user=admin, reason="x")
        assert Item.objects.filter(excluded=True).count() == 1


def test_every_bulk_action_on_a_whole_filter_of_10000_items(campaign, lead, admin):
    """The whole filter: 10,000 items (and more outside it), one event per item, for every action."""
    lines = [pool_line(f"big-{n}", tags=["bulk"]) for n in range(10_000)]
    lines += [pool_line(f"small-{n}", tags=["other"]) for n in range(50)]
    import_pool(campaign, jsonl(*lines))
    f = ItemFilter.from_params({"tag": "bulk"})
    targets = matching_ids(campaign, f)
    assert len(targets) == 10_000

    for action, expected in [("exclude", 10_000), ("include", 10_000), ("requeue", 10_000), ("escalate", 10_000)]:
        assert pool_actions.run_bulk(campaign, action, targets, user=lead, reason=f"bulk {action}") == expected
    assert events(FeedbackEvent.Action.EXCLUSION_CHANGED).count() == 20_000
    assert events(FeedbackEvent.Action.REQUEUED).count() == 10_000
    assert events(FeedbackEvent.Action.ESCALATED).count() == 10_000
    assert Escalation.objects.count() == 10_000
    assert Item.objects.filter(tags__icontains='"other"', escalated=True).count() == 0

    # Gold needs final answers, which these items lack: refused as a whole, nothing written.
    with pytest.raises(PoolActionError, match="10000 item"):
        pool_actions.run_bulk(campaign, "gold", targets, user=admin, reason="seed gold")
    assert not Item.objects.filter(is_gold=True).exists()
    Item.objects.filter(id__in=targets[:10]).update(is_gold=True, gold_answers=[])
    assert pool_actions.run_bulk(campaign, "ungold", targets, user=admin, reason="cleanup") == 10
    assert events(FeedbackEvent.Action.GOLD_CHANGED).count() == 10
    # Every event names its item once per action.
    assert events(FeedbackEvent.Action.ESCALATED).values("item").distinct().count() == 10_000


def test_mark_gold_on_a_whole_filter_of_resolved_items(campaign, admin):
    lines = [pool_line(f"r-{n}", labels=unanimous_labels("ext:h1", "ext:h2")) for n in range(300)]
    import_pool(campaign, jsonl(*lines))
    targets = matching_ids(campaign, ItemFilter.from_params({"status": "resolved"}))
    assert len(targets) == 300
    assert pool_actions.run_bulk(campaign, "gold", targets, user=admin, reason="gold set") == 300
    assert Item.objects.filter(is_gold=True).count() == 300
    assert events(FeedbackEvent.Action.GOLD_CHANGED).count() == 300
