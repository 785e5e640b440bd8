"""Role groups with their permissions, and triggers that keep immutable rows immutable."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from reviews.core.roles import GROUP_PERMISSIONS, sync_role_groups

SQLITE = [
    """CREATE TRIGGER feedbackevent_no_update BEFORE UPDATE ON reviews_feedbackevent
       BEGIN SELECT RAISE(ABORT, 'feedback events are append-only'); END""",
    """CREATE TRIGGER campaignsettings_no_update BEFORE UPDATE ON reviews_campaignsettings
       BEGIN SELECT RAISE(ABORT, 'campaign settings versions are immutable'); END""",
    """CREATE TRIGGER datasetversion_no_update BEFORE UPDATE ON reviews_datasetversion
       BEGIN SELECT RAISE(ABORT, 'dataset versions are immutable'); END""",
    """CREATE TRIGGER rubricversion_published_no_update BEFORE UPDATE ON reviews_rubricversion
       WHEN OLD.published_at IS NOT NULL
       BEGIN SELECT RAISE(ABORT, 'published rubric versions are immutable'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER feedbackevent_no_update",
    "DROP TRIGGER campaignsettings_no_update",
    "DROP TRIGGER datasetversion_no_update",
    "DROP TRIGGER rubricversion_published_no_update",
]

# On PostgreSQL deletes are refused too: its test flush uses TRUNCATE, which row triggers
# do not see, while SQLite's flush deletes rows one table at a time.
POSTGRES = [
    """CREATE FUNCTION reviews_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER feedbackevent_append_only BEFORE UPDATE OR DELETE ON reviews_feedbackevent
       FOR EACH ROW EXECUTE FUNCTION reviews_refuse_change()""",
    """CREATE TRIGGER campaignsettings_immutable BEFORE UPDATE ON reviews_campaignsettings
       FOR EACH ROW EXECUTE FUNCTION reviews_refuse_change()""",
    """CREATE TRIGGER datasetversion_immutable BEFORE UPDATE OR DELETE ON reviews_datasetversion
       FOR EACH ROW EXECUTE FUNCTION reviews_refuse_change()""",
    """CREATE TRIGGER rubricversion_published_immutable BEFORE UPDATE OR DELETE ON reviews_rubricversion
       FOR EACH ROW WHEN (OLD.published_at IS NOT NULL) EXECUTE FUNCTION reviews_refuse_change()""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER feedbackevent_append_only ON reviews_feedbackevent",
    "DROP TRIGGER campaignsettings_immutable ON reviews_campaignsettings",
    "DROP TRIGGER datasetversion_immutable ON reviews_datasetversion",
    "DROP TRIGGER rubricversion_published_immutable ON reviews_rubricversion",
    "DROP FUNCTION reviews_refuse_change()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        # A plain cursor: the schema editor would read the '%' of plpgsql's RAISE as a placeholder.
        with schema_editor.connection.cursor() as cursor:
            for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
                cursor.execute(sql)

    return run


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create them now.
    app_config = apps.get_app_config("reviews")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    sync_role_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), strict=False)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[r.value for r in GROUP_PERMISSIONS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_groups, remove_groups),
        migrations.RunPython(
            _run({"sqlite": SQLITE, "postgresql": POSTGRES}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}),
        ),
    ]
