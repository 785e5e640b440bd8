"""scoring.replay: ground truth from a pool file, the replay loop, and `manage.py replay`."""

import json
import math
import subprocess
import sys
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from scoring import replay
from tests.conftest import shared_data

WORDS = [f"topic{i}" for i in range(60)]


def human(annotator, criterion, value, response=None, kind="human"):
    label = {"annotator": annotator, "kind": kind, "criterion": criterion, "value": value}
    if response is not None:
        label["response"] = response
    return label


def line(i, labels=(), tags=("safe",), prompt_id=None, keys=("a", "b"), texts=None, **extra):
    texts = texts or (f"answer A {i}", f"answer B {i}")
    return {
        "external_id": f"item-{i}",
        "prompt_id": prompt_id or f"p-{i}",
        "prompt": f"Question {i}?",
        "responses": [{"key": k, "model": f"m-{k}", "text": t} for k, t in zip(keys, texts, strict=True)],
        "tags": list(tags),
        "labels": list(labels),
        **extra,
    }


def write(tmp_path, lines, name="pool.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return path


def synthetic_lines(n=400, n_risky=20, seed=0, prior=True):
    """Pairs with an obvious preference (a 'good' vs a 'bad' template, side shuffled), two humans agreeing.

    The first `n_risky` items are risk positives (an unsafe prompt fully complied with); when
    `prior`, their risk_prior is 0.9 and every other item's 0.
    """
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        topic = " ".join(rng.choice(WORDS, size=4))
        good = f"good clear correct answer about {topic} with steps and an example"
        bad = f"bad vague reply {rng.choice(WORDS)}"
        a_good = bool(rng.integers(2))
        texts = (good, bad) if a_good else (bad, good)
        winner = "a" if a_good else "b"
        labels = [human("h1", "preference", winner), human("h2", "preference", winner)]
        risky = i < n_risky
        if risky:
            labels += [human(h, "compliance", "full_compliance", response="a") for h in ("h1", "h2")]
        obj = line(i, labels, tags=("unsafe",) if risky else ("safe",), texts=texts)
        obj["prompt"] = f"Question about {topic}?"
        if prior:
            obj["risk_prior"] = 0.9 if risky else 0.0
        lines.append(obj)
    return lines


@pytest.fixture
def pool(tmp_path):
    return replay.load_pool(write(tmp_path, synthetic_lines()))


# -- ground truth ---------------------------------------------------------------------------


def test_ground_truth_is_the_lead_else_a_human_majority():
    two_a = [human("h1", "preference", "a"), human("h2", "preference", "a")]
    assert replay.ground_truth(two_a) == "a"
    assert replay.ground_truth([*two_a, human("lead", "preference", "b", kind="lead")]) == "b"
    assert replay.ground_truth([human("h1", "preference", "a"), human("h2", "preference", "b")]) is None
    assert replay.ground_truth([human("h1", "preference", "a")]) == "a"  # one person's preference data set
    assert replay.ground_truth([*two_a, human("h3", "preference", "b")]) == "a"  # 2 of 3
    assert replay.ground_truth([human("h1", "preference", "a"), human("h1", "preference", "b")]) == "b"  # one voter
    assert replay.ground_truth([human("m", "preference", "a", kind="model")] * 3) is None
    later = {**human("l2", "preference", "a", kind="lead"), "created_at": "2025-02-01T00:00:00Z"}
    earlier = {**human("l1", "preference", "b", kind="lead"), "created_at": "2025-01-01T00:00:00Z"}
    assert replay.ground_truth([later, earlier]) == replay.ground_truth([earlier, later]) == "a"


def test_pairwise_ground_truth_from_human_and_lead_labels(tmp_path):
    lines = [
        line(0, [human("h1", "preference", "a"), human("h2", "preference", "a")]),
        line(
            1,
            [
                human("h1", "preference", "a"),
                human("h2", "preference", "a"),
                human("x", "preference", "b", kind="lead"),
            ],
        ),
        line(2, [human("h1", "preference", "a"), human("h2", "preference", "b")]),  # split: unknown
        line(3, [human("h1", "preference", "tie"), human("h2", "preference", "tie")]),  # a tie
        line(4, [human("judge", "preference", "b", kind="model")]),  # people labeled this file: evidence only
    ]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.pair_truth[:2].tolist() == [1.0, 0.0]
    assert np.isnan(data.pair_truth[2]) and data.pair_truth[3] == 0.5 and np.isnan(data.pair_truth[4])
    assert "final answers" in data.source
    assert data.counts["known"] == 2 and data.counts["ties"] == 1
    assert len(data.block.pair_labels) == 1 and data.annotators == {0: "judge"}


def test_the_judge_rule_applies_only_to_a_file_without_people(tmp_path):
    judge = "alpacaeval:judge"
    lines = [
        line(0, [human(judge, "preference", "b", kind="model")]),
        line(1, [human(judge, "preference", "a", kind="model")]),
        line(2, [human(judge, "preference", "tie", kind="model")]),
        line(3),
    ]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.pair_truth[:3].tolist() == [0.0, 1.0, 0.5]
    assert np.isnan(data.pair_truth[3])
    assert judge in data.source
    assert len(data.block.pair_labels) == 0  # the judge is the truth here, so it is not evidence
    # Asked not to use model labels, or with a second judge (which one would decide?): unknown.
    assert np.isnan(replay.load_pool(write(tmp_path, lines), judge=None).pair_truth).all()
    two = [*lines, line(4, [human("other", "preference", "a", kind="model")])]
    assert np.isnan(replay.load_pool(write(tmp_path, two, "two.jsonl")).pair_truth).all()
    # One human label anywhere in the file and the judge no longer counts.
    with_person = [*lines, line(5, [human("h1", "preference", "a")])]
    assert np.isnan(replay.load_pool(write(tmp_path, with_person, "p.jsonl")).pair_truth[:2]).all()


@pytest.mark.parametrize(
    ("a", "b", "tags", "expected"),
    [
        ("full_compliance", "full_refusal", ["safe"], 1.0),
        ("full_refusal", "partial_refusal", ["safe"], 0.0),
        ("full_compliance", "full_refusal", ["unsafe"], 0.0),
        ("partial_refusal", "full_compliance", ["unsafe"], 1.0),
        ("full_refusal", "full_refusal", ["safe"], 0.5),
        ("full_compliance", None, ["safe"], math.nan),
        ("full_compliance", "full_refusal", ["xstest"], math.nan),  # neither safe nor unsafe
    ],
)
def test_compliance_preference_follows_the_rubric_guideline(a, b, tags, expected):
    got = replay.compliance_preference(a, b, tags)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_xstest_style_labels_apply_to_every_item_showing_the_response(tmp_path):
    def compliance(response, *values, lead=None):
        labels = [human(f"h{j}", "compliance", v, response=response) for j, v in enumerate(values)]
        if lead:
            labels.append(human("adj", "compliance", lead, response=response, kind="lead"))
        return labels

    labels = [
        *compliance("x", "full_compliance", "full_compliance"),
        *compliance("y", "full_refusal", "full_compliance", lead="full_refusal"),  # split, lead decides
        *compliance("z", "full_compliance", "full_refusal"),  # split, no lead: unknown
        human("gpt", "compliance", "full_refusal", response="x", kind="model"),  # never counts
    ]
    unsafe_labels = [
        *compliance("x", "full_refusal", "full_refusal"),
        *compliance("y", "full_compliance", "full_compliance"),
    ]
    lines = [
        line(0, labels, prompt_id="safe-p", keys=("x", "y")),  # labels on the first item showing x, y, z
        line(1, [], prompt_id="safe-p", keys=("y", "x")),
        line(2, [], prompt_id="safe-p", keys=("x", "z")),
        line(3, unsafe_labels, tags=("unsafe",), prompt_id="unsafe-p", keys=("x", "y")),
        line(4, [], tags=("unsafe",), prompt_id="other-p", keys=("x", "y")),  # same keys, other prompt
    ]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.pair_truth[:2].tolist() == [1.0, 0.0]  # safe: the complying response is preferred, on either side
    assert np.isnan(data.pair_truth[2])  # z has no final answer
    assert data.pair_truth[3] == 1.0  # unsafe: the refusal is preferred
    assert np.isnan(data.pair_truth[4])
    assert data.risk.tolist() == [False, False, False, True, False]
    assert {k: data.counts[k] for k in ("pairwise", "judge", "compliance", "known", "risk")} == {
        "pairwise": 0,
        "judge": 0,
        "compliance": 3,
        "known": 3,
        "risk": 1,
    }
    # One target per (prompt, response key): five for safe-p's x, y, z and the two other prompts'.
    assert data.counts["targets"] == 4  # x, y of safe-p and of unsafe-p have answers; z has none
    assert len(data.block.slot_labels) == 1  # the model label is evidence, never truth


def test_a_risk_option_in_the_final_answers_is_a_risk_positive(tmp_path):
    harm = [human("h1", "harm", "yes", response="a"), human("h2", "harm", "yes", response="a")]
    lines = [line(0, harm), line(1, harm[:1]), line(2, [])]
    rubric = {
        "criteria": [
            {"slug": "preference", "kind": "pairwise"},
            {
                "slug": "harm",
                "kind": "choice",
                "per_response": True,
                "options": [{"value": "no"}, {"value": "yes", "risk": True}],
            },
        ]
    }
    (tmp_path / "rubric.json").write_text(json.dumps(rubric))  # read from beside the pool file
    data = replay.load_pool(write(tmp_path, lines))
    assert data.risk.tolist() == [True, True, False]  # a single human label is that person's answer
    assert (data.block.risk_prior == 0).all()


def test_a_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(line(0)) + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2"):
        replay.load_pool(path)


# -- the loop -------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", replay.POLICIES)
def test_the_loop_spends_exactly_the_budget_and_curves_are_monotone(pool, policy):
    curve = replay.replay(pool, policy, 130, 50, 0.0, np.random.default_rng(0))
    assert curve.spent.tolist() == [0, 50, 100, 130]
    assert len(curve.picked) == 130 == len(set(curve.picked.tolist()))  # one label per item
    assert not set(curve.picked.tolist()) & set(curve.test.tolist())  # the held-out split is never picked
    assert len(curve.test) == round(0.2 * 400)
    assert (np.diff(curve.found) >= 0).all()
    assert (curve.found <= curve.total).all()
    assert curve.found[-1] == pool.risk[curve.picked].sum()
    assert curve.total == pool.risk.sum() - pool.risk[curve.test].sum()
    assert curve.accuracy[0] == 0.5  # untrained
    assert len(curve.pool_accuracy) == len(curve.spent) and (curve.pool_accuracy <= 1).all()


def test_spending_everything_finds_every_risk_positive(pool):
    curve = replay.replay(pool, "utility", 10_000, 100, 0.0, np.random.default_rng(1))
    assert curve.spent[-1] == len(pool) - len(curve.test)
    assert curve.found[-1] == curve.total > 0


def test_utility_finds_the_planted_risk_positives_faster_than_random(pool):
    for seed in range(3):
        utility = replay.replay(pool, "utility", 60, 20, 0.0, np.random.default_rng(seed))
        random = replay.replay(pool, "random", 60, 20, 0.0, np.random.default_rng(seed))
        assert utility.found[1] >= 0.8 * min(20, utility.total)  # the first batch goes to risk_prior 0.9
        assert (utility.found[1:] > random.found[1:]).all()


def test_without_a_prior_or_automated_labels_the_first_batch_has_no_risk_signal(tmp_path):
    data = replay.load_pool(write(tmp_path, synthetic_lines(prior=False)))
    curve = replay.replay(data, "utility", 20, 20, 0.0, np.random.default_rng(0))
    assert curve.found[1] < 10  # 20 picks among 400 items with 20 positives: no longer led to them


def test_an_automated_risk_label_leads_the_first_batch_to_risk(tmp_path):
    lines = synthetic_lines(prior=False)
    for obj in lines[:20]:  # a guardrail flags the risky items' complying response (and a few others)
        obj["labels"].append(human("guard", "compliance", "full_compliance", response="a", kind="model"))
    for obj in lines[20:]:
        obj["labels"].append(human("guard", "compliance", "full_refusal", response="a", kind="model"))
    for obj in lines[20:25]:
        obj["labels"][-1]["value"] = "full_compliance"
    for obj in lines[20:]:  # people's answers for the rest, so the criterion has both values
        obj["labels"] += [human(h, "compliance", "full_refusal", response="a") for h in ("h1", "h2")]
    data = replay.load_pool(write(tmp_path, lines))
    curve = replay.replay(data, "utility", 20, 20, 0.0, np.random.default_rng(0))
    random = replay.replay(data, "random", 20, 20, 0.0, np.random.default_rng(0))
    assert curve.found[1] >= 12 > random.found[1]


def test_ties_fall_at_random_not_on_the_first_lines(tmp_path):
    data = replay.load_pool(write(tmp_path, synthetic_lines(prior=False)))
    # Before anything is labeled every item has h = 1: a tie for the uncertainty policy.
    first = replay.replay(data, "uncertainty", 20, 20, 0.0, np.random.default_rng(0)).picked
    assert first.max() > 100


def test_the_reward_model_learns_and_noise_one_inverts_it(pool):
    clean = replay.replay(pool, "random", 200, 50, 0.0, np.random.default_rng(2))
    flipped = replay.replay(pool, "random", 200, 50, 1.0, np.random.default_rng(2))
    assert clean.accuracy[-1] >= 0.9
    assert flipped.accuracy[-1] < 0.5
    assert flipped.accuracy[0] == 0.5


@pytest.mark.parametrize("policy", replay.POLICIES)
def test_the_same_seed_gives_the_same_replay(pool, policy):
    one = replay.replay(pool, policy, 60, 30, 0.2, np.random.default_rng(5))
    two = replay.replay(pool, policy, 60, 30, 0.2, np.random.default_rng(5))
    assert np.array_equal(one.picked, two.picked)
    assert np.array_equal(one.accuracy, two.accuracy)
    assert np.array_equal(one.pool_accuracy, two.pool_accuracy)
    assert np.array_equal(one.found, two.found)
    other = replay.replay(pool, policy, 60, 30, 0.2, np.random.default_rng(6))
    assert not np.array_equal(one.picked, other.picked)


def test_every_policy_faces_the_same_held_out_split_for_a_seed(pool):
    tests = [set(replay.replay(pool, p, 50, 50, 0.0, np.random.default_rng(3)).test.tolist()) for p in replay.POLICIES]
    assert all(t == tests[0] for t in tests)


def test_a_set_without_risk_positives_reports_zero_of_zero(tmp_path):
    judge = [line(i, [human("j", "preference", "ab"[i % 2], kind="model")]) for i in range(60)]
    data = replay.load_pool(write(tmp_path, judge))
    summary = replay.replay_seeds(data, "utility", 40, 20, 0.0, seeds=2)
    assert summary.total_mean == 0
    assert summary.found_mean.tolist() == [0, 0, 0]
    assert summary.spent.tolist() == [0, 20, 40]


def test_unknown_policy_is_refused(pool):
    with pytest.raises(ValueError, match="unknown policy"):
        replay.replay(pool, "oracle", 10, 5, 0.0, np.random.default_rng(0))


# -- the command (no database: pytest-django refuses any query in tests without the db mark) ----


def table_rows(output: str) -> list[list[str]]:
    rows = [ln for ln in output.splitlines() if ln.startswith("| ") and not ln.startswith("| labels")]
    return [[cell.strip() for cell in ln.strip("|").split("|")] for ln in rows if "---" not in ln]


def test_the_command_prints_one_row_per_batch_for_each_policy(tmp_path):
    path = write(tmp_path, synthetic_lines(n=120, n_risky=10))
    out = StringIO()
    call_command("replay", str(path), "--budget", "60", "--batch", "20", "--seeds", "2", stdout=out)
    text = out.getvalue()
    assert "120 items" in text and "10 risk positives" in text
    for title in ("Pool-answer accuracy", "Reward-model accuracy", "Risk positives found"):
        assert title in text
    assert "Benign refusal" not in text  # the set has no compliance criterion with safe prompts
    rows = table_rows(text)
    n_policies = len(replay.POLICIES)
    assert len(rows) == 3 * 4 and all(len(r) == 1 + n_policies for r in rows)  # 3 tables × 4 points
    assert [r[0] for r in rows[:4]] == ["0", "20", "40", "60"]
    assert sum(ln.startswith("targets, ") for ln in text.splitlines()) == n_policies - 1  # each against random
    assert "risk found" in text and ("met " in text or "MISS" in text)
    single = StringIO()
    call_command("replay", str(path), "--budget", "40", "--policy", "random", "--seeds", "1", stdout=single)
    assert [(r[0], len(r)) for r in table_rows(single.getvalue())][:2] == [("0", 2), ("40", 2)]  # default batch 50


def test_the_command_refuses_a_missing_file_and_bad_options(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("replay", str(tmp_path / "absent.jsonl"), "--budget", "10", stdout=StringIO())
    path = write(tmp_path, synthetic_lines(n=30))
    with pytest.raises(CommandError, match="noise"):
        call_command("replay", str(path), "--budget", "10", "--noise", "1.5", stdout=StringIO())


def test_the_command_draws_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is a dev requirement for --plot")
    path = write(tmp_path, synthetic_lines(n=100, n_risky=5))
    png = tmp_path / "curves.png"
    call_command(
        "replay", str(path), "--budget", "40", "--batch", "20", "--seeds", "1", "--plot", str(png), stdout=StringIO()
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- pool answers and the benign refusal estimate -------------------------------------------


def refusal_lines(n=40, seed=0):
    """Safe prompts whose responses two people labeled; an automated labeler is wrong on a quarter."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        values = rng.choice(["full_compliance", "full_refusal"], size=2)
        labels = []
        for key, value in zip("ab", values, strict=True):
            labels += [human(h, "compliance", str(value), response=key) for h in ("h1", "h2")]
            wrong = "full_refusal" if value == "full_compliance" else "full_compliance"
            labels.append(human("auto", "compliance", wrong if i % 4 == 0 else str(value), response=key, kind="model"))
        out.append(line(i, labels, tags=("safe",)))
    return out


def test_pool_answers_start_at_the_automated_labels_and_end_at_the_truth(tmp_path):
    data = replay.load_pool(write(tmp_path, refusal_lines()))
    assert data.answer_criteria == [1] and not data.pair_answers
    curve = replay.replay(data, "random", 1000, 10, 0.0, np.random.default_rng(0), test_share=0.0)
    assert curve.pool_accuracy[0] == pytest.approx(0.75)  # the automated labeler alone: 3 of 4 right
    assert curve.pool_accuracy[-1] == 1.0  # everything labeled by people
    assert (np.diff(curve.pool_accuracy) >= -1e-9).all()
    assert curve.by_criterion["compliance"][-1] == 1.0
    # Benign refusal rate per model (m-a, m-b): at first the automated rates, at the end the true ones.
    truth = {}
    for obj in refusal_lines():
        for key in "ab":
            value = next(lab["value"] for lab in obj["labels"] if lab.get("response") == key)
            truth.setdefault(f"m-{key}", []).append(value == "full_refusal")
    assert set(curve.refusal_by_model) == set(truth)
    assert curve.refusal_error[-1] == 0.0 and curve.refusal_error[0] > 0


def test_utility_fixes_pool_answers_faster_where_automated_labelers_disagree(tmp_path):
    lines = refusal_lines(n=200, seed=1)
    for i, obj in enumerate(lines):  # a second automated labeler, wrong on another quarter
        for key in "ab":
            value = next(lab["value"] for lab in obj["labels"] if lab.get("response") == key)
            wrong = "full_refusal" if value == "full_compliance" else "full_compliance"
            obj["labels"].append(
                human("auto2", "compliance", wrong if i % 4 == 1 else value, response=key, kind="model")
            )
    data = replay.load_pool(write(tmp_path, lines))
    u = replay.replay_seeds(data, "uncertainty", 60, 20, 0.0, seeds=2)
    r = replay.replay_seeds(data, "random", 60, 20, 0.0, seeds=2)
    assert (u.pool_mean[1:] > r.pool_mean[1:]).all()


def test_verdicts_are_computed_from_the_curves():
    spent = np.array([0, 50, 100, 150, 200])

    def summary(policy, pool, acc, found, total=10.0):
        z = np.zeros(5)
        return replay.Summary(policy, spent, np.array(acc), z, np.array(pool), z, z, z, np.array(found), z, total, 1)

    random = summary("random", [0.5, 0.6, 0.7, 0.8, 0.9], [0.5, 0.6, 0.7, 0.75, 0.8], [0, 1, 2, 3, 4])
    good = summary("utility", [0.5, 0.7, 0.9, 0.95, 0.97], [0.5, 0.7, 0.8, 0.8, 0.82], [0, 3, 5, 6, 7])
    verdicts = {v.name.split(":")[0] + v.name.split(":")[1][:12]: v for v in replay.verdicts(good, random)}
    assert all(v.passed for v in verdicts.values()), [v.detail for v in verdicts.values()]
    bad = summary("utility", [0.5, 0.55, 0.72, 0.85, 0.88], [0.5, 0.5, 0.75, 0.8, 0.8], [0, 1, 2, 5, 6])
    failed = [v for v in replay.verdicts(bad, random) if not v.passed]
    assert {v.name.split(":")[0] for v in failed} == {"pool answers", "risk found", "reward model"}
    assert "does not reach it within the budget (0.880)" in failed[0].detail
    none = summary("utility", [0.5] * 5, [0.5] * 5, [0] * 5, total=0.0)
    assert any(v.passed is None for v in replay.verdicts(none, summary("random", [0.5] * 5, [0.5] * 5, [0] * 5, 0.0)))


@pytest.mark.slow
def test_the_command_replays_xstest():
    path = shared_data("xstest", "pool.jsonl")
    out = StringIO()
    call_command("replay", str(path), "--budget", "100", "--batch", "50", "--seeds", "1", stdout=out)
    text = out.getvalue()
    assert "1350 items" in text and "xstest:gpt4_classifier" in text
    assert "Benign refusal estimate" in text
    rows = table_rows(text)
    assert [r[0] for r in rows[:3]] == ["0", "50", "100"]
    found_rows = rows[-3:]
    for policy_found in found_rows[-1][1:]:
        found, total = (float(x) for x in policy_found.split(" / "))
        assert 0 <= found <= total


@pytest.mark.slow
def test_on_xstest_automated_labels_lead_utility_to_risk_and_to_the_pool_errors():
    data = replay.load_pool(shared_data("xstest", "pool.jsonl"))
    assert data.counts["risk"] == 137 and len(data.annotators) == 2
    u = replay.replay_seeds(data, "utility", 200, 50, 0.0, seeds=2)
    r = replay.replay_seeds(data, "random", 200, 50, 0.0, seeds=2)
    # The first batch already: the guardrails' "full compliance" on unsafe prompts points at harm.
    assert u.found_mean[1] >= 2 * r.found_mean[1]
    assert u.pool_mean[-1] > r.pool_mean[-1]
    # Those batches hold unsafe prompts only; the reward model does not carry "the refusal wins"
    # over to the safe prompts (most of the held-out pairs), so it is never below a coin flip.
    assert (u.accuracy_mean >= 0.5).all() and u.accuracy_mean[2] > 0.7


@pytest.mark.slow
def test_on_alpacaeval_the_judge_is_the_truth_and_the_reward_model_fills_in():
    data = replay.load_pool(shared_data("alpacaeval", "pool.jsonl"))
    assert "judge" in data.source and len(data.block.pair_labels) == 0 and data.pair_answers
    curve = replay.replay(data, "utility", 100, 50, 0.0, np.random.default_rng(0))
    assert curve.accuracy[-1] > 0.65  # length alone says ~0.74 of the judge's preferences
    assert curve.pool_accuracy[-1] > curve.pool_accuracy[0]


def test_the_numeric_core_and_the_replay_import_nothing_from_the_app():
    # scoring/ below the job layer is pure: importing it must not pull in Django or reviews/.
    script = (
        "import sys\n"
        "from scoring import diversity, evidence, features, models, pipeline, poolfile, replay, selection\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'reviews'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=".", check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
