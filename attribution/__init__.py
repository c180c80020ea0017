"""The attribution core: SPEC sections 3-5 as pure code.

Imports nothing from faust, Kafka or ClickHouse (enforced by import-linter).
Drivers (``reelroi replay``, the stream workers) feed ``Engine`` batches of raw
records and persist the ``Outputs`` it returns.
"""

from attribution.engine import Engine
from attribution.outputs import Outputs
from attribution.policy import Policy

__all__ = ["Engine", "Outputs", "Policy"]
