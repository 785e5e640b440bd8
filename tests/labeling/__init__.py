"""Tests of reviews/labeling: the queue, the labelers' pages, gold items."""
