"""The operations-room wall, "Tổng quan": every source's reporting status, the province's
headline indicators against their targets, active alerts, traffic and data freshness.

One function per panel; the layout is the order of :func:`build` (24 columns wide, about one
1080p screen high in kiosk mode).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, table
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    BLUE,
    INDICATOR_COLUMN,
    PROVINCE,
    STANDING_COLUMN,
    TECHNICAL_COLUMNS,
    alerts_table,
    bargauge_panel,
    dashboard,
    dead_letter_thresholds,
    display_name_property,
    finish,
    freshness_thresholds,
    indicator_names,
    indicator_unit,
    indicators_with_province_targets,
    merge,
    organize,
    overdue_mappings,
    overdue_thresholds,
    progress_thresholds,
    query,
    source_drilldown_link,
    stat_panel,
    table_panel,
    unit_property,
    up_mappings,
    with_standing_columns,
    workers_thresholds,
)
from streams.catalogue import HEADLINE_INDICATORS, default_catalogue

UID = "ioc-overview"


def _province(metric: str, *matchers: str) -> str:
    labels = ", ".join((f'area="{PROVINCE}"', 'level="province"', *matchers))
    return f"max without (instance) ({metric}{{{labels}}})"


def overdue_sources() -> stat.Panel:
    """How many sources are overdue now: 0 is green, any is red."""
    return (
        stat_panel(
            "Nguồn quá hạn báo cáo",
            "Number of sources with at least one indicator whose latest due period has no "
            "report. Zero is green; any overdue source turns the tile red.",
            query("sum(max by (source) (ioc_source_overdue))", instant=True),
        )
        .thresholds(overdue_thresholds())
        .unit("none")
        .height(4)
        .span(4)
    )


def active_alerts_count() -> stat.Panel:
    """How many agent alerts fire now."""
    return (
        stat_panel(
            "Số cảnh báo đang hoạt động",
            "Number of alerts the stream agents hold firing now (targets off track, outliers, "
            "broken validation rules, overdue sources). Zero is green.",
            query(
                "count(max without (instance) (ioc_alert_active) == 1) or vector(0)", instant=True
            ),
        )
        .thresholds(overdue_thresholds())
        .unit("none")
        .height(4)
        .span(4)
    )


def events_per_minute() -> stat.Panel:
    """Messages received per minute, with a sparkline of the last hour."""
    return (
        stat_panel(
            "Bản tin nhận mỗi phút",
            "Messages read from all feed topics in the last minute (valid or not), from the "
            "recording rule source:ioc_events_received:increase1m. The line shows the last hour.",
            query("sum(source:ioc_events_received:increase1m)"),
        )
        .graph_mode(common_model.BigValueGraphMode.AREA)
        .color_mode(common_model.BigValueColorMode.VALUE)
        .color_scheme(
            dashboard_builder.FieldColor().mode(model.FieldColorModeId.FIXED).fixed_color(BLUE)
        )
        .unit("short")
        .decimals(0)
        .height(4)
        .span(6)
    )


def dead_letter_share() -> stat.Panel:
    """Share of messages sent to the dead-letter topic over 15 minutes, all sources."""
    return (
        stat_panel(
            "Tỷ lệ bản tin bị từ chối (15 phút)",
            "Share of all messages of the last 15 minutes that went to the dead-letter topic. "
            "Red from the IOCDeadLetterRateHigh threshold (deploy/prometheus/rules/"
            "ioc-thresholds.yml); no traffic in the window shows as no data.",
            query(
                "(sum(rate(ioc_events_rejected_total[15m])) or vector(0)) / "
                'sum(rate({__name__=~"ioc_events_(accepted|rejected)_total"}[15m]))',
                instant=True,
            ),
        )
        .thresholds(dead_letter_thresholds())
        .unit("percentunit")
        .decimals(1)
        .height(4)
        .span(5)
    )


def workers_up() -> stat.Panel:
    """Stream workers Prometheus scrapes successfully; none is red."""
    return (
        stat_panel(
            "Worker xử lý đang chạy",
            "Stream workers that answered Prometheus's last scrape (recording rule job:up:sum). "
            "Zero means the wall, the alerts and new figures have all stopped.",
            query("sum(job:up:sum) or vector(0)", instant=True),
        )
        .thresholds(workers_thresholds())
        .mappings(up_mappings())
        .unit("none")
        .height(4)
        .span(5)
    )


def source_tiles() -> stat.Panel:
    """One tile per source, green on time or red overdue; a click opens the source."""
    count = len(default_catalogue().sources)
    return (
        stat_panel(
            f"Tình trạng báo cáo của {count} nguồn",
            f"One tile per data source ({count}): green when every indicator has its latest due "
            "report, red when some report is overdue (ioc_source_overdue). Click a tile to "
            "open the source drill-down.",
            query("max by (source) (ioc_source_overdue)", "{{source}}", instant=True),
        )
        .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME)
        .mappings(overdue_mappings())
        .thresholds(overdue_thresholds())
        .data_links([source_drilldown_link()])
        .height(9)
        .span(24)
    )


def headline_indicators() -> stat.Panel:
    """The province's latest value of each headline indicator."""
    names = indicator_names()
    queries = [
        query(
            _province("ioc_indicator_value", f'indicator="{code}"'),
            names[code],
            instant=True,
        )
        for code in HEADLINE_INDICATORS
    ]
    panel = (
        stat_panel(
            "Chỉ tiêu chính của tỉnh",
            "Latest reported province value of each headline indicator (ioc_indicator_value, "
            "area son-la): online applications, online public services, activated electronic "
            "IDs, smartphone households, non-cash payments, tax revenue.",
            *queries,
        )
        .text_mode(common_model.BigValueTextMode.VALUE_AND_NAME)
        .color_mode(common_model.BigValueColorMode.VALUE)
        .color_scheme(
            dashboard_builder.FieldColor().mode(model.FieldColorModeId.FIXED).fixed_color(BLUE)
        )
        .height(8)
        .span(10)
    )
    for index, code in enumerate(HEADLINE_INDICATORS):
        panel = panel.override_by_query(
            chr(ord("A") + index), [unit_property(indicator_unit(code))]
        )
    return panel


def target_progress() -> bargauge.Panel:
    """Progress towards its target of every province indicator that has one."""
    panel = (
        bargauge_panel(
            "Tiến độ thực hiện mục tiêu",
            "Progress of each province indicator towards its planned target "
            "(ioc_indicator_progress_ratio; 100 % = met). Red is off track, orange within the "
            "target margin (IOC_TARGET_MARGIN), green met.",
            query(_province("ioc_indicator_progress_ratio"), "{{indicator}}", instant=True),
        )
        .thresholds(progress_thresholds())
        .unit("percentunit")
        .min(0)
        .max(1)
        .decimals(0)
        .height(8)
        .span(14)
    )
    names = indicator_names()
    for code in indicators_with_province_targets():
        panel = panel.override_by_name(code, [display_name_property(names[code])])
    return panel


def targets_table() -> table.Panel:
    """Value, target and standing of every province indicator with a target."""
    value, target = "Giá trị / Value", "Mục tiêu / Target"
    indicator, standing = INDICATOR_COLUMN, STANDING_COLUMN
    panel = (
        table_panel(
            "Chỉ tiêu so với mục tiêu",
            "Every province indicator with a target: latest value, the target for its year "
            "and the standing (ioc_indicator_status: on track, at risk, off track).",
            query(
                _province("ioc_indicator_value")
                + " and on (source, indicator, area, level) ioc_indicator_target",
                instant=True,
                table_format=True,
            ),
            query(_province("ioc_indicator_target"), instant=True, table_format=True),
            query(_province("ioc_indicator_status"), instant=True, table_format=True),
        )
        .with_transformation(merge())
        .with_transformation(
            organize(
                hide=[*TECHNICAL_COLUMNS, "area", "level", "source"],
                rename={
                    "indicator": indicator,
                    "Value #A": value,
                    "Value #B": target,
                    "Value #C": standing,
                },
                order=["indicator", "Value #A", "Value #B", "Value #C"],
            )
        )
        .height(8)
        .span(10)
    )
    return with_standing_columns(panel)


def active_alerts() -> table.Panel:
    """The alerts the stream agents hold firing now."""
    return (
        alerts_table(
            "Cảnh báo đang hoạt động",
            "Alerts the stream agents hold firing now (ioc_alert_active == 1), by severity, "
            "source, indicator and area. The runbooks are in docs/runbooks.md.",
        )
        .height(8)
        .span(8)
    )


def data_freshness() -> bargauge.Panel:
    """The ten sources that have gone longest without a report."""
    return (
        bargauge_panel(
            "Nguồn lâu chưa gửi số liệu nhất",
            "The ten sources whose last valid report is oldest "
            "(ioc_source_last_report_age_seconds, on the monitor's clock). Green within a week, "
            "orange within a month, red beyond (daily and yearly reporters alike).",
            query(
                "sort_desc(topk(10, max by (source) (ioc_source_last_report_age_seconds)))",
                "{{source}}",
                instant=True,
            ),
        )
        .thresholds(freshness_thresholds())
        .unit("s")
        .decimals(1)
        .min(0)
        .data_links([source_drilldown_link()])
        .height(8)
        .span(6)
    )


def build() -> model.Dashboard:
    """The wall overview dashboard."""
    return finish(
        dashboard(
            UID,
            "Tổng quan",
            "Operations-room wall of the Son La IOC: reporting status of every source, the "
            "province's headline indicators against their targets, active alerts, traffic and "
            "data freshness.",
        )
        .with_panel(overdue_sources())
        .with_panel(active_alerts_count())
        .with_panel(events_per_minute())
        .with_panel(dead_letter_share())
        .with_panel(workers_up())
        .with_panel(source_tiles())
        .with_panel(headline_indicators())
        .with_panel(target_progress())
        .with_panel(targets_table())
        .with_panel(active_alerts())
        .with_panel(data_freshness())
    )
