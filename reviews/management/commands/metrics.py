import json

from django.core.management.base import BaseCommand, CommandError

from reviews.monitoring.figures import compute_report
from reviews.monitoring.snapshots import snapshot_due, take_snapshot

from ._base import get_campaign


class Command(BaseCommand):
    help = (
        "Compute a campaign's monitoring figures from the feedback log and print them (--json for other "
        "tools); --save also stores them as MetricSnapshot rows; --all snapshots every campaign (the scheduled job)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")
        parser.add_argument("--save", action="store_true", help="store a snapshot (report and time series rows)")
        parser.add_argument("--all", action="store_true", help="snapshot every campaign with items")

    def handle(self, slug=None, json: bool = False, save: bool = False, all: bool = False, **options):
        if all:
            for done in snapshot_due():
                self.stdout.write(f"snapshot taken: {done}")
            return
        if not slug:
            raise CommandError("name a campaign (or pass --all)")
        campaign = get_campaign(slug)
        report = take_snapshot(campaign).data if save else compute_report(campaign)
        if json:
            self.stdout.write(_dumps(report))
            return
        self._summary(report)

    def _summary(self, report: dict) -> None:
        ov = report["overview"]
        self.stdout.write(f"campaign {report['campaign']} at {report['computed_at']}")
        self.stdout.write(
            f"  queue depth {ov['queue_depth']}, budget spent {ov['budget_spent']}"
            f"{'' if ov['budget_total'] is None else ' of ' + str(ov['budget_total'])}, "
            f"{ov['judgments_per_day']:.1f} judgments/day, open escalations {ov['open_escalations']} "
            f"({ov['overdue_escalations']} overdue)"
        )
        for criterion, a in report["agreement"].items():
            self.stdout.write(
                f"  agreement {criterion}: alpha {_f(a['krippendorff_alpha'])}, raw {_f(a['raw_agreement'])}, "
                + ", ".join(f"kappa {pair} {_f(k)}" for pair, k in a["cohen_kappa"].items())
            )
        for d in report["detectors"]:
            self.stdout.write(
                f"  detector {d['annotator']} on {d['criterion']} ({'/'.join(d['positive'])}): "
                f"FPR {_f(d['fpr'])}, FNR {_f(d['fnr'])}, n {d['n']}"
            )
        for criterion, board in report["leaderboard"].items():
            source = report["leaderboard_source"].get(criterion, "")
            self.stdout.write(f"  leaderboard {criterion} ({source}):")
            for row in board:
                self.stdout.write(f"    {row['model']}: {row['strength']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]")


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
