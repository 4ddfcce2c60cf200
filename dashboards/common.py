"""Defaults every IOC dashboard shares: the datasource, colours, thresholds, value mappings,
names from the catalogue, and the panel builders each panel function starts from.

What operators read (titles, mapped texts) is Vietnamese first, then English; descriptions
(the ``i`` tooltip of a panel) are English. Colour always carries the meaning: green is fine,
orange needs attention, red needs action, grey means no data yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache

import yaml
from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from ioc.settings import PROJECT_ROOT, Settings
from streams.catalogue import default_catalogue

# --- where the data comes from ---------------------------------------------------------------
#: The Prometheus datasource provisioned by deploy/grafana/provisioning/datasources/.
DATASOURCE_UID = "ioc-prometheus"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)

# --- kiosk defaults ---------------------------------------------------------------------------
#: The wall refreshes often enough to follow a deadline passing, rarely enough to be cheap.
REFRESH = "10s"
REFRESH_CHOICES = ["5s", "10s", "30s", "1m", "5m"]
TIME_FROM = "now-1h"
TIMEZONE = "Asia/Ho_Chi_Minh"
TAGS = ["ioc", "son-la"]
#: The area whose figures the wall headlines: the province.
PROVINCE = "son-la"

# --- colours (Grafana's named palette, so light and dark themes both read well) -------------
GREEN = "green"
ORANGE = "orange"
RED = "red"
BLUE = "blue"
GREY = "#8e8e8e"

# --- thresholds shared with the alert rules ---------------------------------------------------
THRESHOLDS_FILE = PROJECT_ROOT / "deploy" / "prometheus" / "rules" / "ioc-thresholds.yml"
_VECTOR = re.compile(r"^\s*vector\(\s*([0-9.eE+-]+)\s*\)\s*$")


@cache
def alert_threshold(name: str) -> float:
    """The value of ``ioc:alert_threshold:<name>`` in deploy/prometheus/rules/ioc-thresholds.yml.

    Panels colour at the same point where the alert fires, so the wall and the pager never
    disagree; the rules file stays the one place a threshold is changed.
    """
    record = f"ioc:alert_threshold:{name}"
    data = yaml.safe_load(THRESHOLDS_FILE.read_text(encoding="utf-8"))
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("record") == record:
                match = _VECTOR.match(str(rule["expr"]))
                if match is None:
                    msg = f"{record} in {THRESHOLDS_FILE} is not a vector(<number>)"
                    raise ValueError(msg)
                return float(match.group(1))
    msg = f"no recording rule {record} in {THRESHOLDS_FILE}"
    raise KeyError(msg)


def target_margin() -> float:
    """The default ``IOC_TARGET_MARGIN``: within this fraction of a target, a figure is at risk."""
    default = Settings.model_fields["target_margin"].default
    assert isinstance(default, float)
    return default


# --- texts ------------------------------------------------------------------------------------
def bilingual(vi: str, en: str) -> str:
    """What an operator reads: Vietnamese, then English."""
    return f"{vi} / {en}"


NO_DATA = bilingual("CHƯA CÓ SỐ LIỆU", "NO DATA")

#: Vietnamese names of the stream agents' alerts (agents/alerts.py PROMETHEUS_ALERTS).
ALERT_NAMES: Mapping[str, str] = {
    "target_off_track": bilingual("Chậm tiến độ mục tiêu", "Target off track"),
    "value_out_of_range": bilingual("Giá trị ngoài khoảng hợp lệ", "Value out of range"),
    "outlier": bilingual("Giá trị bất thường", "Outlier"),
    "sudden_change": bilingual("Thay đổi đột ngột", "Sudden change"),
    "validation_rule": bilingual("Vi phạm quy tắc kiểm tra", "Validation rule broken"),
    "source_overdue": bilingual("Nguồn quá hạn báo cáo", "Source overdue"),
}


# --- value mappings ---------------------------------------------------------------------------
def value_mappings(
    options: Mapping[str, tuple[str, str]], *, no_data: bool = False
) -> list[model.ValueMapping]:
    """Value-to-text mappings ``{value: (text, colour)}`` in the given order; with ``no_data``,
    null and NaN also show as a grey "no data" rather than an empty tile."""
    mappings: list[model.ValueMapping] = [
        model.ValueMap(
            {
                value: model.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, (text, color)) in enumerate(options.items())
            }
        )
    ]
    if no_data:
        mappings.append(
            model.SpecialValueMap(
                model.DashboardSpecialValueMapOptions(
                    match=model.SpecialValueMatch.NULL_AND_NAN,
                    result=model.ValueMappingResult(text=NO_DATA, color=GREY, index=len(options)),
                )
            )
        )
    return mappings


def overdue_mappings() -> list[model.ValueMapping]:
    """``ioc_source_overdue``: 0 on time (green), 1 overdue (red)."""
    return value_mappings(
        {
            "0": (bilingual("ĐÚNG HẠN", "ON TIME"), GREEN),
            "1": (bilingual("QUÁ HẠN", "OVERDUE"), RED),
        },
        no_data=True,
    )


def status_mappings() -> list[model.ValueMapping]:
    """``ioc_indicator_status``: 0 on track (green), 1 at risk (orange), 2 off track (red)."""
    return value_mappings(
        {
            "0": (bilingual("ĐÚNG TIẾN ĐỘ", "ON TRACK"), GREEN),
            "1": (bilingual("CÓ NGUY CƠ CHẬM", "AT RISK"), ORANGE),
            "2": (bilingual("CHẬM TIẾN ĐỘ", "OFF TRACK"), RED),
        },
        no_data=True,
    )


def up_mappings() -> list[model.ValueMapping]:
    """Workers up: none is red "down"; any number up keeps its count (thresholds colour it)."""
    return value_mappings({"0": (bilingual("NGỪNG HOẠT ĐỘNG", "DOWN"), RED)}, no_data=True)


def worker_state_mappings() -> list[model.ValueMapping]:
    """``up`` of one worker: 1 up (green), 0 down (red)."""
    return value_mappings(
        {
            "0": (bilingual("NGỪNG HOẠT ĐỘNG", "DOWN"), RED),
            "1": (bilingual("HOẠT ĐỘNG", "UP"), GREEN),
        }
    )


def severity_mappings() -> list[model.ValueMapping]:
    """The ``severity`` label of an alert."""
    return value_mappings(
        {
            "critical": (bilingual("NGHIÊM TRỌNG", "CRITICAL"), RED),
            "warning": (bilingual("CẢNH BÁO", "WARNING"), ORANGE),
            "info": (bilingual("THÔNG TIN", "INFO"), BLUE),
        }
    )


# --- thresholds -------------------------------------------------------------------------------
def thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds: ``base`` below the first step, then each ``(from, colour)``."""
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def overdue_thresholds() -> dashboard_builder.ThresholdsConfig:
    """0 green, 1 red (one overdue source, alert or error is already one too many)."""
    return thresholds(GREEN, (1, RED))


def status_thresholds() -> dashboard_builder.ThresholdsConfig:
    """0 green, 1 orange, 2 red: the codes of ``ioc_indicator_status``."""
    return thresholds(GREEN, (1, ORANGE), (2, RED))


def progress_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Progress to a target (1 = met): red off track, orange within the margin, green met."""
    return thresholds(RED, (round(1 - target_margin(), 6), ORANGE), (1, GREEN))


def rate_thresholds() -> dashboard_builder.ThresholdsConfig:
    """A 0..1 reporting or on-time rate: red below 80 %, orange below 95 %, green above."""
    return thresholds(RED, (0.8, ORANGE), (0.95, GREEN))


def dead_letter_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Share of messages rejected: red from the IOCDeadLetterRateHigh threshold on."""
    limit = alert_threshold("dead_letter_ratio")
    return thresholds(GREEN, (limit / 2, ORANGE), (limit, RED))


def lag_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Messages behind: red from the IOCConsumerLagGrowing threshold on."""
    limit = alert_threshold("consumer_lag_messages")
    return thresholds(GREEN, (limit / 2, ORANGE), (limit, RED))


def workers_thresholds() -> dashboard_builder.ThresholdsConfig:
    """No worker is red; one or more is green."""
    return thresholds(RED, (1, GREEN))


#: End-to-end latency (agency's send to evaluated) that needs attention, and action.
LATENCY_WARNING_SECONDS = 5.0
LATENCY_CRITICAL_SECONDS = 30.0


def latency_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Seconds from an agency's send to the value on the wall."""
    return thresholds(GREEN, (LATENCY_WARNING_SECONDS, ORANGE), (LATENCY_CRITICAL_SECONDS, RED))


#: How long since a source's last report before its bar turns orange (a week) and red (a month).
FRESHNESS_WARNING_SECONDS = 7 * 86400
FRESHNESS_CRITICAL_SECONDS = 31 * 86400


def freshness_thresholds() -> dashboard_builder.ThresholdsConfig:
    """Seconds since the last report: green within a week, orange within a month, then red."""
    return thresholds(GREEN, (FRESHNESS_WARNING_SECONDS, ORANGE), (FRESHNESS_CRITICAL_SECONDS, RED))


# --- names from the catalogue -----------------------------------------------------------------
@cache
def indicator_names() -> Mapping[str, str]:
    """Indicator code -> Vietnamese name, from the catalogue."""
    return {code: ind.name_vi for code, ind in default_catalogue().indicators.items()}


@cache
def district_names() -> Mapping[str, str]:
    """District code -> Vietnamese name, for every district the catalogue has ever held."""
    return {
        code: unit.name_vi
        for code, unit in default_catalogue().areas.items()
        if unit.level == "district"
    }


def names_mappings(names: Mapping[str, str]) -> list[model.ValueMapping]:
    """Show codes in a table column as names (colour left to the column's own settings)."""
    return [
        model.ValueMap(
            {
                code: model.ValueMappingResult(text=name, index=index)
                for index, (code, name) in enumerate(sorted(names.items()))
            }
        )
    ]


#: Grafana units ("standard options") for the catalogue's units; suffixes read in Vietnamese.
_UNITS: Mapping[str, str] = {
    "percent": "percent",
    "percent_change": "percent",
    "count": "short",
    "people": "short",
    "vnd": "currencyVND",
    "billion_vnd": "suffix: tỷ đồng",
    "hectare": "suffix: ha",
    "tonne": "suffix: tấn",
    "index": "none",
}


def indicator_unit(code: str) -> str:
    """The Grafana unit of an indicator's values."""
    return _UNITS.get(default_catalogue().indicators[code].unit, "short")


@cache
def indicators_with_province_targets() -> tuple[str, ...]:
    """Indicators with a target for the province, in catalogue order."""
    return tuple(
        code
        for code, ind in default_catalogue().indicators.items()
        if any(target.area == PROVINCE for target in ind.targets)
    )


# --- queries ----------------------------------------------------------------------------------
def query(
    expr: str,
    legend: str = "",
    *,
    instant: bool = False,
    table_format: bool = False,
) -> prometheus_builder.Dataquery:
    """A PromQL query on the IOC datasource. Panels give it its ``refId`` (see ``targets``).

    ``instant`` for what shows the value now (tiles, tables, bars); otherwise a range query
    for graphs over the dashboard's time range.
    """
    built = (
        prometheus_builder.Dataquery()
        .datasource(DATASOURCE)
        .expr(expr)
        .editor_mode(prometheus_model.QueryEditorMode.CODE)
    )
    if legend:
        built = built.legend_format(legend)
    built = built.instant() if instant else built.range()
    if table_format:
        built = built.format(prometheus_model.PromQueryFormat.TABLE)
    return built


def ref_ids(queries: Sequence[prometheus_builder.Dataquery]) -> list[Builder[Dataquery]]:
    """Give the queries of one panel the refIds A, B, C, ... in order."""
    return [q.ref_id(chr(ord("A") + index)) for index, q in enumerate(queries)]


# --- panels -----------------------------------------------------------------------------------
def stat_panel(title: str, description: str, *queries: prometheus_builder.Dataquery) -> stat.Panel:
    """A stat panel: the last value, coloured by thresholds or mappings, no sparkline."""
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(ref_ids(queries))
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .text_mode(common.BigValueTextMode.AUTO)
        .no_value(NO_DATA)
    )


def bargauge_panel(
    title: str, description: str, *queries: prometheus_builder.Dataquery
) -> bargauge.Panel:
    """A horizontal bar gauge, one bar per series, coloured by thresholds."""
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(ref_ids(queries))
        .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .name_placement(common.BarGaugeNamePlacement.LEFT)
        .show_unfilled(True)
        .color_scheme(dashboard_builder.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .no_value(NO_DATA)
    )


def timeseries_panel(
    title: str, description: str, *queries: prometheus_builder.Dataquery
) -> timeseries.Panel:
    """A line graph over the time range, legend below, shared tooltip."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(ref_ids(queries))
        .line_width(2)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .draw_style(common.GraphDrawStyle.LINE)
        .line_interpolation(common.LineInterpolation.SMOOTH)
        .span_nulls(True)
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .no_value(NO_DATA)
    )


def state_timeline_panel(
    title: str, description: str, *queries: prometheus_builder.Dataquery
) -> statetimeline.Panel:
    """A state timeline: one band per series, each state in its mapped colour."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(ref_ids(queries))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.8)
        .fill_opacity(80)
        .line_width(0)
        .align_value(common.TimelineValueAlignment.CENTER)
        .legend(common_builder.VizLegendOptions().show_legend(False))
        .no_value(NO_DATA)
    )


def table_panel(
    title: str, description: str, *queries: prometheus_builder.Dataquery
) -> table.Panel:
    """A table of the current values (instant queries in table format)."""
    return (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(ref_ids(queries))
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .footer(common_builder.TableFooterOptions().show(False))
        .no_value(NO_DATA)
    )


def organize(
    *,
    hide: Sequence[str],
    rename: Mapping[str, str],
    order: Sequence[str] = (),
) -> model.DataTransformerConfig:
    """The ``organize`` transformation: hide columns, rename and order the others."""
    return model.DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(hide, True),
            "renameByName": dict(rename),
            "indexByName": {name: index for index, name in enumerate(order)},
        },
    )


def merge() -> model.DataTransformerConfig:
    """The ``merge`` transformation: several table queries joined on their common labels."""
    return model.DataTransformerConfig(id_val="merge", options={})


#: Columns of an instant table query that say nothing to an operator.
TECHNICAL_COLUMNS = ("Time", "__name__", "instance", "job", "service")


def cell_colour_background() -> model.DynamicConfigValue:
    """Override property: colour a table cell's background from its mapping or thresholds."""
    return model.DynamicConfigValue(
        id_val="custom.cellOptions",
        value=common.TableColoredBackgroundCellOptions(
            mode=common.TableCellBackgroundDisplayMode.BASIC
        ),
    )


def mappings_property(mappings: list[model.ValueMapping]) -> model.DynamicConfigValue:
    """Override property: these value mappings."""
    return model.DynamicConfigValue(id_val="mappings", value=mappings)


def thresholds_property(
    config: dashboard_builder.ThresholdsConfig,
) -> model.DynamicConfigValue:
    """Override property: these thresholds."""
    return model.DynamicConfigValue(id_val="thresholds", value=config.build())


def unit_property(unit: str) -> model.DynamicConfigValue:
    """Override property: this unit."""
    return model.DynamicConfigValue(id_val="unit", value=unit)


def display_name_property(name: str) -> model.DynamicConfigValue:
    """Override property: this display name."""
    return model.DynamicConfigValue(id_val="displayName", value=name)


def threshold_line_properties() -> list[model.DynamicConfigValue]:
    """Override properties that draw an alert-threshold series as a dashed red line."""
    return [
        model.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": RED}),
        model.DynamicConfigValue(
            id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
        ),
        model.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


def source_drilldown_link() -> dashboard_builder.DashboardLink:
    """Data link from a series with a ``source`` label to that source's drill-down."""
    return (
        dashboard_builder.DashboardLink(bilingual("Xem chi tiết nguồn", "Open the source"))
        .url("/d/ioc-source?var-source=${__field.labels.source}&${__url_time_range}")
        .target_blank(False)
    )


# --- dashboards -------------------------------------------------------------------------------
def dashboard(uid: str, title: str, description: str) -> dashboard_builder.Dashboard:
    """A kiosk-friendly dashboard: read-only, refreshing every 10 s over the last hour, in
    province time, with a menu of the other IOC dashboards."""
    return (
        dashboard_builder.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .variables([])
        .readonly()
        .refresh(REFRESH)
        .time(TIME_FROM, "now")
        .timezone(TIMEZONE)
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .timepicker(dashboard_builder.TimePicker().refresh_intervals(REFRESH_CHOICES))
        .link(
            dashboard_builder.DashboardLink(bilingual("Bảng điều khiển IOC", "IOC dashboards"))
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["ioc"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


def query_variable(
    name: str, label: str, description: str, expr: str
) -> dashboard_builder.QueryVariable:
    """A single-choice variable whose values are a label's values in Prometheus."""
    return (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(expr)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(False)
        .include_all(False)
    )


def finish(builder: dashboard_builder.Dashboard) -> model.Dashboard:
    """Build the dashboard and number its panels 1, 2, ... in layout order (stable ids)."""
    built = builder.build()
    for index, panel in enumerate(built.panels or [], start=1):
        if isinstance(panel, model.Panel):
            panel.id_val = index
    return built


# --- tables shared by several dashboards ----------------------------------------------------
INDICATOR_COLUMN = "Chỉ tiêu / Indicator"
STANDING_COLUMN = "Đánh giá / Standing"
ALERT_COLUMNS: Mapping[str, str] = {
    "severity": "Mức độ / Severity",
    "alertname": "Cảnh báo / Alert",
    "source": "Nguồn / Source",
    "indicator": INDICATOR_COLUMN,
    "area": "Địa bàn / Area",
}


def with_standing_columns(panel: table.Panel) -> table.Panel:
    """Name the indicator column and colour the standing column (on track, at risk, off)."""
    return panel.override_by_name(
        INDICATOR_COLUMN, [mappings_property(names_mappings(indicator_names()))]
    ).override_by_name(
        STANDING_COLUMN,
        [
            mappings_property(status_mappings()),
            thresholds_property(status_thresholds()),
            cell_colour_background(),
        ],
    )


def alerts_table(title: str, description: str, matchers: str = "") -> table.Panel:
    """The alerts the stream agents hold firing now (``matchers`` narrows them), by severity.

    A column fixed by ``matchers`` (such as the source of a drill-down) is hidden.
    """
    fixed = {name for name in ALERT_COLUMNS if f"{name}=" in matchers}
    shown = [name for name in ALERT_COLUMNS if name not in fixed]
    selector = f"{{{matchers}}}" if matchers else ""
    return (
        table_panel(
            title,
            description,
            query(
                f"max without (instance) (ioc_alert_active{selector}) == 1",
                instant=True,
                table_format=True,
            ),
        )
        .with_transformation(
            organize(
                hide=[*TECHNICAL_COLUMNS, "Value", *fixed],
                rename={name: ALERT_COLUMNS[name] for name in shown},
                order=shown,
            )
        )
        .override_by_name(
            ALERT_COLUMNS["severity"],
            [mappings_property(severity_mappings()), cell_colour_background()],
        )
        .override_by_name(
            ALERT_COLUMNS["alertname"], [mappings_property(names_mappings(ALERT_NAMES))]
        )
    )
