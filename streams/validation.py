"""Turning raw feed bytes into a trusted :class:`IndicatorEvent`, or a reasoned rejection.

Nothing raises past :func:`parse_feed_message`: every input ends as an event or as a
:class:`Rejection` whose ``reason`` is a stable code (metric label, dead-letter field) and whose
messages tell the agency, in Vietnamese and English, which field was wrong, what was expected
and what was received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ

if TYPE_CHECKING:
    from streams.catalogue import Catalogue

#: Larger messages are rejected before parsing (a report row is a few hundred bytes).
MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Rejection:
    """Why one message was refused."""

    reason: str
    message_vi: str
    message_en: str
    field: str | None = None

    @property
    def message(self) -> str:
        """Both languages, Vietnamese first."""
        return f"{self.message_vi} / {self.message_en}"


def _shorten(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: Every reason code a message can be refused for (a bounded label set for the metrics).
REJECTION_REASONS: tuple[str, ...] = (
    # the message itself
    "empty", "too_large", "not_utf8", "not_json", "not_object",
    "missing_field", "unknown_field", "invalid_field",
    # who sent it, and how
    "source_mismatch", "wrong_key",
    # the catalogue
    "unknown_indicator", "not_owner", "wrong_period", "future_period", "unknown_area",
    "wrong_level", "out_of_range", "unexpected_components", "ratio_mismatch",
    "future_timestamp", "stale_timestamp",
    # what was already received
    "superseded",
)  # fmt: skip

#: How far ahead of the receiver's clock a timestamp may be (clock skew between agencies).
MAX_CLOCK_SKEW = timedelta(minutes=10)
#: Figures before this year are not live monitoring data.
OLDEST_YEAR = 2000

# Vietnamese renderings of pydantic's most common error types (the English is pydantic's own).
_VI_ERRORS: dict[str, str] = {
    "string_type": "phải là chuỗi ký tự",
    "string_pattern_mismatch": "không đúng định dạng",
    "string_too_long": "quá dài",
    "float_type": "phải là số",
    "float_parsing": "phải là số",
    "finite_number": "phải là số hữu hạn (không nhận NaN hay Infinity)",
    "uuid_type": "phải là UUID",
    "uuid_parsing": "phải là UUID",
    "datetime_type": "phải là thời điểm ISO 8601",
    "datetime_parsing": "phải là thời điểm ISO 8601",
    "datetime_from_date_parsing": "phải là thời điểm ISO 8601",
    "timezone_aware": "phải ghi múi giờ (ví dụ +07:00)",
    "literal_error": "không thuộc các giá trị cho phép",
}


def rejection_from_validation_error(exc: ValidationError) -> Rejection:
    """The rejection for a pydantic error: its first error, named by field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(message)"
    received = _shorten(first.get("input"))
    kind = first["type"]
    if kind == "json_invalid":
        return Rejection(
            "not_json",
            f"Bản tin không phải JSON hợp lệ: {first['msg']}",
            f"The message is not valid JSON: {first['msg']}",
        )
    if kind == "model_type":
        return Rejection(
            "not_object",
            f"Bản tin phải là một đối tượng JSON; nhận được {received}",
            f"The message must be a JSON object; received {received}",
        )
    if kind == "missing":
        return Rejection(
            "missing_field",
            f"Thiếu trường '{field}'",
            f"Field '{field}' is missing",
            field,
        )
    if kind == "extra_forbidden":
        return Rejection(
            "unknown_field",
            f"Trường '{field}' không có trong hợp đồng dữ liệu (nhận được {received})",
            f"Field '{field}' is not part of the contract (received {received})",
            field,
        )
    vi = _VI_ERRORS.get(kind, "không hợp lệ")
    return Rejection(
        "invalid_field",
        f"Trường '{field}' {vi}; nhận được {received}",
        f"Field '{field}' is invalid: {first['msg']}; received {received}",
        field,
    )


def parse_feed_message(raw: bytes | None, topic_source: str) -> IndicatorEvent | Rejection:
    """Decode and validate one message read from the feed topic of ``topic_source``."""
    if raw is None:
        return Rejection("empty", "Bản tin rỗng", "The message is empty")
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(
            "too_large",
            f"Bản tin {len(raw)} byte, vượt giới hạn {MAX_MESSAGE_BYTES} byte",
            f"The message is {len(raw)} bytes, over the {MAX_MESSAGE_BYTES}-byte limit",
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection(
            "not_utf8",
            f"Bản tin không phải UTF-8 (byte {exc.start})",
            f"The message is not UTF-8 (byte {exc.start})",
        )
    try:
        event = IndicatorEvent.from_json(raw)
    except ValidationError as exc:
        return rejection_from_validation_error(exc)
    if event.source != topic_source:
        return Rejection(
            "source_mismatch",
            f"Sự kiện ghi nguồn '{event.source}' nhưng gửi vào kênh của '{topic_source}'",
            f"The event claims source '{event.source}' but came on the feed of '{topic_source}'",
            "source",
        )
    return event


def _reject(reason: str, field: str, vi: str, en: str, expected: str, received: Any) -> Rejection:
    shown = _shorten(received)
    return Rejection(
        reason,
        f"Trường '{field}': {vi}; cần {expected}, nhận được {shown}",
        f"Field '{field}': {en}; expected {expected}, received {shown}",
        field,
    )


def check_against_catalogue(  # noqa: PLR0911 - one early return per rule, in order
    event: IndicatorEvent, catalogue: Catalogue, now: datetime
) -> Rejection | None:
    """The first way ``event`` breaks the catalogue's contract, or None when it keeps it.

    Checks: the indicator exists and the source owns it; the area exists during the period
    and sits at a level the indicator is reported at; the period has the indicator's type and
    has begun; the value is in range and consistent with its components; timestamps are
    neither in the future nor before :data:`OLDEST_YEAR`.
    """
    indicator = catalogue.indicators.get(event.indicator)
    if indicator is None:
        return _reject(
            "unknown_indicator", "indicator", "chỉ tiêu không có trong danh mục",
            "the indicator is not in the catalogue", "a catalogue code (ioc catalog list)",
            event.indicator,
        )  # fmt: skip
    if indicator.owner != event.source:
        return _reject(
            "not_owner", "indicator",
            f"chỉ tiêu do nguồn '{indicator.owner}' báo cáo, không phải '{event.source}'",
            f"the indicator is reported by '{indicator.owner}', not '{event.source}'",
            f"an indicator of '{event.source}'", event.indicator,
        )  # fmt: skip
    try:
        period = indicator.parse_period(event.period)
    except ValueError:
        return _reject(
            "wrong_period", "period", f"chỉ tiêu báo cáo theo kỳ '{indicator.period_type}'",
            f"the indicator is reported per {indicator.period_type}",
            f"a {indicator.period_type} period", event.period,
        )  # fmt: skip
    # Begun: its first day is no later than today in the province (the start, its local
    # midnight, no later than now), compared as dates: an aware comparison costs more.
    if period.first_day > now.astimezone(LOCAL_TZ).date():
        return _reject(
            "future_period", "period", "kỳ báo cáo chưa bắt đầu", "the period has not begun",
            "a period that has begun", event.period,
        )  # fmt: skip
    unit = catalogue.areas.get(event.area)
    if unit is None or not unit.overlaps(period.first_day, period.last_day):
        return _reject(
            "unknown_area", "area", "địa bàn không tồn tại trong kỳ này",
            "the area does not exist in this period", "an area code (ioc catalog list)",
            event.area,
        )  # fmt: skip
    if unit.level not in indicator.levels:
        allowed = ", ".join(indicator.levels)
        return _reject(
            "wrong_level", "area", f"chỉ tiêu không báo cáo ở cấp '{unit.level}'",
            f"the indicator is not reported at {unit.level} level",
            f"an area at level {allowed}", event.area,
        )  # fmt: skip
    if not indicator.valid_range.contains(event.value):
        return _reject(
            "out_of_range", "value", "giá trị ngoài khoảng hợp lệ", "the value is out of range",
            str(indicator.valid_range), event.value,
        )  # fmt: skip
    mismatch = _ratio_mismatch(event, indicator.ratio)
    if mismatch is not None:
        return mismatch
    latest = now + MAX_CLOCK_SKEW
    for field, moment in (("observed_at", event.observed_at), ("sent_at", event.sent_at)):
        if moment > latest:
            return _reject(
                "future_timestamp", field, "thời điểm ở tương lai", "the time is in the future",
                f"no later than {now.isoformat(timespec='seconds')}", moment.isoformat(),
            )  # fmt: skip
        if moment.year < OLDEST_YEAR:
            return _reject(
                "stale_timestamp", field, "thời điểm quá cũ", "the time is too old",
                f"{OLDEST_YEAR} or later", moment.isoformat(),
            )  # fmt: skip
    return None


def _ratio_mismatch(event: IndicatorEvent, ratio: Any) -> Rejection | None:
    """A rate sent with its components must agree with them (to 0.5 % or 0.01 points)."""
    if event.numerator is None and event.denominator is None:
        return None
    if ratio is None:
        return _reject(
            "unexpected_components", "numerator",
            "chỉ tiêu không phải tỷ lệ, không nhận tử số/mẫu số",
            "the indicator is not a rate and takes no numerator/denominator",
            "no numerator or denominator", event.numerator,
        )  # fmt: skip
    if event.numerator is None or event.denominator is None:
        field = "numerator" if event.numerator is None else "denominator"
        return _reject(
            "missing_field", field, "cần cả tử số và mẫu số", "both components are needed",
            "a number", None,
        )  # fmt: skip
    if event.numerator < 0 or event.denominator <= 0:
        return _reject(
            "out_of_range", "denominator", "tử số không âm, mẫu số dương",
            "the numerator must not be negative and the denominator must be positive",
            "numerator >= 0 and denominator > 0", f"{event.numerator}/{event.denominator}",
        )  # fmt: skip
    computed = ratio.compute(event.numerator, event.denominator)
    if not math.isclose(event.value, computed, rel_tol=0.005, abs_tol=0.01):
        return _reject(
            "ratio_mismatch", "value", "giá trị không khớp tử số/mẫu số",
            "the value does not match numerator/denominator", f"{computed:.4g}", event.value,
        )  # fmt: skip
    return None
