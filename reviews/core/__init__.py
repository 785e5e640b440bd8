"""Shared foundations of every context: domain errors, roles, fast SQL helpers, safe Markdown."""
