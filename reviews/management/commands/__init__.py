"""The manage.py commands; thin, their logic lives in the context folders."""
