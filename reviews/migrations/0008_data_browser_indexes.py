"""Indexes for the item browser: trigram indexes for its text search (PostgreSQL only) and
ItemScore indexes for sorting by utility or risk.

Django's `icontains` is `UPPER(text) LIKE UPPER('%term%')` on PostgreSQL; GIN trigram indexes on
UPPER(text) let a rare term's matching prompts and responses be found without reading every
text (reviews.item_browser.search_filter). SQLite has no such index; there the search scans.
"""

from django.db import migrations, models

INDEXES = [
    ("reviews_prompt_text_trgm", "reviews_prompt"),
    ("reviews_response_text_trgm", "reviews_response"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER(text) gin_trgm_ops)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0007_item_judgment_target"),
    ]

    operations = [
        migrations.RunPython(create, drop),
        migrations.AddIndex(
            model_name="itemscore",
            index=models.Index(fields=["run", "utility", "item"], name="itemscore_by_utility"),
        ),
        migrations.AddIndex(
            model_name="itemscore",
            index=models.Index(fields=["run", "risk", "item"], name="itemscore_by_risk"),
        ),
    ]
