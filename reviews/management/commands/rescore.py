from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from scoring.jobs import rescore_in_foreground
from scoring.runs import RunBusy

from ._base import get_campaign


class Command(BaseCommand):
    help = "Rescore a campaign in the foreground (the same run the background worker makes), with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, slug, no_progress, **options):
        campaign = get_campaign(slug)
        bars: dict[str, tqdm] = {}

        def progress(phase, done, total):
            if no_progress:
                return
            bar = bars.get(phase) or bars.setdefault(
                phase, tqdm(total=total, desc=phase, unit="items", file=self.stderr._out, mininterval=0.5)
            )
            bar.update(done - bar.n)

        try:
            run = rescore_in_foreground(campaign, "command", progress=progress)
        except RunBusy as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:
            raise CommandError(f"rescoring failed: {type(exc).__name__}: {exc}") from exc
        finally:
            for bar in bars.values():
                bar.close()
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
