"""The dead-letter record: a refused message, kept whole, with why and where it came from.

Agencies read their own back with ``ioc rejects --source S``; nothing sent to the IOC vanishes.
"""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from streams.validation import Rejection


class DeadLetter(BaseModel):
    """One record of the dead-letter topic (JSON, keyed by source)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    reason: str
    field: str | None
    message_vi: str
    message_en: str
    topic: str
    partition: int
    offset: int
    received_at: datetime
    original_b64: str

    @classmethod
    def of(
        cls,
        rejection: Rejection,
        *,
        source: str,
        original: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        received_at: datetime,
    ) -> DeadLetter:
        """Build the record for a rejected message."""
        return cls(
            source=source,
            reason=rejection.reason,
            field=rejection.field,
            message_vi=rejection.message_vi,
            message_en=rejection.message_en,
            topic=topic,
            partition=partition,
            offset=offset,
            received_at=received_at,
            original_b64=base64.b64encode(original or b"").decode("ascii"),
        )

    @property
    def original(self) -> bytes:
        """The refused message, byte for byte."""
        return base64.b64decode(self.original_b64)
