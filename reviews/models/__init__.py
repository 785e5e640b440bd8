"""Every model of the app, by area (content, campaigns, labels, audit, access), importable from here."""

from reviews.models.access import ApiToken, Membership
from reviews.models.audit import DatasetVersion, FeedbackEvent, ItemScore, MetricSnapshot, ScoringRun
from reviews.models.campaigns import Campaign, CampaignSettings, Rubric, RubricVersion
from reviews.models.content import Annotator, Item, Prompt, Response
from reviews.models.labels import (
    Adjudication,
    Answer,
    Assignment,
    Escalation,
    FinalAnswer,
    Judgment,
    LabelKind,
    Source,
)

__all__ = [
    "Adjudication",
    "Annotator",
    "Answer",
    "ApiToken",
    "Assignment",
    "Campaign",
    "CampaignSettings",
    "DatasetVersion",
    "Escalation",
    "FeedbackEvent",
    "FinalAnswer",
    "Item",
    "ItemScore",
    "Judgment",
    "LabelKind",
    "Membership",
    "MetricSnapshot",
    "Prompt",
    "Response",
    "Rubric",
    "RubricVersion",
    "ScoringRun",
    "Source",
]
