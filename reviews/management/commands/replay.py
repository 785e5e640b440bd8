"""`manage.py replay DATASET.jsonl`: replay a label budget offline and print the learning curves.

Needs no database: the pool file is read directly (scoring.replay) and nothing is stored.
"""

import math
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from scoring import replay

COLORS = {"utility": "tab:blue", "random": "tab:gray", "uncertainty": "tab:orange"}


class Command(BaseCommand):
    help = (
        "Replay labeling offline on a pool JSONL file: simulated labelers answer from the file's labels, "
        "a policy picks items batch by batch, the models retrain; prints reward-model accuracy on a held-out "
        "split and risk positives found against labels spent."
    )
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="a pool file in the import format (FORMATS.md section 1)")
        parser.add_argument("--budget", type=int, required=True, help="labels to spend (one per item)")
        parser.add_argument("--policy", choices=[*replay.POLICIES, "all"], default="all")
        parser.add_argument("--batch", type=int, default=50, help="items picked per round, before retraining")
        parser.add_argument("--noise", type=float, default=0.0, help="probability that a labeler flips the answer")
        parser.add_argument("--seeds", type=int, default=3, help="replays per policy (seeds seed, seed+1, ...)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--audit-share", type=float, default=0.0, help="share of each utility batch drawn at random (campaign: 0.1)"
        )
        parser.add_argument("--plot", metavar="FILE.png", help="also draw the curves into this PNG")

    def handle(self, dataset, budget, policy, batch, noise, seeds, seed, audit_share, plot, **options):
        if budget < 1 or batch < 1 or seeds < 1:
            raise CommandError("--budget, --batch and --seeds must be at least 1")
        if not 0.0 <= noise <= 1.0 or not 0.0 <= audit_share <= 1.0:
            raise CommandError("--noise and --audit-share must be in [0, 1]")
        path = Path(dataset)
        if not path.is_file():
            raise CommandError(f"{dataset}: no such file")
        pyplot = _pyplot() if plot else None  # fail before the work, not after it
        started = time.perf_counter()
        try:
            data = replay.load_pool(path)
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
        self.stdout.write("")
        for line in table(summaries):
            self.stdout.write(line)
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
    return [
        f"replay of {path}: {len(data)} items, {c['known']} with a known preference, {c['risk']} risk positives",
        f"ground-truth preference: {data.source}",
        f"budget {budget} labels in batches of {batch}; labeler noise {noise}; audit share {audit_share}; "
        f"seeds {seed}..{seed + seeds - 1}; held-out split: {replay.TEST_SHARE:.0%} of the known preferences",
    ]


def _fmt_acc(mean: float, sd: float, seeds: int) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f}" if seeds == 1 else f"{mean:.3f} ± {sd:.3f}"


def _fmt_count(x: float) -> str:
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


def _fmt_found(mean: float, total: float) -> str:
    return f"{_fmt_count(mean)} / {_fmt_count(total)}"


def table(summaries: list[replay.Summary]) -> list[str]:
    """A Markdown table: labels spent, then accuracy (mean ± sd over seeds) and risk positives per policy."""
    names = [s.policy for s in summaries]
    head = ["labels", *(f"accuracy: {n}" for n in names), *(f"risk found: {n}" for n in names)]
    rows = [head, ["---:"] * len(head)]
    for j, spent in enumerate(summaries[0].spent):
        rows.append(
            [
                str(int(spent)),
                *(_fmt_acc(s.accuracy_mean[j], s.accuracy_sd[j], s.seeds) for s in summaries),
                *(_fmt_found(s.found_mean[j], s.total_mean) for s in summaries),
            ]
        )
    return ["| " + " | ".join(row) + " |" for row in rows]


def draw(plt, summaries: list[replay.Summary], path: str, title: str, noise: float) -> None:
    fig, (acc_ax, risk_ax) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110)
    seeds = summaries[0].seeds
    for s in summaries:
        color = COLORS.get(s.policy)
        acc_ax.plot(s.spent, s.accuracy_mean, marker="o", markersize=3, color=color, label=s.policy)
        risk_ax.plot(s.spent, s.found_mean, marker="o", markersize=3, color=color, label=s.policy)
        if seeds > 1:
            acc_ax.fill_between(
                s.spent, s.accuracy_mean - s.accuracy_sd, s.accuracy_mean + s.accuracy_sd, color=color, alpha=0.15
            )
            risk_ax.fill_between(s.spent, s.found_mean - s.found_sd, s.found_mean + s.found_sd, color=color, alpha=0.15)
    acc_ax.axhline(0.5, color="black", linewidth=0.6, linestyle=":")
    acc_ax.set(
        xlabel="labels spent",
        ylabel="reward-model accuracy (held-out split)",
        title="Reward model: held-out accuracy",
        ylim=(0.3, 1.0),
    )
    total = summaries[0].total_mean
    if total > 0:
        risk_ax.axhline(total, color="black", linewidth=0.8, linestyle="--", label=f"all ({_fmt_count(total)})")
    else:
        risk_ax.text(0.5, 0.5, "no risk positives in this set", transform=risk_ax.transAxes, ha="center")
        risk_ax.set_ylim(0, 1)
        risk_ax.set_yticks([0])
    risk_ax.set(xlabel="labels spent", ylabel="risk positives found", title="Risk positives found")
    if total > 0:
        risk_ax.set_ylim(bottom=0)
    acc_ax.legend(loc="lower right")
    risk_ax.legend(loc="upper left")
    for ax in (acc_ax, risk_ax):
        ax.grid(alpha=0.3)
    band = f"; bands ±1 sd over {seeds} seeds" if seeds > 1 else ""
    fig.suptitle(f"Replay of {title}: labeler noise {noise}{band}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
