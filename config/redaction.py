"""Secrets never reach a log: a filter on every logging handler (settings.LOGGING) redacts them.

Imported while logging is configured, before the apps load: nothing here may import models.
"""

import logging
import re
from urllib.parse import urlsplit

from django.conf import settings

REDACTED = "[redacted]"
_PATTERNS = [
    # Authorization headers and bearer tokens.
    re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}"),
    # password=..., secret: ..., api_key=... in query strings, form dumps and reprs.
    re.compile(
        r"(?i)\b(password|passwd|secret|secret_key|api_key|token|csrfmiddlewaretoken|sessionid)"
        r"(['\"]?\s*[:=]\s*['\"]?)[^\s&'\",;]+"
    ),
    # Credentials inside URLs: scheme://user:password@host
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"),
]


def _known_secrets() -> list[str]:
    values = [getattr(settings, "SECRET_KEY", "")]
    for url in (getattr(settings, "DATABASE_URL", None), getattr(settings, "REDIS_URL", None)):
        if url:
            password = urlsplit(url).password
            if password:
                values.append(password)
    for db in getattr(settings, "DATABASES", {}).values():
        values.append(db.get("PASSWORD") or "")
    return [v for v in values if v and len(v) >= 6]


def redact(text: str) -> str:
    """`text` with known secrets (SECRET_KEY, database and Redis passwords) and secret-looking values hidden."""
    for secret in _known_secrets():
        text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
    return text


class RedactSecretsFilter(logging.Filter):
    """A logging filter on every handler: the formatted message (and traceback) leave with secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed log call: leave it to the formatter to report
            return True
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
