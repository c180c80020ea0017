"""Topics, one per event family, and the message key of each event.

The key decides the partition, so it is the field the family's state is
keyed by: every version of a campaign-hour, every touch of a device, every
redirect of a user and every payment and refund of an order land in one
partition, in order.
"""

from __future__ import annotations

import json
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
_MAX_ID_CHARS = 128  # SPEC 2: a longer id is invalid, so it keys nothing


def topic_name(prefix: str, family: str) -> str:
    return f"{prefix}{family}"


def dead_letter_topic(prefix: str) -> str:
    return f"{prefix}rejected"


# Internal topics of the attribution stages (docs/design/streaming.md) and the facts the sink reads.
STAGE_TOPICS = ("stage.touch", "stage.order", "stage.user", "stage.spend", "stage.config", "stage.postback")
FACTS_TOPIC = "facts"
POSTBACKS_TOPIC = "postbacks"  # the postback stage's sends, by idempotency key, for ``reelroi postback`` (SPEC 7)
SINGLE_PARTITION = ("stage.config",)  # the config stage is one partition: winners need one place


def all_topics(prefix: str) -> list[str]:
    families = [topic_name(prefix, f.name) for f in FAMILIES]
    internal = [topic_name(prefix, t) for t in (*STAGE_TOPICS, FACTS_TOPIC, POSTBACKS_TOPIC)]
    return [*families, dead_letter_topic(prefix), *internal]


def partitions_of(prefix: str, topic: str, partitions: int) -> int:
    """How many partitions ``topic`` has (``partitions`` for all but the single-partition ones)."""
    return 1 if topic.removeprefix(prefix) in SINGLE_PARTITION else partitions


def find_route(raw: bytes) -> tuple[str, bytes | None] | None:
    """(family, key) of a line that is a JSON object with a known ``type``, else None.

    Never raises, whatever the bytes: routing only places a line, the worker's
    decoder judges it (a line's meaning does not depend on its topic). A key is
    the first key field that holds an id (a string of 1–128 characters).
    """
    data = _object(raw)
    if data is None:
        return None
    kind = data.get("type")
    family = _BY_TYPE.get(kind) if type(kind) is str else None
    if family is None:
        return None
    for field in family.key_fields:
        value = data.get(field)
        if type(value) is str and 0 < len(value) <= _MAX_ID_CHARS:
            return family.name, value.encode("utf-8", "surrogatepass")
    return family.name, None


def route(raw: bytes) -> tuple[str, bytes | None]:
    """(family, key) for one line; a line that is not a JSON object with a known type goes to ``config`` unkeyed."""
    return find_route(raw) or (UNROUTABLE_FAMILY, None)


def _object(raw: bytes) -> dict[str, object] | None:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # orjson refuses valid JSON it cannot hold (integers past 64 bits); the standard
        # parser reads the shape, with numbers left unconverted so no size costs time
        try:
            text = bytes(raw).decode("utf-8")
            data = json.loads(text, parse_int=_ignore, parse_float=_ignore, parse_constant=_ignore)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
    return data if type(data) is dict else None


def _ignore(text: str) -> None:
    return None
