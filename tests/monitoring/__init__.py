"""Tests of reviews/monitoring: figures, snapshots, dashboards."""
