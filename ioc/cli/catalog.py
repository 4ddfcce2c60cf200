"""``ioc catalog validate|list|show``: the catalogue of sources, areas and indicators."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from ioc.cli._common import say
from ioc.errors import CatalogueError
from streams.catalogue import Catalogue, Indicator, load_catalogue

app = typer.Typer(
    help="Danh mục nguồn, địa bàn, chỉ tiêu / The catalogue of sources, areas, indicators.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        file_okay=False,
        help="Thư mục danh mục / Catalogue directory (default: shipped)",
    ),
]


def _load(data_dir: Path | None) -> Catalogue:
    return load_catalogue(data_dir)


@app.command("validate")
def validate(data_dir: DataDir = None) -> None:
    """Kiểm tra danh mục (mã thoát 3 nếu lỗi) / Check the catalogue (exit 3 when broken)."""
    catalogue = _load(data_dir)
    say(
        f"Danh mục hợp lệ: {len(catalogue.sources)} nguồn, {len(catalogue.indicators)} chỉ tiêu, "
        f"{len(catalogue.areas)} địa bàn, {len(catalogue.rules)} quy tắc",
        f"The catalogue is valid: {len(catalogue.sources)} sources, "
        f"{len(catalogue.indicators)} indicators, {len(catalogue.areas)} areas, "
        f"{len(catalogue.rules)} rules",
    )


@app.command("list")
def list_(
    what: Annotated[
        Literal["sources", "indicators", "areas", "rules"],
        typer.Argument(help="sources | indicators | areas | rules"),
    ] = "sources",
    source: Annotated[
        str | None, typer.Option(help="Chỉ tiêu của một nguồn / One source's indicators")
    ] = None,
    on: Annotated[
        str | None, typer.Option(help="Địa bàn tồn tại ngày / Areas existing on YYYY-MM-DD")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Liệt kê danh mục / List the catalogue."""
    catalogue = _load(data_dir)
    if what == "sources":
        for item in catalogue.sources.values():
            count = len(catalogue.indicators_of(item.code))
            typer.echo(
                f"{item.code:<22} {item.kind:<20} {count:>3}  {item.name_vi} / {item.name_en}"
            )
    elif what == "indicators":
        for ind in catalogue.indicators.values():
            if source is None or ind.owner == source:
                typer.echo(
                    f"{ind.code:<34} {ind.owner:<16} {ind.period_type:<8} {ind.unit:<12} "
                    f"{ind.name_vi}"
                )
    elif what == "areas":
        day = date.fromisoformat(on) if on else date.today()
        for code in catalogue.areas_on(day):
            unit = catalogue.areas[code]
            parent = catalogue.parent_of(code, day) or "-"
            typer.echo(f"{code:<32} {unit.level:<9} {parent:<20} {unit.name_vi}")
    else:
        for rule in catalogue.rules.values():
            typer.echo(f"{rule.code:<32} {rule.severity:<9} {rule.summary_vi}")


def _show_indicator(ind: Indicator) -> None:
    typer.echo(f"{ind.code}: {ind.name_vi} / {ind.name_en}")
    typer.echo(f"  nguồn / owner:        {ind.owner}")
    typer.echo(f"  đơn vị / unit:        {ind.unit}")
    typer.echo(f"  kỳ / period:          {ind.period_type}; cấp / levels: {', '.join(ind.levels)}")
    typer.echo(
        f"  tổng hợp / aggregation: time={ind.time_aggregation}, "
        f"hierarchy={ind.hierarchy_aggregation}"
    )
    if ind.ratio is not None:
        typer.echo(
            f"  tỷ lệ / ratio:        {ind.ratio.numerator} / {ind.ratio.denominator} "
            f"x {ind.ratio.factor:g}"
        )
    typer.echo(f"  khoảng / range:       {ind.valid_range}")
    typer.echo(f"  hạn / deadline:       {ind.deadline.describe()}")
    for target in ind.targets:
        typer.echo(
            f"  mục tiêu / target:    {target.direction} {target.value:g} ({target.year}, "
            f"{target.area}) — {target.basis_vi} / {target.basis_en}"
        )
    for point in ind.history:
        typer.echo(
            f"  số liệu / history:    {point.area} {point.period} = {point.value:g} "
            f"[seed {point.source_doc}]"
        )
    for bench in ind.benchmarks:
        typer.echo(
            f"  so sánh / benchmark:  {bench.province} {bench.period} {bench.qualifier} "
            f"{bench.value:g} [seed {bench.source_doc}]"
        )


@app.command("show")
def show(
    code: Annotated[str, typer.Argument(help="Mã nguồn, chỉ tiêu hoặc địa bàn / Any code")],
    data_dir: DataDir = None,
) -> None:
    """Chi tiết một mã / Details of a source, indicator, area or rule."""
    catalogue = _load(data_dir)
    if code in catalogue.indicators:
        _show_indicator(catalogue.indicators[code])
    elif code in catalogue.sources:
        item = catalogue.sources[code]
        typer.echo(f"{item.code}: {item.name_vi} / {item.name_en} ({item.kind})")
        for ind in catalogue.indicators_of(code):
            typer.echo(f"  - {ind.code:<34} {ind.period_type:<8} {ind.name_vi}")
    elif code in catalogue.areas:
        unit = catalogue.areas[code]
        typer.echo(f"{unit.code}: {unit.name_vi} / {unit.name_en} ({unit.level})")
        for link in unit.parents:
            typer.echo(f"  thuộc / under {link.parent}: {link.valid_from} .. {link.valid_to or ''}")
        today = date.today()
        typer.echo(
            f"  trực thuộc / children: {', '.join(catalogue.children_of(code, today)) or '-'}"
        )
    elif code in catalogue.rules:
        rule = catalogue.rules[code]
        typer.echo(f"{rule.code}: {rule.summary_vi} / {rule.summary_en}")
        typer.echo(f"  {' + '.join(rule.left)} {rule.op} {' + '.join(rule.right)}")
    else:
        raise CatalogueError(
            f"Không có mã '{code}' trong danh mục / No code '{code}' in the catalogue"
        )
