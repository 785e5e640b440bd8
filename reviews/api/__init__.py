"""The JSON API (/api/v1/) for ingest and read access by other tools, with bearer tokens."""
