"""Scoring numerics: pure functions over numpy arrays (no Django); `jobs.py` wraps them."""
