"""Tests of reviews/campaigns: the settings page and its history."""
