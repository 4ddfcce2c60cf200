"""Source drill-down, "Chi tiết nguồn dữ liệu": one agency's reporting status and history, its
traffic and rejected messages, its indicators and its alerts. The overview's source tiles link
here with ``?var-source=<code>``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    INDICATOR_COLUMN,
    STANDING_COLUMN,
    TECHNICAL_COLUMNS,
    alerts_table,
    bargauge_panel,
    bilingual,
    dashboard,
    finish,
    freshness_thresholds,
    merge,
    organize,
    overdue_mappings,
    overdue_thresholds,
    query,
    query_variable,
    rate_thresholds,
    stat_panel,
    state_timeline_panel,
    table_panel,
    timeseries_panel,
    with_standing_columns,
)

UID = "ioc-source"
SOURCE = 'source="$source"'


def source_variable() -> dashboard_builder.QueryVariable:
    """``$source``: every source the worker watches (also the silent ones)."""
    return query_variable(
        "source",
        "Nguồn / Source",
        "The data source (agency) to show; every source the worker judges for timeliness.",
        "label_values(ioc_source_overdue, source)",
    )


def reporting_status() -> stat.Panel:
    """On time or overdue, now."""
    return (
        stat_panel(
            "Tình trạng báo cáo",
            "Whether the source has a report for the latest due period of every indicator "
            "(ioc_source_overdue): green on time, red overdue.",
            query(f"max(ioc_source_overdue{{{SOURCE}}})", instant=True),
        )
        .mappings(overdue_mappings())
        .thresholds(overdue_thresholds())
        .height(4)
        .span(6)
    )


def overdue_indicators() -> stat.Panel:
    """How many of the source's indicators lack their latest due report."""
    return (
        stat_panel(
            "Số chỉ tiêu quá hạn",
            "Indicators of this source with no report for their latest due period "
            "(ioc_source_overdue_indicators). Zero is green.",
            query(f"max(ioc_source_overdue_indicators{{{SOURCE}}})", instant=True),
        )
        .thresholds(overdue_thresholds())
        .unit("none")
        .height(4)
        .span(4)
    )


def reporting_rate() -> stat.Panel:
    """Reports received over expected for the latest due periods."""
    return (
        stat_panel(
            "Tỷ lệ báo cáo",
            "Reports received over reports expected for the latest due periods "
            "(ioc_source_reporting_rate): red below 80 %, orange below 95 %.",
            query(f"max(ioc_source_reporting_rate{{{SOURCE}}})", instant=True),
        )
        .thresholds(rate_thresholds())
        .unit("percentunit")
        .decimals(0)
        .height(4)
        .span(5)
    )


def on_time_rate() -> stat.Panel:
    """Reports sent by their deadline over reports received."""
    return (
        stat_panel(
            "Tỷ lệ đúng hạn",
            "Reports sent by their deadline over reports received (ioc_source_on_time_rate): "
            "red below 80 %, orange below 95 %.",
            query(f"max(ioc_source_on_time_rate{{{SOURCE}}})", instant=True),
        )
        .thresholds(rate_thresholds())
        .unit("percentunit")
        .decimals(0)
        .height(4)
        .span(5)
    )


def last_report_age() -> stat.Panel:
    """Time since the source's last valid report."""
    return (
        stat_panel(
            "Thời gian từ lần gửi gần nhất",
            "Time since the source last sent a valid report (ioc_source_last_report_age_seconds, "
            "on the monitor's clock): green within a week, orange within a month, red beyond.",
            query(
                f"max(ioc_source_last_report_age_seconds{{{SOURCE}}})",
                instant=True,
            ),
        )
        .thresholds(freshness_thresholds())
        .unit("s")
        .decimals(1)
        .height(4)
        .span(4)
    )


def on_time_history() -> statetimeline.Panel:
    """On time and overdue over the time range."""
    return (
        state_timeline_panel(
            "Lịch sử đúng hạn",
            "When the source was on time (green) or overdue (red) over the time range "
            "(ioc_source_overdue).",
            query(f"max(ioc_source_overdue{{{SOURCE}}})", bilingual("Tình trạng", "Status")),
        )
        .mappings(overdue_mappings())
        .thresholds(overdue_thresholds())
        .height(5)
        .span(24)
    )


def rates_history() -> timeseries.Panel:
    """Reporting and on-time rates over the time range."""
    return (
        timeseries_panel(
            "Tỷ lệ báo cáo và đúng hạn theo thời gian",
            "Reporting rate (received over expected) and on-time rate (sent by the deadline "
            "over received) of the source over the time range.",
            query(f"max(ioc_source_reporting_rate{{{SOURCE}}})", bilingual("Báo cáo", "Reporting")),
            query(f"max(ioc_source_on_time_rate{{{SOURCE}}})", bilingual("Đúng hạn", "On time")),
        )
        .thresholds(rate_thresholds())
        .unit("percentunit")
        .min(0)
        .max(1)
        .height(8)
        .span(12)
    )


def traffic() -> timeseries.Panel:
    """The source's messages per minute: received, accepted, rejected, duplicate."""
    return (
        timeseries_panel(
            "Bản tin của nguồn mỗi phút",
            "Messages of this source in the last minute: received, accepted, rejected (sent to "
            "the dead-letter topic) and duplicates dropped. A source that never had one shows 0.",
            query(
                f"sum(source:ioc_events_received:increase1m{{{SOURCE}}}) or vector(0)",
                bilingual("Nhận", "Received"),
            ),
            query(
                f"sum(source:ioc_events_accepted:increase1m{{{SOURCE}}}) or vector(0)",
                bilingual("Hợp lệ", "Accepted"),
            ),
            query(
                f"sum(source:ioc_events_rejected:increase1m{{{SOURCE}}}) or vector(0)",
                bilingual("Bị từ chối", "Rejected"),
            ),
            query(
                f"sum(increase(ioc_events_duplicate_total{{{SOURCE}}}[1m])) or vector(0)",
                bilingual("Trùng lặp", "Duplicate"),
            ),
        )
        .unit("short")
        .min(0)
        .height(8)
        .span(12)
    )


def rejects_by_reason() -> bargauge.Panel:
    """The source's rejected messages over the time range, by reason."""
    return (
        bargauge_panel(
            "Bản tin bị từ chối theo lý do",
            "Messages of this source sent to the dead-letter topic over the dashboard's time "
            "range, by reason code (ioc_events_rejected_total). `ioc rejects --source <code>` "
            "lists them with the field at fault.",
            query(
                f"sort_desc(sum by (reason) (increase(ioc_events_rejected_total{{{SOURCE}}}"
                "[$__range])))",
                "{{reason}}",
                instant=True,
            ),
        )
        .thresholds(overdue_thresholds())
        .unit("short")
        .decimals(0)
        .min(0)
        .no_value(bilingual("Không có bản tin bị từ chối", "No rejected messages"))
        .height(10)
        .span(6)
    )


def indicators_table() -> table.Panel:
    """Every series of the source: latest value and, with a target, its standing."""
    indicator, standing = INDICATOR_COLUMN, STANDING_COLUMN
    panel = (
        table_panel(
            "Chỉ tiêu của nguồn",
            "Latest reported value of every indicator and area of this source "
            "(ioc_indicator_value), with its standing against the target where it has one "
            "(ioc_indicator_status).",
            query(
                f"max without (instance) (ioc_indicator_value{{{SOURCE}}})",
                instant=True,
                table_format=True,
            ),
            query(
                f"max without (instance) (ioc_indicator_status{{{SOURCE}}})",
                instant=True,
                table_format=True,
            ),
        )
        .with_transformation(merge())
        .with_transformation(
            organize(
                hide=[*TECHNICAL_COLUMNS, "source"],
                rename={
                    "indicator": indicator,
                    "area": "Địa bàn / Area",
                    "level": "Cấp / Level",
                    "Value #A": "Giá trị / Value",
                    "Value #B": standing,
                },
                order=["indicator", "area", "level", "Value #A", "Value #B"],
            )
        )
        .height(10)
        .span(10)
    )
    return with_standing_columns(panel)


def source_alerts() -> table.Panel:
    """The source's alerts firing now."""
    return (
        alerts_table(
            "Cảnh báo của nguồn",
            "Alerts the stream agents hold firing now for this source (ioc_alert_active).",
            SOURCE,
        )
        .no_value(bilingual("Không có cảnh báo", "No alerts"))
        .height(10)
        .span(8)
    )


def build() -> model.Dashboard:
    """The source drill-down dashboard."""
    return finish(
        dashboard(
            UID,
            "Chi tiết nguồn dữ liệu",
            "Drill-down of one data source (agency) of the Son La IOC: reporting status and "
            "history, traffic, rejected messages by reason, its indicators and alerts.",
        )
        .with_variable(source_variable())
        .with_panel(reporting_status())
        .with_panel(overdue_indicators())
        .with_panel(reporting_rate())
        .with_panel(on_time_rate())
        .with_panel(last_report_age())
        .with_panel(on_time_history())
        .with_panel(rates_history())
        .with_panel(traffic())
        .with_panel(rejects_by_reason())
        .with_panel(indicators_table())
        .with_panel(source_alerts())
    )
