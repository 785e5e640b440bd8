"""Views by page group (labeler, lead, admin, data, monitoring, datasets): access → form → domain call → redirect."""
