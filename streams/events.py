"""The indicator event: the one message an agency sends to the IOC.

The model is strict (no silent type coercion) and forbids unknown fields, so a typo in an
agency's integration fails at once instead of being ignored. Catalogue checks (does the source
own the indicator, is the value in range, ...) live in :mod:`streams.validation`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION: Literal[1] = 1

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
AreaCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{0,127}$")]
PeriodText = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}(-Q[1-4]|-W[0-9]{2}|-[0-9]{2}(-[0-9]{2})?)?$"),
]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class IndicatorEvent(BaseModel):
    """One reported value of one indicator, for one area and one period."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: uuid.UUID
    source: Code
    indicator: Code
    area: AreaCode
    period: PeriodText
    value: FiniteFloat
    numerator: FiniteFloat | None = None
    denominator: FiniteFloat | None = None
    observed_at: AwareDatetime
    sent_at: AwareDatetime

    @classmethod
    def new(
        cls,
        *,
        source: str,
        indicator: str,
        area: str,
        period: str,
        value: float,
        numerator: float | None = None,
        denominator: float | None = None,
        observed_at: datetime | None = None,
        sent_at: datetime | None = None,
    ) -> IndicatorEvent:
        """A fresh event with a new id, sent now (the producer's clock) unless ``sent_at``."""
        now = sent_at or datetime.now(UTC)
        return cls(
            event_id=uuid.uuid4(),
            source=source,
            indicator=indicator,
            area=area,
            period=period,
            value=value,
            numerator=numerator,
            denominator=denominator,
            observed_at=observed_at or now,
            sent_at=now,
        )

    @property
    def key(self) -> bytes:
        """Kafka key: every (indicator, area) series stays on one partition, in order."""
        return f"{self.indicator}|{self.area}".encode()

    def to_json(self) -> bytes:
        """Compact JSON, as it travels on the wire (pydantic's own serialiser: the bytes
        ``orjson.dumps(model_dump(mode="json"))`` gave, without the dict between)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)

    @classmethod
    def from_json(cls, data: bytes | str) -> IndicatorEvent:
        """Parse and validate wire JSON; raises :class:`pydantic.ValidationError`."""
        return cls.model_validate_json(data)
