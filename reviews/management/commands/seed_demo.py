from django.core.management.base import BaseCommand

from reviews.dev.demo import DEMO_ITEMS, DEMO_SLUG, ensure_demo


class Command(BaseCommand):
    help = (
        f"Create the demo accounts (admin, lead, labeler; passwords printed once) and the demo campaign "
        f"{DEMO_SLUG!r} with {DEMO_ITEMS} generated items. Safe to repeat: what exists is reused, never reset."
    )

    def handle(self, **options):
        ensure_demo(self.stdout)
