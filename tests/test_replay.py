"""scoring.replay: ground truth from a pool file, the replay loop, and `manage.py replay`."""

import json
import math
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


def test_final_answer_lead_wins_then_unanimous_humans():
    two_a = [human("h1", "preference", "a"), human("h2", "preference", "a")]
    assert replay.final_answer(two_a) == "a"
    assert replay.final_answer([*two_a, human("lead", "preference", "b", kind="lead")]) == "b"
    assert replay.final_answer([human("h1", "preference", "a"), human("h2", "preference", "b")]) is None
    assert replay.final_answer([human("h1", "preference", "a")]) is None  # fewer than k = 2
    assert replay.final_answer([human("h1", "preference", "a"), human("h1", "preference", "a")]) is None  # one voter
    assert replay.final_answer([human("m", "preference", "a", kind="model")] * 3) is None
    later = {**human("l2", "preference", "a", kind="lead"), "created_at": "2025-02-01T00:00:00Z"}
    earlier = {**human("l1", "preference", "b", kind="lead"), "created_at": "2025-01-01T00:00:00Z"}
    assert replay.final_answer([later, earlier]) == replay.final_answer([earlier, later]) == "a"


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
        line(3, [human("h1", "preference", "tie"), human("h2", "preference", "tie")]),  # tie: no preference
        line(4, [human("judge", "preference", "b", kind="model")]),  # people labeled this file: ignored
    ]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.pref[:2].tolist() == [1.0, 0.0]
    assert np.isnan(data.pref[2:]).all()
    assert "final answers" in data.source
    assert data.counts["known"] == 2


def test_the_judge_rule_applies_only_to_a_file_without_people(tmp_path):
    judge = "alpacaeval:judge"
    lines = [
        line(0, [human(judge, "preference", "b", kind="model")]),
        line(1, [human(judge, "preference", "a", kind="model")]),
        line(2, [human(judge, "preference", "tie", kind="model")]),
        line(3),
    ]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.pref[:2].tolist() == [0.0, 1.0]
    assert np.isnan(data.pref[2:]).all()
    assert judge in data.source
    # Asked not to use model labels, or with a second judge (which one would decide?): unknown.
    assert np.isnan(replay.load_pool(write(tmp_path, lines), judge=None).pref).all()
    two = [*lines, line(4, [human("other", "preference", "a", kind="model")])]
    assert np.isnan(replay.load_pool(write(tmp_path, two, "two.jsonl")).pref).all()
    # One human label anywhere in the file and the judge no longer counts.
    with_person = [*lines, line(5, [human("h1", "preference", "a")])]
    assert np.isnan(replay.load_pool(write(tmp_path, with_person, "p.jsonl")).pref[:2]).all()


@pytest.mark.parametrize(
    ("a", "b", "tags", "expected"),
    [
        ("full_compliance", "full_refusal", ["safe"], 1.0),
        ("full_refusal", "partial_refusal", ["safe"], 0.0),
        ("full_compliance", "full_refusal", ["unsafe"], 0.0),
        ("partial_refusal", "full_compliance", ["unsafe"], 1.0),
        ("full_refusal", "full_refusal", ["safe"], math.nan),
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
    assert data.pref[:2].tolist() == [1.0, 0.0]  # safe: the complying response is preferred, on either side
    assert np.isnan(data.pref[2])  # z has no final answer
    assert data.pref[3] == 1.0  # unsafe: the refusal is preferred
    assert np.isnan(data.pref[4])
    assert data.risk.tolist() == [False, False, False, True, False]
    assert data.counts == {"pairwise": 0, "judge": 0, "compliance": 3, "known": 3, "risk": 1}


def test_a_risk_option_in_the_final_answers_is_a_risk_positive(tmp_path):
    harm = [human("h1", "harm", "yes", response="a"), human("h2", "harm", "yes", response="a")]
    lines = [line(0, harm), line(1, harm[:1]), line(2, [])]
    data = replay.load_pool(write(tmp_path, lines))
    assert data.risk.tolist() == [True, False, False]
    assert (data.risk_prior == 0).all()


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


def test_without_a_prior_the_first_batch_has_no_risk_signal(tmp_path):
    data = replay.load_pool(write(tmp_path, synthetic_lines(prior=False)))
    curve = replay.replay(data, "utility", 20, 20, 0.0, np.random.default_rng(0))
    assert curve.found[1] < 10  # 20 picks among 400 items with 20 positives: no longer led to them


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
    assert np.array_equal(one.found, two.found)
    other = replay.replay(pool, policy, 60, 30, 0.2, np.random.default_rng(6))
    assert not np.array_equal(one.picked, other.picked)


def test_every_policy_faces_the_same_held_out_split_for_a_seed(pool):
    tests = [set(replay.replay(pool, p, 50, 50, 0.0, np.random.default_rng(3)).test.tolist()) for p in replay.POLICIES]
    assert tests[0] == tests[1] == tests[2]


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
    rows = table_rows(text)
    assert [r[0] for r in rows] == ["0", "20", "40", "60"]
    assert all(len(r) == 7 for r in rows)  # labels, 3 accuracies, 3 risk counts
    assert rows[0][1] == "0.500 ± 0.000"
    single = StringIO()
    call_command("replay", str(path), "--budget", "40", "--policy", "random", "--seeds", "1", stdout=single)
    assert [(r[0], len(r)) for r in table_rows(single.getvalue())] == [("0", 3), ("40", 3)]  # default batch 50


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


@pytest.mark.slow
def test_the_command_replays_xstest():
    path = shared_data("xstest", "pool.jsonl")
    out = StringIO()
    call_command("replay", str(path), "--budget", "100", "--batch", "50", "--seeds", "1", stdout=out)
    text = out.getvalue()
    assert "1350 items" in text
    rows = table_rows(text)
    assert [r[0] for r in rows] == ["0", "50", "100"]
    for policy_found in rows[-1][4:]:
        found, total = (float(x) for x in policy_found.split(" / "))
        assert 0 <= found <= total
