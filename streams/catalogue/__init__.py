"""The indicator catalogue: who reports what, where, how often, and how it rolls up.

The data lives in ``data/*.yaml`` under version control; :func:`load_catalogue` reads and
checks it, :func:`default_catalogue` returns the shipped one (loaded once)::

    from streams.catalogue import default_catalogue

    catalogue = default_catalogue()
    catalogue.indicators["online_application_rate"].history
    catalogue.parent_of("sop-cop.muong-lan", date(2025, 7, 1))  # 'son-la'
"""

from streams.catalogue.loader import (
    DATA_DIR,
    EXPECTED_SOURCE_COUNT,
    EXPECTED_VERTICALS,
    HEADLINE_INDICATORS,
    REQUIRED_SOURCES,
    default_catalogue,
    load_catalogue,
)
from streams.catalogue.models import (
    LEVELS,
    SUMMABLE_UNITS,
    AdminUnit,
    Benchmark,
    Catalogue,
    DailyDeadline,
    Deadline,
    HierarchyAggregation,
    HistoryPoint,
    Indicator,
    Level,
    MonthlyDeadline,
    ParentLink,
    QuarterlyDeadline,
    Ratio,
    Rule,
    Severity,
    Source,
    SourceKind,
    Target,
    TimeAggregation,
    Unit,
    ValidRange,
    WeeklyDeadline,
    YearlyDeadline,
)

__all__ = [
    "DATA_DIR",
    "EXPECTED_SOURCE_COUNT",
    "EXPECTED_VERTICALS",
    "HEADLINE_INDICATORS",
    "LEVELS",
    "REQUIRED_SOURCES",
    "SUMMABLE_UNITS",
    "AdminUnit",
    "Benchmark",
    "Catalogue",
    "DailyDeadline",
    "Deadline",
    "HierarchyAggregation",
    "HistoryPoint",
    "Indicator",
    "Level",
    "MonthlyDeadline",
    "ParentLink",
    "QuarterlyDeadline",
    "Ratio",
    "Rule",
    "Severity",
    "Source",
    "SourceKind",
    "Target",
    "TimeAggregation",
    "Unit",
    "ValidRange",
    "WeeklyDeadline",
    "YearlyDeadline",
    "default_catalogue",
    "load_catalogue",
]
