"""JSON Schema of every event type, for producers to validate before they send."""

from __future__ import annotations

from typing import Any

from schemas.events import EVENT_TYPES


def event_json_schemas() -> dict[str, Any]:
    """``{"$schema": ..., "oneOf": [...], "$defs": {type: schema}}`` for all event types."""
    defs = {name: model.model_json_schema() for name, model in EVENT_TYPES.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "reelroi event",
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in defs],
        "$defs": defs,
    }
