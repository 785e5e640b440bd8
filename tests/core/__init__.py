"""Tests of reviews/core and the models: Markdown, model rules, hostile content end to end."""
