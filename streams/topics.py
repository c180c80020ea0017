"""Topics, one per event family, and the message key of each event.

The key decides the partition, so it is the field the family's state is
keyed by: every version of a campaign-hour, every touch of a device, every
redirect of a user and every payment and refund of an order land in one
partition, in order.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson


class Family(NamedTuple):
    name: str
    types: tuple[str, ...]
    key_fields: tuple[str, ...]  # first present field is the key


FAMILIES = (
    Family("spend", ("ad_spend",), ("campaign_id",)),
    Family("impressions", ("impression",), ("device_id",)),
    Family("clicks", ("click",), ("device_id",)),
    Family("redirects", ("redirect",), ("user_id",)),
    Family("money", ("payment", "refund", "ad_unlock"), ("order_id", "user_id")),
    Family("config", ("campaign", "promotion_plan", "fx_rate"), ("campaign_id", "plan_id", "currency")),
)
# Lines that do not even parse still travel (and are rejected with their bytes by a worker).
UNROUTABLE_FAMILY = "config"
_BY_TYPE = {t: f for f in FAMILIES for t in f.types}


def topic_name(prefix: str, family: str) -> str:
    return f"{prefix}{family}"


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}rejected"


def all_topics(prefix: str) -> list[str]:
    return [topic_name(prefix, f.name) for f in FAMILIES] + [dead_letter_topic(prefix)]


def route(raw: bytes) -> tuple[str, bytes | None]:
    """(family, key) for one JSON line; malformed lines go to ``config`` with no key."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return UNROUTABLE_FAMILY, None
    if type(data) is not dict:
        return UNROUTABLE_FAMILY, None
    family = _BY_TYPE.get(data.get("type"))  # type: ignore[arg-type]
    if family is None:
        return UNROUTABLE_FAMILY, None
    for field in family.key_fields:
        value = data.get(field)
        if type(value) is str and value:
            return family.name, value.encode()
    return family.name, None
