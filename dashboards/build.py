"""Build every IOC dashboard and write its JSON to ``dashboards/json/<uid>.json``.

Grafana provisions that directory (deploy/grafana/provisioning/dashboards/, mounted by
docker-compose.yml), and ``ioc dashboards push`` sends the same JSON through the HTTP API.
The files are committed: keys sorted, two-space indent, UTF-8, a trailing newline, so building
twice gives identical bytes and a review shows what a change does to the wall.

    python -m dashboards.build [DIRECTORY]      # or: ioc dashboards build [--out DIRECTORY]
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from dashboards import area, overview, pipeline, source
from ioc.settings import PROJECT_ROOT

#: Where the committed JSON lives, and where Grafana's provisioning reads it from.
JSON_DIR = PROJECT_ROOT / "dashboards" / "json"

#: Every dashboard, in menu order.
BUILDERS: tuple[Callable[[], model.Dashboard], ...] = (
    overview.build,
    source.build,
    area.build,
    pipeline.build,
)


def to_dict(built: model.Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data (what Grafana's API and provisioning take)."""
    data: dict[str, Any] = json.loads(JSONEncoder().encode(built))
    return data


def build_all() -> dict[str, dict[str, Any]]:
    """Every dashboard as JSON data, by uid."""
    dashboards: dict[str, dict[str, Any]] = {}
    for build in BUILDERS:
        data = to_dict(build())
        uid = data["uid"]
        if uid in dashboards:
            msg = f"two dashboards share the uid {uid!r}"
            raise ValueError(msg)
        dashboards[uid] = data
    return dashboards


def render(data: Mapping[str, Any]) -> str:
    """The committed text of one dashboard: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write ``<uid>.json`` for every dashboard into ``directory``; return the files.

    Each file is replaced atomically (Grafana's provisioning rereads the directory every
    30 s and must never see half a file). JSON files of IOC dashboards that no longer exist
    (``ioc-*.json``) are removed, so a renamed dashboard does not linger on the wall.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for uid, data in build_all().items():
        path = directory / f"{uid}.json"
        tmp = directory / f".{uid}.json.tmp"
        tmp.write_text(render(data), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    for stale in sorted(set(directory.glob("ioc-*.json")) - set(written)):
        stale.unlink()
    return written


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel: what the wall asks Prometheus."""

    dashboard: str  # uid
    panel: str  # title
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}: {self.expr}"


def panel_queries(data: Mapping[str, Any]) -> Iterator[PanelQuery]:
    """Every query of every panel of one dashboard's JSON, rows' panels included."""
    for panel in data.get("panels") or []:
        for inner in [panel, *(panel.get("panels") or [])]:
            for target in inner.get("targets") or []:
                yield PanelQuery(
                    dashboard=str(data["uid"]),
                    panel=str(inner.get("title", "")),
                    ref_id=str(target.get("refId", "")),
                    expr=str(target.get("expr", "")),
                    instant=bool(target.get("instant", False)),
                )


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def expand(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with Grafana's variables (``$name``, ``${name}``, ``[[name]]``) replaced by
    ``values``, as Grafana would before sending it; a KeyError names one it lacks."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return values[name]

    return _VARIABLE.sub(replace, expr)


def main(argv: list[str] | None = None) -> None:
    """Write the dashboards into the directory given, else ``dashboards/json/``."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[0]) if args else JSON_DIR
    for path in write(directory):
        print(path)


if __name__ == "__main__":
    main()
