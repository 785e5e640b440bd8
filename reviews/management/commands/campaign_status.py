import json

from django.core.management.base import BaseCommand

from reviews.campaigns.status import campaign_status

from ._base import get_campaign


class Command(BaseCommand):
    help = "Print a campaign's counts and final answers (--json for other tools)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, slug, json: bool = False, **options):
        status = campaign_status(get_campaign(slug))
        if json:
            self.stdout.write(_dumps(status))
            return
        for key, value in status.items():
            if key == "final_answers":
                continue
            self.stdout.write(f"{key:>22}: {value if not isinstance(value, dict) else _dumps(value)}")
        for criterion, by_model in status["final_answers"].items():
            self.stdout.write(f"\nfinal answers: {criterion}")
            for model, by_tag in sorted(by_model.items()):
                counts = by_tag.get("*", {})
                total = sum(counts.values())
                shares = ", ".join(f"{v} {n} ({100 * n / total:.1f}%)" for v, n in sorted(counts.items()))
                self.stdout.write(f"  {model}: {shares}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
