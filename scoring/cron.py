"""The schedule (`manage.py rqcron scoring.cron`): look for campaigns to rescore, recover lost runs,
snapshot the monitoring figures."""

from django.conf import settings
from rq import cron

from reviews.monitoring.snapshots import snapshot_due
from scoring.jobs import rescore_due

cron.register(rescore_due, "default", interval=settings.SCORING_SCHEDULE_SECONDS, name="rescore_due")
cron.register(snapshot_due, "default", interval=settings.REVIEWS_METRICS_SCHEDULE_SECONDS, name="snapshot_due")
