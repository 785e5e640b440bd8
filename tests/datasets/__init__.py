"""Tests of reviews/datasets and the API: exports, round trips, tokens."""
