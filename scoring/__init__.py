"""Scoring numerics: pure functions over numpy arrays (no Django); `rescorer.py`, `runs.py`, `jobs.py`
and `chunked.py` are the job layer that wraps them."""
