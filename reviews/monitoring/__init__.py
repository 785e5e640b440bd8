"""Monitoring: the figures (from the feedback log), their snapshots and time series, and the
dashboards' tables and SVG charts."""

# RQ jobs queued before the re-layout name "reviews.monitoring.<job>"; a worker resolves them here.
from reviews.monitoring.snapshots import snapshot_campaign, snapshot_due  # noqa: F401
