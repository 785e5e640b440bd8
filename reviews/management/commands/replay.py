"""`manage.py replay DATASET.jsonl`: replay a label budget offline and print the learning curves.

Needs no database: the pool file is read directly (scoring.replay) and nothing is stored.
"""

import math
import time
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from scoring import replay

COLORS = {"utility": "tab:blue", "random": "tab:gray", "uncertainty": "tab:orange", "utility-fisher": "tab:green"}


class Command(BaseCommand):
    help = (
        "Replay labeling offline on a pool JSONL file: a simulated labeler answers from the file's labels, "
        "a policy picks items batch by batch, the models retrain; prints the pool's answer accuracy, the benign "
        "refusal estimate's error, risk positives found and reward-model accuracy against labels spent, and "
        "the targets of docs/replay.md."
    )
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="a pool file in the import format (FORMATS.md section 1)")
        parser.add_argument("--budget", type=int, required=True, help="labels to spend (one per item)")
        parser.add_argument("--policy", choices=[*replay.POLICIES, "all"], default="all")
        parser.add_argument("--batch", type=int, default=50, help="items picked per round, before retraining")
        parser.add_argument("--noise", type=float, default=0.0, help="probability that a labeler's answer is wrong")
        parser.add_argument("--seeds", type=int, default=5, help="replays per policy (seeds seed, seed+1, ...)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--audit-share", type=float, default=0.0, help="share of each utility batch drawn at random (campaign: 0.1)"
        )
        parser.add_argument("--rubric", help="the rubric JSON (default: rubric.json beside the pool file, if any)")
        parser.add_argument("--plot", metavar="FILE.png", help="also draw the curves into this PNG")

    def handle(self, dataset, budget, policy, batch, noise, seeds, seed, audit_share, rubric, plot, **options):
        if budget < 1 or batch < 1 or seeds < 1:
            raise CommandError("--budget, --batch and --seeds must be at least 1")
        if not 0.0 <= noise <= 1.0 or not 0.0 <= audit_share <= 1.0:
            raise CommandError("--noise and --audit-share must be in [0, 1]")
        path = Path(dataset)
        if not path.is_file():
            raise CommandError(f"{dataset}: no such file")
        rubric_data = None
        if rubric:
            try:
                rubric_data = orjson.loads(Path(rubric).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise CommandError(f"{rubric}: {exc}") from exc
        pyplot = _pyplot() if plot else None  # fail before the work, not after it
        started = time.perf_counter()
        try:
            data = replay.load_pool(path, rubric_data)
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{dataset}: {exc}") from exc
        policies = replay.POLICIES if policy == "all" else (policy,)
        summaries = [
            replay.replay_seeds(data, name, budget, batch, noise, seeds, seed, audit_share=audit_share)
            for name in policies
        ]
        elapsed = time.perf_counter() - started
        for line in _header(path, data, budget, batch, noise, seeds, seed, audit_share):
            self.stdout.write(line)
        for title, lines in tables(summaries):
            self.stdout.write("")
            self.stdout.write(title)
            self.stdout.write("")
            for line in lines:
                self.stdout.write(line)
        random = next((s for s in summaries if s.policy == "random"), None)
        if random is not None:
            for s in summaries:
                if s.policy == "random":
                    continue
                self.stdout.write("")
                self.stdout.write(f"targets, {s.policy} against random:")
                for v in replay.verdicts(s, random):
                    mark = "n/a " if v.passed is None else ("met " if v.passed else "MISS")
                    self.stdout.write(f"  {mark} {v.name}: {v.detail}")
        self.stdout.write("")
        self.stdout.write(f"({elapsed:.1f} s)")
        if plot:
            draw(pyplot, summaries, plot, f"{path.parent.name}/{path.name}", noise)
            self.stdout.write(f"plot written to {plot}")


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CommandError(
            "--plot needs matplotlib: pip install -r requirements-dev.txt (or run without --plot)"
        ) from exc
    return plt


def _header(path, data, budget, batch, noise, seeds, seed, audit_share) -> list[str]:
    c = data.counts
    answers = ", ".join(data.layout.criteria[j - 1].slug for j in data.answer_criteria)
    if data.pair_answers:
        answers = f"{answers}, preference" if answers else "preference"
    return [
        f"replay of {path}: {len(data)} items, {c['known']} with a decided preference ({c['ties']} ties), "
        f"{c['risk']} risk positives, {c['targets']} answered targets, {c['automated_labels']} automated labels",
        f"ground-truth preference: {data.source}",
        f"pool answers: {answers or 'none'}; automated labelers: {', '.join(data.annotators.values()) or 'none'}",
        f"budget {budget} labels in batches of {batch}; labeler noise {noise}; audit share {audit_share}; "
        f"seeds {seed}..{seed + seeds - 1}; held-out split: {replay.TEST_SHARE:.0%} of the decided preferences",
    ]


def _fmt(mean: float, sd: float, seeds: int, digits: int = 3, scale: float = 1.0) -> str:
    if math.isnan(mean):
        return "n/a"
    m, s = mean * scale, sd * scale
    return f"{m:.{digits}f}" if seeds == 1 else f"{m:.{digits}f} ± {s:.{digits}f}"


def _fmt_count(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def tables(summaries: list[replay.Summary]) -> list[tuple[str, list[str]]]:
    """Markdown tables, one per figure: labels spent, then each policy's mean ± sd over seeds."""
    first = summaries[0]
    figures = [
        ("Pool-answer accuracy (people where labeled, automated labels or the reward model elsewhere)", "pool", 1, 3),
        ("Benign refusal estimate: mean |error| over models, percentage points", "refusal", 100, 1),
        ("Reward-model accuracy (held-out split)", "accuracy", 1, 3),
    ]
    out = []
    for title, name, scale, digits in figures:
        if all(math.isnan(x) for x in getattr(first, f"{name}_mean")):
            continue
        rows = [["labels", *(s.policy for s in summaries)], ["---:"] * (len(summaries) + 1)]
        for j, spent in enumerate(first.spent):
            rows.append(
                [
                    str(int(spent)),
                    *(
                        _fmt(getattr(s, f"{name}_mean")[j], getattr(s, f"{name}_sd")[j], s.seeds, digits, scale)
                        for s in summaries
                    ),
                ]
            )
        out.append((title, ["| " + " | ".join(row) + " |" for row in rows]))
    rows = [["labels", *(s.policy for s in summaries)], ["---:"] * (len(summaries) + 1)]
    for j, spent in enumerate(first.spent):
        rows.append(
            [str(int(spent)), *(f"{_fmt_count(s.found_mean[j])} / {_fmt_count(s.total_mean)}" for s in summaries)]
        )
    out.append(("Risk positives found", ["| " + " | ".join(row) + " |" for row in rows]))
    return out


def draw(plt, summaries: list[replay.Summary], path: str, title: str, noise: float) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), dpi=110)
    panels = [
        (axes[0][0], "pool", "pool-answer accuracy", "Pool answers: people, then automated labels / reward model"),
        (axes[0][1], "found", "risk positives found", "Risk positives found"),
        (axes[1][0], "accuracy", "reward-model accuracy (held-out split)", "Reward model: held-out accuracy"),
        (axes[1][1], "refusal", "mean |error|, percentage points", "Benign refusal estimate per model: error"),
    ]
    seeds = summaries[0].seeds
    for ax, name, ylabel, panel_title in panels:
        for s in summaries:
            mean = getattr(s, f"{name}_mean").astype(float)
            sd = getattr(s, f"{name}_sd").astype(float)
            scale = 100.0 if name == "refusal" else 1.0
            color = COLORS.get(s.policy)
            ax.plot(s.spent, mean * scale, marker="o", markersize=3, color=color, label=s.policy)
            if seeds > 1:
                ax.fill_between(s.spent, (mean - sd) * scale, (mean + sd) * scale, color=color, alpha=0.12)
        ax.set(xlabel="labels spent", ylabel=ylabel, title=panel_title)
        ax.grid(alpha=0.3)
        if all(math.isnan(x) for x in getattr(summaries[0], f"{name}_mean")):
            ax.text(0.5, 0.5, "not measurable on this set", transform=ax.transAxes, ha="center")
        elif name != "found":
            ax.legend(loc="best")
    total = summaries[0].total_mean
    risk_ax = axes[0][1]
    if total > 0:
        risk_ax.axhline(total, color="black", linewidth=0.8, linestyle="--", label=f"all ({_fmt_count(total)})")
        risk_ax.set_ylim(bottom=0)
        risk_ax.legend(loc="upper left")
    else:
        risk_ax.text(0.5, 0.5, "no risk positives in this set", transform=risk_ax.transAxes, ha="center")
    axes[1][0].axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    band = f"; bands ±1 sd over {seeds} seeds" if seeds > 1 else ""
    fig.suptitle(f"Replay of {title}: labeler noise {noise}{band}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
