"""Campaign settings changes from the settings page: one new version per save, with its history."""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from reviews.core.exceptions import DomainError
from reviews.models import Campaign, CampaignSettings, FeedbackEvent

FIELDS = CampaignSettings.SETTING_FIELDS


class SettingsError(DomainError):
    """Settings values that the campaign refuses; `errors` maps a field (or None) to messages."""

    def __init__(self, errors: dict[str | None, list[str]]):
        self.errors = errors
        super().__init__("; ".join(m for messages in errors.values() for m in messages))


def change_settings(campaign: Campaign, values: dict, *, user, note: str = "") -> CampaignSettings | None:
    """Record the values that differ from the current version as a new version; None when nothing changed.

    Writes a SETTINGS_CHANGED feedback event naming each change (old → new).
    """
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise SettingsError({None: [f"unknown setting(s): {', '.join(sorted(unknown))}"]})
    for name in ("budget_total", "budget_daily"):
        if values.get(name) is not None and values[name] < 0:
            raise SettingsError({name: ["A budget cannot be negative; leave it empty for no cap."]})
    with transaction.atomic():
        # Lock the campaign: two admins saving at once get two versions in order, not a lost update.
        Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        campaign.__dict__.pop("settings", None)
        current = campaign.settings
        changes = {name: value for name, value in values.items() if getattr(current, name) != value}
        if not changes:
            return None
        try:
            version = campaign.update_settings(user=user, note=note, **changes)
        except ValidationError as exc:
            raise SettingsError(_messages(exc)) from exc
        FeedbackEvent.record(
            campaign,
            FeedbackEvent.Action.SETTINGS_CHANGED,
            {
                "version": version.number,
                "previous": current.number,
                "note": note,
                "changes": {name: [getattr(current, name), value] for name, value in changes.items()},
            },
            actor=user,
            settings_version=version,
        )
    return version


def _messages(exc: ValidationError) -> dict[str | None, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            (None if name == "__all__" else name): [m for e in errors for m in e.messages]
            for name, errors in exc.error_dict.items()
        }
    return {None: exc.messages}


@dataclass
class HistoryRow:
    version: CampaignSettings
    changes: list[tuple[str, object, object]]


def settings_history(campaign: Campaign, limit: int = 50) -> list[HistoryRow]:
    """The newest settings versions, each with what it changed from the one before."""
    versions = list(campaign.settings_versions.select_related("created_by").order_by("-number")[: limit + 1])
    rows = []
    for index, version in enumerate(versions[:limit]):
        before = versions[index + 1] if index + 1 < len(versions) else None
        changes = [
            (name, getattr(before, name) if before else None, getattr(version, name))
            for name in FIELDS
            if before is None or getattr(before, name) != getattr(version, name)
        ]
        rows.append(HistoryRow(version, changes if before else []))
    return rows
