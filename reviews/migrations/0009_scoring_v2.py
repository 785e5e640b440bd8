"""Scoring v2: the campaign setting that picks how h measures a pair (entropy or Fisher information).

SQLite adds the column by rebuilding the table, which drops the trigger that keeps settings
versions immutable (0002); it is created again here. PostgreSQL adds the column in place.
"""

from django.db import migrations, models

SQLITE_TRIGGER = """CREATE TRIGGER campaignsettings_no_update BEFORE UPDATE ON reviews_campaignsettings
    BEGIN SELECT RAISE(ABORT, 'campaign settings versions are immutable'); END"""


def _sqlite(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "sqlite":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0008_data_browser_indexes"),
    ]

    operations = [
        # Unapplied, the column's removal rebuilds the table again: this puts the trigger back.
        migrations.RunPython(migrations.RunPython.noop, _sqlite(SQLITE_TRIGGER), elidable=False),
        migrations.AddField(
            model_name="campaignsettings",
            name="uncertainty_mode",
            field=models.CharField(
                choices=[
                    ("entropy", "Entropy"),
                    ("fisher", "Fisher information gain"),
                ],
                default="entropy",
                max_length=16,
            ),
        ),
        migrations.RunPython(
            _sqlite(SQLITE_TRIGGER), _sqlite("DROP TRIGGER IF EXISTS campaignsettings_no_update"), elidable=False
        ),
    ]
