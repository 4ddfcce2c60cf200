"""Pipeline health, "Sức khỏe hệ thống xử lý": workers, throughput, consumer lag, end-to-end
latency, dead letters and internal errors: what the on-call engineer looks at when the wall
goes quiet. Thresholds are those of the alerts in deploy/prometheus/rules/.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from dashboards import overview
from dashboards.common import (
    bargauge_panel,
    bilingual,
    dashboard,
    dead_letter_thresholds,
    finish,
    lag_thresholds,
    latency_thresholds,
    overdue_thresholds,
    query,
    stat_panel,
    state_timeline_panel,
    threshold_line_properties,
    timeseries_panel,
    worker_state_mappings,
    workers_thresholds,
)

UID = "ioc-pipeline"
LATENCY = "quantile:ioc_processing_latency_seconds:histogram_quantile5m"


def _dashed_thresholds() -> common_builder.GraphThresholdsStyleConfig:
    return common_builder.GraphThresholdsStyleConfig().mode(
        common_model.GraphThresholdsStyleMode.DASHED
    )


def workers_up() -> stat.Panel:
    """Workers up (the overview's tile, narrower)."""
    return overview.workers_up().span(4)


def total_lag() -> stat.Panel:
    """Messages the workers are behind, all topics together."""
    return (
        stat_panel(
            "Bản tin chờ xử lý",
            "Messages between the workers' positions and the ends of all topics they read "
            "(topic:ioc_consumer_lag_messages:sum, summed). Red from the IOCConsumerLagGrowing "
            "threshold.",
            query("sum(topic:ioc_consumer_lag_messages:sum) or vector(0)", instant=True),
        )
        .thresholds(lag_thresholds())
        .unit("short")
        .decimals(0)
        .height(4)
        .span(4)
    )


def latency_p99() -> stat.Panel:
    """99th percentile of end-to-end latency over five minutes."""
    return (
        stat_panel(
            "Độ trễ xử lý p99 (5 phút)",
            "99th percentile of the time from an agency's send to the value evaluated by the "
            "worker, over 5 minutes (recording rule "
            "quantile:ioc_processing_latency_seconds:histogram_quantile5m).",
            query(f'max({LATENCY}{{quantile="0.99"}})', instant=True),
        )
        .thresholds(latency_thresholds())
        .unit("s")
        .decimals(2)
        .height(4)
        .span(4)
    )


def dead_letter_share() -> stat.Panel:
    """Share of messages rejected (the overview's tile, narrower)."""
    return overview.dead_letter_share().span(4)


def internal_errors() -> stat.Panel:
    """Records an agent could not process in the last hour."""
    return (
        stat_panel(
            "Lỗi xử lý nội bộ (1 giờ)",
            "Records an agent could not process in the last hour (ioc_internal_errors_total): a "
            "bug or a foreign writer on an internal topic. Anything but zero needs the worker log.",
            query("sum(increase(ioc_internal_errors_total[1h])) or vector(0)", instant=True),
        )
        .thresholds(overdue_thresholds())
        .unit("short")
        .decimals(0)
        .height(4)
        .span(4)
    )


def pipeline_alerts() -> stat.Panel:
    """Pipeline alerts Prometheus fires now."""
    return (
        stat_panel(
            "Cảnh báo hệ thống đang phát",
            "Pipeline alerts firing in Prometheus now (IOCWorkerDown, IOCConsumerLagGrowing, "
            "IOCDeadLetterRateHigh). Zero is green.",
            query(
                'count(ALERTS{alertstate="firing", category="pipeline"}) or vector(0)',
                instant=True,
            ),
        )
        .thresholds(overdue_thresholds())
        .unit("none")
        .height(4)
        .span(4)
    )


def throughput() -> timeseries.Panel:
    """Messages per minute: received, accepted, rejected, duplicates, corrections."""
    return (
        timeseries_panel(
            "Lưu lượng bản tin mỗi phút",
            "Messages per minute over all sources: read from the feeds, accepted, sent to the "
            "dead-letter topic, dropped as duplicates, and corrections of earlier values "
            "(recording rules source:ioc_events_*:increase1m).",
            query(
                "sum(source:ioc_events_received:increase1m) or vector(0)",
                bilingual("Nhận", "Received"),
            ),
            query(
                "sum(source:ioc_events_accepted:increase1m) or vector(0)",
                bilingual("Hợp lệ", "Accepted"),
            ),
            query(
                "sum(source:ioc_events_rejected:increase1m) or vector(0)",
                bilingual("Bị từ chối", "Rejected"),
            ),
            query(
                "sum(increase(ioc_events_duplicate_total[1m])) or vector(0)",
                bilingual("Trùng lặp", "Duplicate"),
            ),
            query(
                "sum(increase(ioc_events_correction_total[1m])) or vector(0)",
                bilingual("Đính chính", "Correction"),
            ),
        )
        .unit("short")
        .min(0)
        .height(8)
        .span(12)
    )


def consumer_lag() -> timeseries.Panel:
    """Lag of the five topics furthest behind, against the alert threshold."""
    return (
        timeseries_panel(
            "Độ trễ tiêu thụ theo chủ đề",
            "Messages the workers are behind on the five topics furthest behind "
            "(topic:ioc_consumer_lag_messages:sum), and the IOCConsumerLagGrowing threshold as "
            "a dashed red line.",
            query("topk(5, topic:ioc_consumer_lag_messages:sum)", "{{topic}}"),
            query(
                "ioc:alert_threshold:consumer_lag_messages",
                bilingual("Ngưỡng cảnh báo", "Alert threshold"),
            ),
        )
        .thresholds(lag_thresholds())
        .override_by_query("B", threshold_line_properties())
        .unit("short")
        .min(0)
        .height(8)
        .span(12)
    )


def latency() -> timeseries.Panel:
    """End-to-end latency percentiles over time."""
    return (
        timeseries_panel(
            "Độ trễ xử lý đầu-cuối",
            "Time from an agency's send to the value evaluated by the worker: median, 95th and "
            "99th percentiles over 5 minutes (histogram ioc_processing_latency_seconds). Dashed "
            "lines mark 5 s (orange) and 30 s (red).",
            query(f'max({LATENCY}{{quantile="0.5"}})', "p50"),
            query(f'max({LATENCY}{{quantile="0.95"}})', "p95"),
            query(f'max({LATENCY}{{quantile="0.99"}})', "p99"),
        )
        .thresholds(latency_thresholds())
        .thresholds_style(_dashed_thresholds())
        .unit("s")
        .min(0)
        .height(8)
        .span(12)
    )


def dead_letter_by_source() -> timeseries.Panel:
    """Share of each source's messages rejected, sources with rejects only."""
    return (
        timeseries_panel(
            "Tỷ lệ bản tin bị từ chối theo nguồn (15 phút)",
            "Share of each source's messages of the last 15 minutes sent to the dead-letter "
            "topic (source:ioc_events_rejected:ratio_rate15m), sources with rejects only, and "
            "the IOCDeadLetterRateHigh threshold as a dashed red line.",
            query("source:ioc_events_rejected:ratio_rate15m > 0", "{{source}}"),
            query(
                "ioc:alert_threshold:dead_letter_ratio",
                bilingual("Ngưỡng cảnh báo", "Alert threshold"),
            ),
        )
        .thresholds(dead_letter_thresholds())
        .override_by_query("B", threshold_line_properties())
        .unit("percentunit")
        .min(0)
        .height(8)
        .span(12)
    )


def worker_states() -> statetimeline.Panel:
    """Each worker up or down over time."""
    return (
        state_timeline_panel(
            "Trạng thái từng worker",
            'Whether Prometheus could scrape each worker (up{job="ioc-worker"}): green up, '
            "red down. IOCWorkerDown pages after a minute down.",
            query('up{job="ioc-worker"}', "{{instance}}"),
        )
        .mappings(worker_state_mappings())
        .thresholds(workers_thresholds())
        .height(8)
        .span(12)
    )


def rejects_by_reason() -> bargauge.Panel:
    """All sources' rejected messages over the time range, by reason."""
    return (
        bargauge_panel(
            "Bản tin bị từ chối theo lý do",
            "Messages of all sources sent to the dead-letter topic over the dashboard's time "
            "range, by reason code (ioc_events_rejected_total).",
            query(
                "sort_desc(sum by (reason) (increase(ioc_events_rejected_total[$__range])))",
                "{{reason}}",
                instant=True,
            ),
        )
        .thresholds(overdue_thresholds())
        .unit("short")
        .decimals(0)
        .min(0)
        .no_value(bilingual("Không có bản tin bị từ chối", "No rejected messages"))
        .height(8)
        .span(12)
    )


def build() -> model.Dashboard:
    """The pipeline health dashboard."""
    return finish(
        dashboard(
            UID,
            "Sức khỏe hệ thống xử lý",
            "Health of the Son La IOC streaming pipeline: workers, throughput, consumer lag, "
            "end-to-end latency, dead letters and internal errors, with the alert thresholds.",
        )
        .with_panel(workers_up())
        .with_panel(total_lag())
        .with_panel(latency_p99())
        .with_panel(dead_letter_share())
        .with_panel(internal_errors())
        .with_panel(pipeline_alerts())
        .with_panel(throughput())
        .with_panel(consumer_lag())
        .with_panel(latency())
        .with_panel(dead_letter_by_source())
        .with_panel(worker_states())
        .with_panel(rejects_by_reason())
    )
