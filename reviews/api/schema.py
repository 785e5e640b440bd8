"""The OpenAPI 3.1 document of /api/v1/; tests validate real responses against it."""

from django.conf import settings


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str, **extra) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}, **extra}


def _errors(*statuses: int) -> dict:
    texts = {
        400: "The body cannot be read as items (not JSON, not a list).",
        401: "No token, an unknown one, or a revoked one. Nothing is written.",
        403: "The token is not granted this campaign (or there is no such campaign). Nothing is written.",
        404: "No such dataset version readable with this token.",
        405: "Method not allowed.",
        410: "The dataset's stored bytes are gone and can no longer be produced.",
        413: "The body is over the size limit. Nothing is written.",
        415: "Unsupported Content-Type. Nothing is written.",
        429: "Over the per-token rate limit; wait `Retry-After` seconds. Nothing is written.",
    }
    out = {}
    for status in statuses:
        response = _json("Error", texts[status])
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
        if status == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        out[str(status)] = response
    return out


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
UID = {"name": "uid", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}

LABEL = {
    "type": "object",
    "required": ["annotator", "kind", "criterion", "value"],
    "properties": {
        "annotator": {"type": "string"},
        "kind": {"enum": ["human", "lead", "model"]},
        "criterion": {"type": "string"},
        "response": {"type": "string"},
        "value": {"type": ["string", "integer"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
    "additionalProperties": False,
}

POOL_ITEM = {
    "type": "object",
    "description": "One pool item, FORMATS.md section 1 (validated line by line by the pool importer).",
    "required": ["external_id", "prompt", "responses"],
    "properties": {
        "external_id": {"type": "string", "maxLength": 255},
        "prompt_id": {"type": "string", "maxLength": 255},
        "prompt": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["role", "content"],
                        "properties": {
                            "role": {"enum": ["system", "user", "assistant"]},
                            "content": {"type": "string"},
                        },
                    },
                },
            ]
        },
        "responses": {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {
                "type": "object",
                "required": ["key", "model", "text"],
                "properties": {"key": {"type": "string"}, "model": {"type": "string"}, "text": {"type": "string"}},
            },
        },
        "risk_prior": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "metadata": {"type": "object"},
        "labels": {"type": "array", "items": LABEL},
        "gold": {"type": "array", "items": {"type": "object"}},
    },
}

COUNTS = {
    "type": "object",
    "required": ["lines", "created", "skipped", "conflicts", "labels", "error_count"],
    "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("lines", "created", "skipped", "conflicts", "labels", "error_count")
    },
    "additionalProperties": False,
}

INGEST_RESULT = {
    "type": "object",
    "required": ["campaign", "status", "counts", "errors", "items"],
    "properties": {
        "campaign": {"type": "string"},
        "status": {"enum": ["imported", "rejected"]},
        "counts": _ref("IngestCounts"),
        "errors": {"type": "array", "items": {"type": "string"}, "description": "errors not tied to one item"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["line", "external_id", "status"],
                "properties": {
                    "line": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "line number (JSON Lines) or 1-based position in the list (JSON)",
                    },
                    "external_id": {"type": ["string", "null"]},
                    "status": {"enum": ["created", "skipped", "error", "not_written"]},
                    "errors": {"type": "array", "items": {"type": "string"}},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}

DATASET = {
    "type": "object",
    "required": [
        "uid",
        "campaign",
        "format",
        "filters",
        "counts",
        "rubric_versions",
        "content_hash",
        "size_bytes",
        "created_by",
        "created_at",
        "download",
    ],
    "properties": {
        "uid": {"type": "string", "format": "uuid"},
        "campaign": {"type": "string"},
        "format": {"enum": ["preference", "full"]},
        "filters": {
            "type": "object",
            "required": ["rubric_version", "adjudicated_only", "min_agreement", "tags"],
            "properties": {
                "rubric_version": NULLABLE_INT,
                "adjudicated_only": {"type": "boolean"},
                "min_agreement": NULLABLE_NUMBER,
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "rubric_versions": {"type": "array", "items": {"type": "integer"}},
        "content_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size_bytes": {"type": "integer", "minimum": 0},
        "created_by": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "download": {"type": "string", "description": "path of the download, relative to the site"},
    },
    "additionalProperties": False,
}

CAMPAIGN_STATUS = {
    "type": "object",
    "description": "As `manage.py campaign_status --json` prints it.",
    "required": [
        "campaign",
        "title",
        "rubric",
        "settings_version",
        "items",
        "prompts",
        "responses",
        "resolved_items",
        "human_judgments",
        "human_labels",
        "model_labels",
        "adjudicated_responses",
        "adjudicated_items",
        "open_escalations",
        "scored_items",
        "last_scoring_run",
        "final_answers",
    ],
    "properties": {
        "campaign": {"type": "string"},
        "title": {"type": "string"},
        "rubric": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["slug", "version"],
                    "properties": {"slug": {"type": "string"}, "version": NULLABLE_INT},
                },
            ]
        },
        "settings_version": {"type": "integer"},
        **{
            name: {"type": "integer", "minimum": 0}
            for name in (
                "items",
                "prompts",
                "responses",
                "resolved_items",
                "human_judgments",
                "human_labels",
                "model_labels",
                "adjudicated_responses",
                "adjudicated_items",
                "open_escalations",
                "scored_items",
            )
        },
        "last_scoring_run": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["id", "status", "items", "finished_at"],
                    "properties": {
                        "id": {"type": "integer"},
                        "status": {"type": "string"},
                        "items": {"type": "integer"},
                        "finished_at": {"type": ["string", "null"]},
                    },
                },
            ]
        },
        "final_answers": {
            "type": "object",
            "description": "{criterion: {model: {tag: {value: count}}}}; `*` is every tag",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
    },
}


def openapi_document() -> dict:
    """The API as implemented by reviews/api/views.py."""
    limit = settings.API_MAX_BODY_BYTES
    rate = f"{settings.API_RATE_LIMIT} requests per {settings.API_RATE_WINDOW_SECONDS} s per token"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Review desk API",
            "version": "1.0.0",
            "description": (
                "Ingest items for review and read campaign status and dataset versions. Every endpoint "
                f"but this document needs `Authorization: Bearer <token>` (admins create tokens on the API "
                f"tokens page). Rate limit: {rate}. Bodies up to {limit} bytes. Any error response "
                "writes nothing."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/campaigns/{slug}/items": {
                "post": {
                    "operationId": "ingestItems",
                    "summary": "Add pool items (FORMATS.md section 1) to a campaign; all or nothing.",
                    "description": (
                        "Idempotent by `external_id`: an item already present with the same content is "
                        "`skipped`; with different content it is a conflict and the request is rejected."
                    ),
                    "parameters": [SLUG],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": _ref("PoolItem")}},
                            "application/x-ndjson": {
                                "schema": {"type": "string", "description": "JSON Lines: one PoolItem per line"}
                            },
                            "application/jsonl": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": _json("IngestResult", "Every item was already there (all skipped): nothing new."),
                        "201": _json("IngestResult", "Imported; at least one item created."),
                        "422": _json("IngestResult", "Some items are invalid or conflict: nothing was written."),
                        **_errors(400, 401, 403, 405, 413, 415, 429),
                    },
                }
            },
            "/campaigns/{slug}": {
                "get": {
                    "operationId": "getCampaign",
                    "summary": "A campaign's status and final-answer counts.",
                    "parameters": [SLUG],
                    "responses": {
                        "200": _json("CampaignStatus", "The campaign's figures."),
                        **_errors(401, 403, 405, 429),
                    },
                }
            },
            "/campaigns/{slug}/datasets": {
                "get": {
                    "operationId": "listDatasets",
                    "summary": "The campaign's dataset versions, newest first.",
                    "parameters": [SLUG],
                    "responses": {
                        "200": _json("DatasetList", "Dataset versions."),
                        **_errors(401, 403, 405, 429),
                    },
                }
            },
            "/datasets/{uid}": {
                "get": {
                    "operationId": "getDataset",
                    "summary": "A dataset version's metadata.",
                    "parameters": [UID],
                    "responses": {
                        "200": _json("DatasetVersion", "The dataset version."),
                        **_errors(401, 404, 405, 429),
                    },
                }
            },
            "/datasets/{uid}/download": {
                "get": {
                    "operationId": "downloadDataset",
                    "summary": "The dataset's bytes (JSON Lines); their SHA-256 is the content hash.",
                    "parameters": [UID],
                    "responses": {
                        "200": {
                            "description": "The JSONL file.",
                            "headers": {"X-Content-SHA256": {"schema": {"type": "string"}}},
                            "content": {"application/jsonl": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 404, 405, 410, 429),
                    },
                }
            },
            "/schema": {
                "get": {
                    "operationId": "getSchema",
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                    "additionalProperties": False,
                },
                "PoolItem": POOL_ITEM,
                "Label": LABEL,
                "IngestCounts": COUNTS,
                "IngestResult": INGEST_RESULT,
                "DatasetVersion": DATASET,
                "DatasetList": {
                    "type": "object",
                    "required": ["datasets"],
                    "properties": {"datasets": {"type": "array", "items": _ref("DatasetVersion")}},
                    "additionalProperties": False,
                },
                "CampaignStatus": CAMPAIGN_STATUS,
            },
        },
    }
