"""No empty panel on the wall: every query of every panel of every dashboard returns data from a
REAL Prometheus scraping a REAL worker fed by the simulator.

The traffic covers every kind of series the panels use: two simulated days of all 41 sources
(with late, duplicate, corrected, malformed, spoofed and outlying reports, and one silent
source that turns overdue), a month of the monthly reporters behind the headline indicators,
the catalogue's seed figures (targets, standing and progress; one is off track, so an alert
fires), and for the drill-down's source a few rejected messages of two reasons and a duplicate.
The simulated clock starts in March 2025, when the province still had districts.
"""

from __future__ import annotations

import itertools
import math
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from dashboards.build import PanelQuery, build_all, expand, panel_queries
from ioc.clock import clock_from_settings
from ioc.local.prometheus import LocalMonitoringStack
from ioc.local.worker import WorkerProcess
from ioc.settings import Settings
from streams.catalogue import Catalogue, default_catalogue
from streams.events import IndicatorEvent
from streams.periods import LOCAL_TZ
from streams.producer import IndicatorProducer
from streams.simulator import Faults, generate_events, run
from streams.topics import Topics, ensure_topics
from tests.conftest import SettingsFactory
from tests.promstack import MonitoringFactory

pytestmark = pytest.mark.integration

#: 07:00 on 4 March 2025, province time: districts exist (they were abolished on 1 July 2025).
SIM_START = datetime(2025, 3, 4, 7, 0, tzinfo=LOCAL_TZ)
#: A simulated minute per real second: deadlines stay put while the test runs.
SPEED = 60.0
#: Sends nothing in the last two days, so its daily report is overdue.
SILENT = "newspaper"
#: What the template variables are set to: the drill-downs' subjects of this traffic.
VARIABLES = {"source": "ict", "district": "mai-son", "indicator": "applications_received"}
#: Grafana's built-in intervals, as it would set them for the last hour at 5 s scrapes.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
#: How long the recording rules and rates may take to have data once the traffic is in.
DEADLINE = 120.0


def seed_events(catalogue: Catalogue, sent: datetime) -> Iterator[IndicatorEvent]:
    """The catalogue's seed figures, sent at ``sent`` (simulated time)."""
    for indicator in catalogue.indicators.values():
        for point in indicator.history:
            yield IndicatorEvent(
                event_id=uuid.uuid4(),
                source=indicator.owner,
                indicator=indicator.code,
                area=point.area,
                period=str(point.period),
                value=point.value,
                observed_at=sent,
                sent_at=sent,
            )


def send_traffic(settings: Settings) -> int:
    """Everything the panels need, through the simulator's pacer and the producer SDK."""
    catalogue = default_catalogue()
    topics = Topics(settings.topic_prefix)
    ensure_topics(settings, topics.all(sorted(catalogue.sources)))
    faults = Faults(
        anomaly=0.02,
        late=0.05,
        malformed=0.02,
        duplicate=0.05,
        correction=0.05,
        spoof=0.01,
        silent=frozenset({SILENT}),
    )
    # The monthly reporters of the headline indicators (non-cash payments, tax revenue) last
    # reported in February; the two windows join without gap or repeat.
    month = generate_events(
        catalogue,
        seed=11,
        start=SIM_START - timedelta(days=40),
        until=SIM_START - timedelta(days=2),
        sources=["sbv", "tax"],
    )
    recent = generate_events(
        catalogue, seed=11, start=SIM_START - timedelta(days=2), until=SIM_START, faults=faults
    )
    sent = SIM_START - timedelta(minutes=30)
    report = IndicatorEvent(
        event_id=uuid.uuid4(),
        source="ict",
        indicator="cyber_incidents",
        area="son-la",
        period="2025-03-03",
        value=2,
        observed_at=sent,
        sent_at=sent,
    )
    not_yet = report.model_copy(update={"event_id": uuid.uuid4(), "period": "2025-03-10"})
    with IndicatorProducer(settings) as producer:
        stats = run(
            itertools.chain(month, recent), producer, clock_from_settings(settings), topics=topics
        )
        producer.send_many(seed_events(catalogue, sent))
        producer.send_many([report, report])  # the second is a duplicate
        producer.send_many([not_yet])  # future_period
        producer.send_raw(topics.feed("ict"), b"{not json", b"cyber_incidents|son-la")
    return stats.sent


def has_data(stack: LocalMonitoringStack, expr: str) -> bool:
    """True when ``expr`` evaluates to at least one finite sample now."""
    return any(math.isfinite(sample.value) for sample in stack.query(expr))


def wait_for_all(
    pending: list[tuple[PanelQuery, str]], probe: Callable[[str], bool], timeout: float
) -> list[tuple[PanelQuery, str]]:
    """Poll every query until each has data or ``timeout`` passes; return those still empty."""
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [(query, expr) for query, expr in pending if not probe(expr)]
        if pending:
            time.sleep(1.0)  # one scrape and rule evaluation (test timings: every second)
    return pending


def variable_values(stack: LocalMonitoringStack, label_values: str) -> set[str]:
    """What a ``label_values(metric, label)`` variable offers, asked as PromQL."""
    inner = label_values.removeprefix("label_values(").removesuffix(")")
    metric, _, label = inner.rpartition(",")
    return {s.labels.get(label.strip(), "") for s in stack.query(f"count by ({label}) ({metric})")}


def test_every_panel_query_returns_data(
    settings_factory: SettingsFactory,
    worker_factory: Callable[[Settings], WorkerProcess],
    monitoring_factory: MonitoringFactory,
) -> None:
    began = time.monotonic()
    settings = settings_factory(
        clock_start=SIM_START,
        clock_epoch=time.time(),
        clock_speed=SPEED,
        reporting_since=SIM_START - timedelta(days=2),
        tick_seconds=0.5,
    )
    worker_factory(settings)
    stack = monitoring_factory(settings.worker_url)
    sent = send_traffic(settings)
    print(f"\n{sent} simulated messages sent after {time.monotonic() - began:.0f} s")

    dashboards = build_all()
    values = VARIABLES | BUILTINS
    queries = [
        (query, expand(query.expr, values))
        for data in dashboards.values()
        for query in panel_queries(data)
    ]
    empty = wait_for_all(queries, lambda expr: has_data(stack, expr), DEADLINE)
    print(f"{len(queries)} panel queries checked after {time.monotonic() - began:.0f} s")
    assert not empty, "panels without data:\n" + "\n".join(
        f"  {query}\n    sent as: {expr}" for query, expr in empty
    )

    # The variables offer the values the panels were checked with.
    for data in dashboards.values():
        for variable in data["templating"]["list"]:
            offered = variable_values(stack, expand(variable["query"], values))
            assert VARIABLES[variable["name"]] in offered, (variable["name"], sorted(offered))
    # The silent source is overdue, and its tile would be red.
    [overdue] = stack.query(f'max by (source) (ioc_source_overdue{{source="{SILENT}"}})')
    assert overdue.value == 1
