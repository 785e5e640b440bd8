from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.core.exceptions import DomainError
from reviews.datasets.export import FORMATS, Filters, create_dataset, dataset_file

from ._base import get_campaign


class Command(BaseCommand):
    help = (
        "Create an immutable dataset version of a campaign (FORMATS.md section 3), write its bytes to FILE "
        "and print its id and SHA-256 content hash. The same version is listed on the campaign's Datasets page."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the campaign")
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--out", required=True, metavar="FILE", help="where to write the JSONL ('-' for stdout)")
        parser.add_argument(
            "--rubric-version", type=int, metavar="N", help="only items whose labels were all made under it"
        )
        parser.add_argument("--adjudicated-only", action="store_true", help="only items a lead adjudicated")
        parser.add_argument("--min-agreement", type=float, metavar="X", help="only items with agreement >= X (0..1)")
        parser.add_argument("--tag", action="append", default=[], help="only items with this tag (repeatable: all)")
        parser.add_argument("--user", help="record this user as the creator (default: none, the command line)")

    def handle(self, slug, fmt, out, rubric_version, adjudicated_only, min_agreement, tag, user, **options):
        campaign = get_campaign(slug)
        creator = None
        if user:
            creator = get_user_model().objects.filter(username=user).first()
            if creator is None:
                raise CommandError(f"no user {user!r}")
        filters = Filters(
            rubric_version=rubric_version,
            adjudicated_only=adjudicated_only,
            min_agreement=min_agreement,
            tags=tuple(dict.fromkeys(tag)),
        )
        try:
            version = create_dataset(campaign, fmt, filters, user=creator)
            source = dataset_file(version)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        data = source.read_bytes()
        if out == "-":
            self.stdout.buffer.write(data) if hasattr(self.stdout, "buffer") else self.stdout.write(data.decode())
        else:
            try:
                with open(out, "wb") as fh:
                    fh.write(data)
            except OSError as exc:
                raise CommandError(f"cannot write {out}: {exc.strerror}") from exc
        counts = ", ".join(f"{k} {v}" for k, v in version.counts.items())
        target = self.stderr if out == "-" else self.stdout
        target.write(f"dataset {version.uid} sha256 {version.content_hash}")
        target.write(f"{version.size_bytes} bytes; {counts}")
