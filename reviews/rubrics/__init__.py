"""Rubrics: parsing FORMATS.md section 2, the draft/publish editor and its forms."""
