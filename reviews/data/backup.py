"""Back up one campaign to a JSON Lines file and restore it, into this or another database.

The file (gzip when its name ends in .gz): a header line, the users the rows refer to (by
username, with their role), then one line per row, table by table in dependency order, each
table ordered by primary key:

    {"format": "review-desk-campaign", "version": 1, "campaign": "xstest", "created_at": ..., "tables": {...}}
    {"user": {"username": "lena", "email": "", "role": "labeler", "is_active": true}}
    {"table": "reviews.item", "row": {"id": 7, "campaign_id": 1, ...}}

A restore inserts every row with new primary keys (foreign keys remapped), in the dumped order,
in one transaction: it writes everything or nothing. The campaign's feedback log, final answers,
scoring runs and every version (rubric, settings) come back identical. Users missing from the
target are created without a usable password (an admin sets one); the rubric is reused when the
target has one with the same slug and identical versions. API tokens are not carried: they are
credentials, issued again by an admin. Stored text features are left out (scoring recomputes them).
"""

import datetime
import gzip
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from reviews.core.exceptions import DomainError
from reviews.core.roles import Role, role_of
from reviews.models import (
    Adjudication,
    Annotator,
    Answer,
    Assignment,
    Campaign,
    CampaignSettings,
    DatasetVersion,
    Escalation,
    FeedbackEvent,
    FinalAnswer,
    Item,
    ItemScore,
    Judgment,
    Membership,
    MetricSnapshot,
    Prompt,
    Response,
    Rubric,
    RubricVersion,
    ScoringRun,
)
from reviews.people.accounts import set_role

FORMAT = "review-desk-campaign"
VERSION = 1
BATCH = 1000


class _Encoder(DjangoJSONEncoder):
    """Django's encoder, but times keep their microseconds (it rounds them to milliseconds)."""

    def default(self, o):
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


class BackupError(DomainError):
    """A dump file that cannot be restored here; nothing was written."""


def _tables(campaign: Campaign) -> list[tuple[type[models.Model], models.QuerySet]]:
    """Each table of the campaign with its rows, parents before children."""
    c = campaign
    annotators = Annotator.objects.filter(
        Q(id__in=Judgment.objects.filter(item__campaign=c).values("annotator_id"))
        | Q(id__in=Adjudication.objects.filter(item__campaign=c).values("lead_id"))
        | Q(id__in=FeedbackEvent.objects.filter(campaign=c, annotator__isnull=False).values("annotator_id"))
    )
    rubric_versions = (
        RubricVersion.objects.filter(rubric_id=c.rubric_id) if c.rubric_id else RubricVersion.objects.none()
    )
    return [
        (Rubric, Rubric.objects.filter(id=c.rubric_id)),
        (RubricVersion, rubric_versions),
        (Campaign, Campaign.objects.filter(id=c.id)),
        (CampaignSettings, CampaignSettings.objects.filter(campaign=c)),
        (Annotator, annotators),
        (Prompt, Prompt.objects.filter(campaign=c)),
        (Response, Response.objects.filter(prompt__campaign=c)),
        (Item, Item.objects.filter(campaign=c)),
        (ScoringRun, ScoringRun.objects.filter(campaign=c)),
        (ItemScore, ItemScore.objects.filter(run__campaign=c)),
        (Assignment, Assignment.objects.filter(item__campaign=c)),
        (Judgment, Judgment.objects.filter(item__campaign=c)),
        (Escalation, Escalation.objects.filter(campaign=c)),
        (Adjudication, Adjudication.objects.filter(item__campaign=c)),
        (Answer, Answer.objects.filter(Q(judgment__item__campaign=c) | Q(adjudication__item__campaign=c))),
        (FinalAnswer, FinalAnswer.objects.filter(campaign=c)),
        (FeedbackEvent, FeedbackEvent.objects.filter(campaign=c)),
        (MetricSnapshot, MetricSnapshot.objects.filter(campaign=c)),
        (DatasetVersion, DatasetVersion.objects.filter(campaign=c)),
        (Membership, Membership.objects.filter(campaign=c)),
    ]


MODELS = {
    m._meta.label_lower: m
    for m in (
        Rubric,
        RubricVersion,
        Campaign,
        CampaignSettings,
        Annotator,
        Prompt,
        Response,
        Item,
        ScoringRun,
        ItemScore,
        Assignment,
        Judgment,
        Escalation,
        Adjudication,
        Answer,
        FinalAnswer,
        FeedbackEvent,
        MetricSnapshot,
        DatasetVersion,
        Membership,
    )
}
User = get_user_model()


def _columns(model) -> list[models.Field]:
    """Stored columns; binary fields (derived text features) are left out."""
    return [f for f in model._meta.concrete_fields if not isinstance(f, models.BinaryField)]


@contextmanager
def _open(path: Path, mode: str):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, mode + "t", encoding="utf-8") as handle:
        yield handle


def dump_campaign(campaign: Campaign, path: Path | str) -> dict[str, int]:
    """Write the campaign to `path`; return the row count per table."""
    path = Path(path)
    counts: dict[str, int] = {}
    user_ids: set[int] = set()
    encoder = _Encoder(ensure_ascii=False)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as rows, transaction.atomic():
        # One transaction: a consistent snapshot on PostgreSQL while labelers keep working.
        for model, queryset in _tables(campaign):
            label = model._meta.label_lower
            columns = _columns(model)
            user_columns = [f.attname for f in columns if f.is_relation and f.related_model is User]
            names = [f.attname for f in columns]
            counts[label] = 0
            for row in queryset.order_by("pk").values(*names).iterator(chunk_size=2000):
                user_ids.update(row[c] for c in user_columns if row[c] is not None)
                rows.write(encoder.encode({"table": label, "row": row}) + "\n")
                counts[label] += 1
        users = list(User.objects.filter(id__in=user_ids).order_by("id"))
        with _open(path, "w") as out:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "campaign": campaign.slug,
                "created_at": timezone.now(),
                "tables": counts,
                "users": len(users),
            }
            out.write(encoder.encode(header) + "\n")
            for user in users:
                role = role_of(user)
                entry = {
                    "id": user.id,
                    "username": user.get_username(),
                    "email": user.email,
                    "role": role.value if role else None,
                    "is_active": user.is_active,
                }
                out.write(encoder.encode({"user": entry}) + "\n")
            rows.seek(0)
            for line in rows:
                out.write(line)
    return counts


def _lines(path: Path) -> Iterator[tuple[int, dict]]:
    with _open(path, "r") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise BackupError(f"line {number}: not JSON ({exc.msg})") from None


class _Restorer:
    def __init__(self, slug: str | None):
        self.slug = slug
        self.ids: dict[str, dict[int, int]] = {label: {} for label in MODELS}
        self.users: dict[int, int] = {}
        self.scoring_run_of_campaign: int | None = None
        self.counts: dict[str, int] = {}
        self.pending: list[dict] = []
        self.pending_label: str | None = None

    # -- users, rubric, annotators: matched to what the target already has ----------------

    def user(self, entry: dict) -> None:
        user = User.objects.filter(username=entry["username"]).first()
        if user is None:
            user = User.objects.create_user(entry["username"], email=entry.get("email") or "", password=None)
            user.is_active = bool(entry.get("is_active", True))
            user.save(update_fields=["is_active"])
            if entry.get("role"):
                set_role(user, Role(entry["role"]))
        self.users[entry["id"]] = user.id

    def _existing_rubric(self, row: dict) -> int | None:
        rubric = Rubric.objects.filter(slug=row["slug"]).first()
        return rubric.id if rubric else None

    # -- rows ---------------------------------------------------------------------------

    def row(self, label: str, row: dict, number: int) -> None:
        if label not in MODELS:
            raise BackupError(f"line {number}: unknown table {label!r}")
        if label != self.pending_label:
            self.flush()
            self.pending_label = label
        self.pending.append(row)
        if len(self.pending) >= BATCH:
            self.flush()

    def _remap(self, model, row: dict) -> dict:
        values = {}
        for field in _columns(model):
            if field.primary_key:
                continue
            value = row.get(field.attname)
            if field.is_relation and value is not None:
                target = field.related_model
                if target is User:
                    value = self.users[value]
                else:
                    if model is Campaign and field.name == "scoring_run":
                        self.scoring_run_of_campaign = value
                        value = None  # set once the runs exist
                    else:
                        value = self.ids[target._meta.label_lower][value]
            elif value is not None:
                value = field.to_python(value)
            values[field.attname] = value
        if model is Campaign and self.slug:
            values["slug"] = self.slug
        if "features_version" in values:
            values["features_version"] = 0  # the features themselves are not in the file
        return values

    def flush(self) -> None:
        if not self.pending:
            return
        label, rows = self.pending_label, self.pending
        self.pending = []
        model = MODELS[label]
        mapping = self.ids[label]
        if model is Rubric:
            rows = [r for r in rows if not self._reuse_rubric(r)]
        if model is RubricVersion:
            rows = [r for r in rows if not self._reuse_rubric_version(r)]
        if model is Annotator:
            rows = [r for r in rows if not self._reuse_annotator(r)]
        if model is Campaign and Campaign.objects.filter(slug=self.slug or rows[0]["slug"]).exists():
            raise BackupError(
                f"campaign {self.slug or rows[0]['slug']!r} already exists here: restore into a database "
                "without it, or under another slug (--slug)"
            )
        objects = [model(**self._remap(model, row)) for row in rows]
        created = model.objects.bulk_create(objects)
        for row, obj in zip(rows, created, strict=True):
            mapping[row["id"]] = obj.pk
        self.counts[label] = self.counts.get(label, 0) + len(created)

    def _reuse_rubric(self, row: dict) -> bool:
        existing = self._existing_rubric(row)
        if existing is None:
            return False
        self.ids["reviews.rubric"][row["id"]] = existing
        return True

    def _reuse_rubric_version(self, row: dict) -> bool:
        rubric_id = self.ids["reviews.rubric"][row["rubric_id"]]
        version = RubricVersion.objects.filter(rubric_id=rubric_id, number=row["number"]).first()
        if version is None:
            return False
        if version.definition != row["definition"]:
            raise BackupError(
                f"rubric version {row['number']} differs from the one already here: restore into a "
                "database without that rubric"
            )
        self.ids["reviews.rubricversion"][row["id"]] = version.id
        return True

    def _reuse_annotator(self, row: dict) -> bool:
        if row["user_id"] is not None:
            existing = Annotator.objects.filter(user_id=self.users[row["user_id"]]).first()
        else:
            existing = Annotator.objects.filter(user__isnull=True, name=row["name"]).first()
        if existing is None:
            return False
        self.ids["reviews.annotator"][row["id"]] = existing.id
        return True

    def finish(self) -> Campaign:
        self.flush()
        campaign_id = next(iter(self.ids["reviews.campaign"].values()), None)
        if campaign_id is None:
            raise BackupError("the file holds no campaign")
        if self.scoring_run_of_campaign is not None:
            run_id = self.ids["reviews.scoringrun"][self.scoring_run_of_campaign]
            Campaign.objects.filter(id=campaign_id).update(scoring_run_id=run_id)
        return Campaign.objects.get(id=campaign_id)


def restore_campaign(path: Path | str, *, slug: str | None = None) -> tuple[Campaign, dict[str, int]]:
    """Restore a dump (all or nothing); return the campaign and the row count per table."""
    path = Path(path)
    lines = _lines(path)
    try:
        _, header = next(lines)
    except StopIteration:
        raise BackupError("the file is empty") from None
    if header.get("format") != FORMAT:
        raise BackupError(f"not a campaign dump (format {header.get('format')!r}, expected {FORMAT!r})")
    if header.get("version") != VERSION:
        raise BackupError(f"dump version {header.get('version')} cannot be read by this version ({VERSION})")
    restorer = _Restorer(slug)
    try:
        with transaction.atomic():
            for number, entry in lines:
                if "user" in entry:
                    restorer.user(entry["user"])
                elif "table" in entry:
                    restorer.row(entry["table"], entry["row"], number)
                else:
                    raise BackupError(f"line {number}: neither a user nor a row")
            campaign = restorer.finish()
            expected = {label: n for label, n in header.get("tables", {}).items() if n}
            restored = {label: n for label, n in restorer.counts.items() if n}
            reused = {"reviews.rubric", "reviews.rubricversion", "reviews.annotator"}
            short = {
                label: (restored.get(label, 0), n)
                for label, n in expected.items()
                if label not in reused and restored.get(label, 0) != n
            }
            if short:
                raise BackupError(f"the file is incomplete (restored, expected): {short}")
    except KeyError as exc:
        raise BackupError(f"the file refers to a row it does not hold ({exc}); nothing was written") from None
    except IntegrityError as exc:
        raise BackupError(f"the rows collide with what this database holds ({exc}); nothing was written") from None
    return campaign, restorer.counts
