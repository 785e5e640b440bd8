from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from reviews.models import ScoringRun
from scoring.jobs import Rescorer, fail_lost_runs

from ._base import get_campaign


class Command(BaseCommand):
    help = "Rescore a campaign in the foreground (the same run the background worker makes), with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, slug, no_progress, **options):
        campaign = get_campaign(slug)
        fail_lost_runs(campaign)
        if campaign.scoring_runs.filter(status=ScoringRun.Status.RUNNING).exists():
            raise CommandError(f"a rescoring run of {slug} is already running")
        run = ScoringRun.objects.create(campaign=campaign, trigger="command", status=ScoringRun.Status.RUNNING)
        bars: dict[str, tqdm] = {}

        def progress(phase, done, total):
            if no_progress:
                return
            bar = bars.get(phase) or bars.setdefault(
                phase, tqdm(total=total, desc=phase, unit="items", file=self.stderr._out, mininterval=0.5)
            )
            bar.update(done - bar.n)

        try:
            Rescorer(run, progress=progress).execute()
        except Exception as exc:
            ScoringRun.objects.filter(pk=run.pk).update(status=ScoringRun.Status.FAILED, error=str(exc))
            raise CommandError(f"rescoring failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for bar in bars.values():
                bar.close()
        run.refresh_from_db()
        self.stdout.write(
            f"run {run.id} {run.status}: {run.item_count} items, {run.metrics['selected']} selected "
            f"({run.metrics['audit']} audit); timings {run.timings}"
        )
        for name in ("risk", "reward"):
            info = run.model_versions[name]
            state = (
                f"trained on {info['trained_on']}, held-out accuracy {info['held_out_accuracy']}"
                if info["trained"]
                else f"not trained: {info['skipped']}"
            )
            self.stdout.write(f"{name} model: {state}")
