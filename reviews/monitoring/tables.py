"""The dashboards' tables and charts, built from a stored report (reviews.monitoring.figures).

A page shows tables and charts; each chart draws one table's rows, and each table downloads
as CSV or JSON with exactly the numbers of the page (the page shows them rounded; every cell
also carries its exact value in data-value).
"""

import csv
import io
import json
from dataclasses import dataclass, field

from django.utils.safestring import SafeString

from reviews.monitoring import charts

PAGES = {
    "overview": "Overview",
    "quality": "Quality",
    "slices": "Safety slices",
    "automated": "Automated labelers",
    "leaderboard": "Leaderboard",
    "scoring": "Scoring",
    "series": "Time series",
}


@dataclass
class Column:
    key: str
    label: str
    fmt: str = "text"  # text, int, rate (3 decimals), pct (percent, 1 decimal), signed, auto (int or rate)


@dataclass
class Table:
    name: str
    title: str
    columns: list[Column]
    rows: list[dict]
    note: str = ""
    chart: SafeString | None = None
    extra: dict = field(default_factory=dict)

    def display_rows(self) -> list[list[dict]]:
        return [[cell(row.get(c.key), c.fmt) for c in self.columns] for row in self.rows]

    def as_json(self) -> dict:
        return {
            "table": self.name,
            "title": self.title,
            "columns": [c.key for c in self.columns],
            "rows": [{c.key: row.get(c.key) for c in self.columns} for row in self.rows],
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([c.key for c in self.columns])
        for row in self.rows:
            writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in self.columns])
        return out.getvalue()


def format_value(value, fmt: str) -> str:
    """How the page shows a number (the download keeps it exact)."""
    if value is None:
        return "—"
    if fmt == "int" or (fmt == "auto" and isinstance(value, int)):
        return f"{value:,}"
    if fmt == "auto" and isinstance(value, float):
        return f"{value:.3f}"
    if fmt == "rate":
        return f"{value:.3f}"
    if fmt == "pct":
        return f"{100 * value:.1f}%"
    if fmt == "signed":
        return f"{value:+.3f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def cell(value, fmt: str) -> dict:
    return {"text": format_value(value, fmt), "raw": json.dumps(value), "num": fmt != "text"}


# --- pages ---------------------------------------------------------------------------------


def overview_tables(report: dict) -> list[Table]:
    ov = report["overview"]
    figures = [
        {"figure": "queue depth (items in the active set still open)", "value": ov["queue_depth"]},
        {"figure": "open items", "value": ov["open_items"]},
        {"figure": "resolved items", "value": ov["resolved_items"]},
        {"figure": "judgments spent (app, human)", "value": ov["budget_spent"]},
        {"figure": "budget total", "value": ov["budget_total"]},
        {"figure": "budget burn", "value": ov["budget_burn"]},
        {"figure": "spent today", "value": ov["spent_today"]},
        {"figure": "daily cap burn", "value": ov["daily_burn"]},
        {"figure": "judgments per day (14 days)", "value": ov["judgments_per_day"]},
        {"figure": "median seconds per judgment", "value": ov["time_per_judgment"]["median_s"]},
        {"figure": "open escalations", "value": ov["open_escalations"]},
        {"figure": f"overdue escalations (open > {ov['sla_hours']:g} h)", "value": ov["overdue_escalations"]},
    ]
    throughput = Table(
        "throughput",
        "Judgments per day",
        [Column("day", "Day"), Column("judgments", "Judgments", "int")],
        ov["throughput"],
    )
    throughput.chart = charts.bars(
        "Judgments per day", [(r["day"], r["judgments"]) for r in ov["throughput"]], fmt="{:.0f}"
    )
    esc = report["escalations"]
    by_reason = Table(
        "escalations_by_reason",
        "Escalations by reason",
        [Column("reason", "Reason"), Column("count", "Escalations", "int"), Column("rate", "Per judged item", "rate")],
        esc["by_reason"],
        note=f"{esc['judged_items']} items have human judgments.",
    )
    by_rule = Table(
        "escalations_by_rule",
        "Escalations by rule",
        [Column("rule", "Rule"), Column("count", "Escalations", "int"), Column("rate", "Per judged item", "rate")],
        esc["by_rule"],
    )
    return [
        Table("figures", "Figures", [Column("figure", "Figure"), Column("value", "Value", "auto")], figures),
        throughput,
        by_reason,
        by_rule,
    ]


def quality_tables(report: dict) -> list[Table]:
    agreement = [
        {
            "criterion": c,
            "level": a["level"],
            "units": a["units"],
            "annotators": a["annotators"],
            "krippendorff_alpha": a["krippendorff_alpha"],
            "raw_agreement": a["raw_agreement"],
        }
        for c, a in sorted(report["agreement"].items())
    ]
    kappas = [
        {"criterion": c, "pair": pair, "cohen_kappa": k, "n": a["cohen_kappa_n"].get(pair)}
        for c, a in sorted(report["agreement"].items())
        for pair, k in sorted(a["cohen_kappa"].items())
    ]
    t_agreement = Table(
        "agreement",
        "Agreement per criterion (human annotators)",
        [
            Column("criterion", "Criterion"),
            Column("level", "Level"),
            Column("units", "Units with ≥ 2 answers", "int"),
            Column("annotators", "Annotators", "int"),
            Column("krippendorff_alpha", "Krippendorff's α", "rate"),
            Column("raw_agreement", "Raw agreement", "rate"),
        ],
        agreement,
    )
    t_agreement.chart = charts.bars(
        "Krippendorff's α per criterion", [(r["criterion"], r["krippendorff_alpha"]) for r in agreement], domain=(0, 1)
    )
    t_kappa = Table(
        "kappa",
        "Cohen's κ per labeler pair",
        [
            Column("criterion", "Criterion"),
            Column("pair", "Pair"),
            Column("cohen_kappa", "κ", "rate"),
            Column("n", "Shared units", "int"),
        ],
        kappas,
        note="Pairs with at least 5 shared units.",
    )
    labelers = Table(
        "labelers",
        "Labelers: accuracy, overturn rate, gold accuracy",
        [
            Column("annotator", "Annotator"),
            Column("answers", "Answers", "int"),
            Column("compared", "With a final answer", "int"),
            Column("accuracy", "Agrees with final", "pct"),
            Column("adjudicated", "Adjudicated by a lead", "int"),
            Column("overturned", "Overturned", "int"),
            Column("overturn_rate", "Overturn rate", "pct"),
            Column("overturn_low", "95% low", "pct"),
            Column("overturn_high", "95% high", "pct"),
            Column("gold_accuracy", "Gold accuracy", "pct"),
            Column("gold_compared", "Gold answers", "int"),
        ],
        report["labelers"],
        note="Overturn rate: share of the labeler's answers on units a lead adjudicated that the lead's answer "
        "contradicts (Wilson interval).",
    )
    bias = [{"criterion": c, **b} for c, b in sorted(report["position_bias"].items())]
    t_bias = Table(
        "position_bias",
        "Position bias",
        [
            Column("criterion", "Criterion"),
            Column("estimate", "Left-hand share", "pct"),
            Column("low", "95% low", "pct"),
            Column("high", "95% high", "pct"),
            Column("n", "Decisive choices", "int"),
        ],
        bias,
        note="Share of decisive pairwise choices made in the app that went to the response shown on the left; "
        "50% is unbiased. Imported judgments do not record a side.",
    )
    return [t_agreement, t_kappa, labelers, t_bias]


def slice_tables(report: dict, tag: str | None = None) -> list[Table]:
    rows = []
    for criterion, by_model in sorted(report["slice_counts"].items()):
        for model, by_tag in sorted(by_model.items()):
            for t, counts in sorted(by_tag.items(), key=lambda kv: (kv[0] != "*", kv[0])):
                if tag and t != tag:
                    continue
                total = sum(counts.values())
                for value, n in sorted(counts.items()):
                    rows.append(
                        {
                            "criterion": criterion,
                            "model": model,
                            "tag": t,
                            "value": value,
                            "count": n,
                            "total": total,
                            "share": n / total,
                        }
                    )
    slices = Table(
        "slices",
        "Final answers per criterion × model × tag",
        [
            Column("criterion", "Criterion"),
            Column("model", "Model"),
            Column("tag", "Tag"),
            Column("value", "Answer"),
            Column("count", "Count", "int"),
            Column("total", "Responses", "int"),
            Column("share", "Share", "pct"),
        ],
        rows,
        note="Per-response final answers; a response counts under every tag of the items that show it; * is all.",
    )
    estimates = [r for r in report["pool_estimates"] if not tag or r["tag"] == tag]
    census = report["selection_mode"] == "census"
    pool = Table(
        "pool_estimates",
        "Pool-level estimates",
        [
            Column("criterion", "Criterion"),
            Column("tag", "Tag"),
            Column("value", "Answer"),
            Column("units", "Decided", "int"),
            Column("raw_utility", "Raw (utility-chosen)", "pct"),
            Column("raw_n", "n", "int"),
            Column("audit", "Audit sample", "pct"),
            Column("audit_low", "95% low", "pct"),
            Column("audit_high", "95% high", "pct"),
            Column("audit_n", "n", "int"),
            Column("ipw", "IPW estimate", "pct"),
            Column("ipw_low", "95% low", "pct"),
            Column("ipw_high", "95% high", "pct"),
            Column("ipw_n_eff", "Effective n", "rate"),
        ],
        estimates,
        note=(
            "This pool was imported with its labels and nothing was served by utility: it is a census, so the IPW "
            "column is the pool's own share (every unit weighs 1) and its interval the binomial one."
            if census
            else "Raw: share on the items chosen by utility (a biased sample). Audit: items drawn uniformly at random "
            "(Wilson interval). IPW: every decided unit weighted by 1 / its selection probability (Hájek estimator, "
            "Wilson interval at Kish's effective n)."
        ),
    )
    return [slices, pool]


def slice_charts(report: dict, tag: str) -> list[tuple[str, SafeString]]:
    """One stacked bar chart per criterion: each model's final answers under the tag."""
    out = []
    for criterion, by_model in sorted(report["slice_counts"].items()):
        values = sorted({v for by_tag in by_model.values() for v in by_tag.get(tag, {})})
        rows = []
        for model, by_tag in sorted(by_model.items()):
            counts = by_tag.get(tag)
            if counts:
                total = sum(counts.values())
                rows.append((model, [counts.get(v, 0) / total for v in values]))
        out.append((criterion, charts.stacked(f"{criterion} answers per model, tag {tag}", rows, values)))
    return out


def automated_tables(report: dict) -> list[Table]:
    detectors = Table(
        "detectors",
        "Automated labelers as detectors",
        [
            Column("annotator", "Annotator"),
            Column("criterion", "Criterion"),
            Column("positive", "Positive class"),
            Column("n", "Compared", "int"),
            Column("fpr", "False-positive rate", "pct"),
            Column("fnr", "False-negative rate", "pct"),
            Column("precision", "Precision", "pct"),
            Column("recall", "Recall", "pct"),
            Column("fnr_pool", "FNR, pool estimate", "pct"),
            Column("fnr_pool_low", "95% low", "pct"),
            Column("fnr_pool_high", "95% high", "pct"),
        ],
        report["detectors"],
        note="Against the final answers. Positive class: every option but the rubric's first (for compliance: "
        "full or partial refusal). The pool estimate weights each unit by 1 / its selection probability.",
    )
    detectors.chart = charts.bars(
        "False-negative rate per automated labeler",
        [(f"{d['annotator']} · {d['criterion']}", d["fnr"]) for d in report["detectors"]],
        domain=(0, 1),
    )
    per_option = [
        {"annotator": name, "criterion": criterion, "option": option, **rates}
        for name, by_criterion in sorted(report["automated_labelers"].items())
        for criterion, by_option in sorted(by_criterion.items())
        for option, rates in sorted(by_option.items())
    ]
    one_vs_rest = Table(
        "one_vs_rest",
        "Each option against the rest",
        [
            Column("annotator", "Annotator"),
            Column("criterion", "Criterion"),
            Column("option", "Option"),
            Column("n", "Compared", "int"),
            Column("fpr", "FPR", "pct"),
            Column("fnr", "FNR", "pct"),
            Column("precision", "Precision", "pct"),
            Column("recall", "Recall", "pct"),
        ],
        per_option,
    )
    g = report["guardrails"]
    guard = Table(
        "guardrails",
        "Guardrail thresholds (the items' risk prior)",
        [
            Column("threshold", "Flag when risk prior ≥", "rate"),
            Column("n", "Items", "int"),
            Column("fpr", "FPR", "pct"),
            Column("fnr", "FNR", "pct"),
            Column("precision", "Precision", "pct"),
            Column("recall", "Recall", "pct"),
        ],
        g["thresholds"],
        note=f"Against items whose final answers are decided: {g['risky_items']} of {g['decided_items']} carry a "
        f"risk outcome. The risk rule fired {g['risk_rule_escalations']} escalations; its precision: "
        + (
            "n/a"
            if g["risk_rule_precision"]["estimate"] is None
            else f"{100 * g['risk_rule_precision']['estimate']:.1f}%"
        )
        + ".",
    )
    calib = Table(
        "risk_calibration",
        "Risk score calibration (run in force)",
        [
            Column("low", "Bin from", "rate"),
            Column("high", "to", "rate"),
            Column("n", "Items", "int"),
            Column("predicted", "Mean risk", "rate"),
            Column("observed", "Observed risk share", "rate"),
        ],
        g["risk_calibration"]["bins"],
        note="In-sample: the risk model trains on these resolved items. ECE "
        + ("n/a" if g["risk_calibration"]["ece"] is None else f"{g['risk_calibration']['ece']:.3f}")
        + ", Brier "
        + ("n/a" if g["risk_calibration"]["brier"] is None else f"{g['risk_calibration']['brier']:.3f}")
        + ".",
    )
    return [detectors, one_vs_rest, guard, calib]


LEADERBOARD_COLUMNS = [
    Column("rank", "Rank", "int"),
    Column("model", "Model"),
    Column("strength", "Strength (log)", "signed"),
    Column("low", "95% low", "signed"),
    Column("high", "95% high", "signed"),
    Column("wins", "Wins", "int"),
    Column("losses", "Losses", "int"),
    Column("ties", "Ties", "int"),
]


def _board_table(name: str, title: str, board: list[dict], source: str) -> Table:
    rows = [{"rank": n + 1, **row} for n, row in enumerate(board)]
    t = Table(
        name,
        title,
        LEADERBOARD_COLUMNS,
        rows,
        note=f"Bradley-Terry strengths (mean 0) from {source}, percentile bootstrap intervals over 200 resamples "
        "of the comparisons.",
    )
    t.chart = charts.bars(
        f"Strength per model: {title}",
        [(r["model"], r["strength"]) for r in rows],
        intervals=[(r["low"], r["high"]) for r in rows],
        fmt="{:+.3f}",
    )
    return t


def leaderboard_tables(report: dict) -> list[Table]:
    tables = [
        _board_table(
            f"leaderboard-{criterion}",
            f"Leaderboard: {criterion}",
            board,
            report["leaderboard_source"].get(criterion, ""),
        )
        for criterion, board in sorted(report["leaderboard"].items())
    ]
    # Each automated judge's own ranking, beside the one from the final answers.
    for n, (annotator, boards) in enumerate(sorted(report.get("leaderboard_by_annotator", {}).items())):
        for criterion, board in sorted(boards.items()):
            if report["leaderboard_source"].get(criterion) == f"model labels: {annotator}":
                continue  # already the main board
            tables.append(
                _board_table(
                    f"judge{n + 1}-{criterion}",
                    f"{criterion} by {annotator}",
                    board,
                    f"the labels of {annotator} (an automated labeler)",
                )
            )
    return tables


def scoring_tables(report: dict) -> list[Table]:
    sc = report["scoring"]
    hist = Table(
        "utility_histogram",
        "Utility distribution (run in force)",
        [Column("low", "From", "rate"), Column("high", "To", "rate"), Column("items", "Items", "int")],
        sc["utility_histogram"],
        note="n {n}, mean {mean}, median {median}".format(
            n=sc["utility"]["n"],
            mean="n/a" if sc["utility"]["mean"] is None else f"{sc['utility']['mean']:.3f}",
            median="n/a" if sc["utility"]["median"] is None else f"{sc['utility']['median']:.3f}",
        ),
    )
    hist.chart = charts.histogram(
        "Utility distribution", [(r["low"], r["high"], r["items"]) for r in sc["utility_histogram"]]
    )
    runs = Table(
        "runs",
        "Scoring runs",
        [
            Column("run", "Run", "int"),
            Column("finished_at", "Finished"),
            Column("trigger", "Trigger"),
            Column("items", "Items", "int"),
            Column("seconds", "Seconds", "rate"),
            Column("selected", "Selected", "int"),
            Column("audit", "Audit picks", "int"),
            Column("reward_accuracy", "Reward model held-out accuracy", "pct"),
            Column("risk_accuracy", "Risk model held-out accuracy", "pct"),
        ],
        sc["runs"],
    )
    runs.chart = charts.line(
        "Reward model held-out accuracy per run", [(f"run {r['run']}", r["reward_accuracy"]) for r in sc["runs"]]
    )
    return [hist, runs]


def series_table(name: str, slice_: str, points: list[dict]) -> Table:
    t = Table(
        "series",
        f"{name} {slice_}".strip(),
        [Column("computed_at", "Computed at"), Column("value", "Value", "rate")],
        points,
    )
    t.chart = charts.line(t.title, [(p["computed_at"][:16].replace("T", " "), p["value"]) for p in points])
    return t


def tables_for(page: str, report: dict, *, tag: str | None = None) -> list[Table]:
    """The tables of a dashboard page (the download views use the same function)."""
    builders = {
        "overview": overview_tables,
        "quality": quality_tables,
        "slices": lambda r: slice_tables(r, tag),
        "automated": automated_tables,
        "leaderboard": leaderboard_tables,
        "scoring": scoring_tables,
    }
    return builders[page](report)
