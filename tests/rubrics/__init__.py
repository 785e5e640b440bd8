"""Tests of reviews/rubrics: parsing, the editor, its browser flows."""
