"""Loaded first (pytest -p): environment the test settings need, before Django reads them."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-used-anywhere-else-0123456789")
# Playwright's sync API runs an event loop in the main thread (RECIPES.md).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
