"""Area drill-down, "Chi tiết địa bàn": one district's indicators, what its communes add up to,
and how the districts compare on one indicator.

No map: Grafana's geomap panel needs a basemap (by default tiles fetched from CARTO or
OpenStreetMap over the internet) and district shapes or coordinates, which the catalogue does
not hold; an operations room on a closed network would show an empty frame. The comparison
bar chart carries the geography instead.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from dashboards.common import (
    BLUE,
    TECHNICAL_COLUMNS,
    bargauge_panel,
    bilingual,
    dashboard,
    display_name_property,
    district_names,
    finish,
    indicator_names,
    mappings_property,
    merge,
    names_mappings,
    organize,
    overdue_thresholds,
    query,
    query_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "ioc-area"
DISTRICT = 'area="$district"'
INDICATOR = 'indicator="$indicator"'


def _fixed_blue() -> dashboard_builder.FieldColor:
    # Counts and values without a good or bad direction: one neutral colour.
    return dashboard_builder.FieldColor().mode(model.FieldColorModeId.FIXED).fixed_color(BLUE)


def district_variable() -> dashboard_builder.QueryVariable:
    """``$district``: every district with a reported value."""
    return query_variable(
        "district",
        "Huyện / District",
        "The district (or town, city) to show: those with reported district-level values. "
        "Districts exist until the 2025-07-01 reform; later figures are by commune.",
        'label_values(ioc_indicator_value{level="district"}, area)',
    )


def indicator_variable() -> dashboard_builder.QueryVariable:
    """``$indicator``: the district-level indicators of the chosen district."""
    return query_variable(
        "indicator",
        "Chỉ tiêu / Indicator",
        "The indicator to compare across districts and to follow over time.",
        f'label_values(ioc_indicator_value{{level="district", {DISTRICT}}}, indicator)',
    )


def reported_indicators() -> stat.Panel:
    """How many indicator series the district has a value for."""
    return (
        stat_panel(
            "Số chỉ tiêu có số liệu",
            "Indicator series with a reported value for this district (ioc_indicator_value).",
            query(
                f"count(max without (instance) (ioc_indicator_value{{{DISTRICT}}}))", instant=True
            ),
        )
        .color_mode(common_model.BigValueColorMode.VALUE)
        .color_scheme(_fixed_blue())
        .unit("none")
        .height(4)
        .span(6)
    )


def district_alerts() -> stat.Panel:
    """How many alerts fire for the district."""
    return (
        stat_panel(
            "Cảnh báo tại địa bàn",
            "Alerts the stream agents hold firing now for this district (ioc_alert_active). "
            "Zero is green.",
            query(
                f"count(max without (instance) (ioc_alert_active{{{DISTRICT}}}) == 1) or vector(0)",
                instant=True,
            ),
        )
        .thresholds(overdue_thresholds())
        .unit("none")
        .height(4)
        .span(6)
    )


def communes_reporting() -> stat.Panel:
    """The most communes contributing to any of the district's rollups."""
    return (
        stat_panel(
            "Số xã có số liệu tổng hợp",
            "Largest number of communes contributing to a rollup of this district "
            "(ioc_indicator_rollup_children): how much of the district its commune figures cover.",
            query(f"max(ioc_indicator_rollup_children{{{DISTRICT}}})", instant=True),
        )
        .color_mode(common_model.BigValueColorMode.VALUE)
        .color_scheme(_fixed_blue())
        .unit("none")
        .height(4)
        .span(6)
    )


def selected_value() -> stat.Panel:
    """The district's latest value of the chosen indicator."""
    return (
        stat_panel(
            "Giá trị chỉ tiêu đã chọn",
            "Latest reported value of the chosen indicator ($indicator) for this district.",
            query(f"max(ioc_indicator_value{{{DISTRICT}, {INDICATOR}}})", instant=True),
        )
        .color_mode(common_model.BigValueColorMode.VALUE)
        .color_scheme(_fixed_blue())
        .height(4)
        .span(6)
    )


def district_indicators() -> table.Panel:
    """Each indicator of the district: as reported, and as its communes add up."""
    indicator = "Chỉ tiêu / Indicator"
    return (
        table_panel(
            "Chỉ tiêu của địa bàn",
            "Latest value of every indicator reported for this district (ioc_indicator_value), "
            "next to the value computed from its communes (ioc_indicator_rollup_value) and how "
            "many communes contributed. A gap between the two is worth a question to the agency.",
            query(
                f"max without (instance) (ioc_indicator_value{{{DISTRICT}}})",
                instant=True,
                table_format=True,
            ),
            query(
                f"max without (instance) (ioc_indicator_rollup_value{{{DISTRICT}}})",
                instant=True,
                table_format=True,
            ),
            query(
                f"max without (instance) (ioc_indicator_rollup_children{{{DISTRICT}}})",
                instant=True,
                table_format=True,
            ),
        )
        .with_transformation(merge())
        .with_transformation(
            organize(
                hide=[*TECHNICAL_COLUMNS, "area", "level"],
                rename={
                    "indicator": indicator,
                    "source": "Nguồn / Source",
                    "Value #A": "Báo cáo / Reported",
                    "Value #B": "Tổng hợp từ xã / From communes",
                    "Value #C": "Số xã / Communes",
                },
                order=["indicator", "source", "Value #A", "Value #B", "Value #C"],
            )
        )
        .override_by_name(indicator, [mappings_property(names_mappings(indicator_names()))])
        .height(10)
        .span(14)
    )


def district_comparison() -> bargauge.Panel:
    """The chosen indicator across all districts."""
    panel = (
        bargauge_panel(
            "So sánh giữa các huyện",
            "Latest value of the chosen indicator ($indicator) in every district, largest first.",
            query(
                f'sort_desc(max by (area) (ioc_indicator_value{{level="district", {INDICATOR}}}))',
                "{{area}}",
                instant=True,
            ),
        )
        .color_scheme(_fixed_blue())
        .min(0)
        .height(10)
        .span(10)
    )
    for code, name in sorted(district_names().items()):
        panel = panel.override_by_name(code, [display_name_property(name)])
    return panel


def indicator_history() -> timeseries.Panel:
    """The chosen indicator for the district over time: reported and from communes."""
    return (
        timeseries_panel(
            "Diễn biến chỉ tiêu tại địa bàn",
            "The chosen indicator ($indicator) for this district over the time range: the "
            "reported value and the value computed from its communes.",
            query(
                f"max(ioc_indicator_value{{{DISTRICT}, {INDICATOR}}})",
                bilingual("Báo cáo", "Reported"),
            ),
            query(
                f"max(ioc_indicator_rollup_value{{{DISTRICT}, {INDICATOR}}})",
                bilingual("Tổng hợp từ xã", "From communes"),
            ),
        )
        .height(8)
        .span(24)
    )


def build() -> model.Dashboard:
    """The area drill-down dashboard."""
    return finish(
        dashboard(
            UID,
            "Chi tiết địa bàn",
            "Drill-down of one district of Son La province: its indicators as reported and as "
            "its communes add up, its alerts, and the districts compared on one indicator.",
        )
        .with_variable(district_variable())
        .with_variable(indicator_variable())
        .with_panel(reported_indicators())
        .with_panel(district_alerts())
        .with_panel(communes_reporting())
        .with_panel(selected_value())
        .with_panel(district_indicators())
        .with_panel(district_comparison())
        .with_panel(indicator_history())
    )
