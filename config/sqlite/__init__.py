"""The SQLite backend of the zero-set-up default: Django's, with writers that queue at BEGIN in short steps."""
