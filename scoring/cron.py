"""The schedule (`manage.py rqcron scoring.cron`): look for campaigns to rescore, recover lost runs."""

from django.conf import settings
from rq import cron

from scoring.jobs import rescore_due

cron.register(rescore_due, "default", interval=settings.SCORING_SCHEDULE_SECONDS, name="rescore_due")
