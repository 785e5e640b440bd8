"""Tests of reviews/data: import, pool actions, the item browser, backup, the real data sets."""
