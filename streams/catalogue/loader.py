"""Loading the catalogue from its YAML files, checking every entry and every reference.

Nothing half-valid comes out: :func:`load_catalogue` returns a :class:`Catalogue` in which every
owner is a source, every parent an area, every history figure in range, ... or raises one
:class:`~ioc.errors.CatalogueError` listing *all* the problems found, each naming the file, the
line, the entry, the field, what was expected and what was received, in Vietnamese and English.

Files are read in two passes. First each file alone: YAML syntax (with the line), duplicate
keys, the shape of every entry. Then, only if every file is well formed, the references
between files and the province's contract (41 sources, of which exactly the three central
agencies are vertical). All text is normalised to Unicode NFC as it is read, so the same
Vietnamese name typed on two keyboards compares equal.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ioc.errors import CatalogueError
from streams.catalogue.models import (
    ISSUES_ERROR_TYPE,
    LEVEL_RANK,
    SUMMABLE_UNITS,
    AdminUnit,
    Catalogue,
    Indicator,
    Issue,
    Rule,
    Source,
)
from streams.periods import period_type_nests

#: The catalogue shipped with the code, under version control.
DATA_DIR: Final = Path(__file__).resolve().parent / "data"

SOURCES_FILE: Final = "sources.yaml"
AREAS_FILE: Final = "areas.yaml"
INDICATORS_FILE: Final = "indicators.yaml"
RULES_FILE: Final = "rules.yaml"

#: The province's contract: 38 provincial bodies and 3 vertical (central) agencies report.
EXPECTED_SOURCE_COUNT: Final = 41
EXPECTED_VERTICALS: Final = frozenset({"tax", "statistics", "sbv"})
#: Sources other parts of the system name directly.
#: The province's headline figures, in the order the walls show them (the built-in /wall and
#: the Grafana overview): its digital-transformation commitments (Resolution 17-NQ/TU,
#: Decision 811/QĐ-UBND, Project 06) and its revenue. Each must be in the catalogue.
HEADLINE_INDICATORS: Final[tuple[str, ...]] = (
    "online_application_rate",
    "dvc_online_total",
    "eid_activated",
    "smartphone_household_rate",
    "non_cash_payment_rate",
    "tax_revenue",
)

REQUIRED_SOURCES: Final = frozenset(
    {
        "tax",
        "statistics",
        "sbv",
        "ict",
        "police",
        "health",
        "education",
        "finance",
        "planning",
        "office",
    }
)

_M = TypeVar("_M", bound=BaseModel)


# --- problems --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Problem:
    file: str
    entry: str
    field: str
    message_vi: str
    message_en: str
    expected: str
    received: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: mục / entry '{self.entry}', trường / field '{self.field}': "
            f"{self.message_vi} / {self.message_en} "
            f"(cần / expected: {self.expected}; nhận được / received: {self.received})"
        )


def _describe(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _raise_if_any(problems: Sequence[_Problem], data_dir: Path) -> None:
    if not problems:
        return
    count = len(problems)
    lines = [
        f"Danh mục chỉ tiêu không hợp lệ ({count} lỗi) / "
        f"Invalid indicator catalogue ({count} problem{'s' if count > 1 else ''}) in {data_dir}:",
        *(f"  - {problem}" for problem in problems),
        "Sửa các tệp trên rồi nạp lại / Fix the files above, then load again.",
    ]
    raise CatalogueError("\n".join(lines))


# --- YAML ------------------------------------------------------------------------------------


class _Entry(dict[Any, Any]):
    """A YAML mapping that remembers the line it started on."""

    line: int = 0


# libyaml's parser when PyYAML was built with it (10x faster); the constructors stay ours.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Safe YAML loader that refuses duplicate keys, remembers lines and normalises to NFC."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _Entry:
    loader.flatten_mapping(node)
    mapping = _Entry()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found an unhashable key",
                key_node.start_mark,
            )
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice (khóa bị lặp / duplicate key)",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


def _construct_text(loader: _StrictLoader, node: yaml.ScalarNode) -> str:
    return unicodedata.normalize("NFC", loader.construct_scalar(node))


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:str", _construct_text)


class _Unreadable(Exception):
    """A file cannot give a list of entries; carries the problem to report."""

    def __init__(self, problem: _Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _file_problem(path: Path, issue: Issue, line: int | None = None) -> _Unreadable:
    return _Unreadable(
        _Problem(
            path.name,
            "(file)",
            issue.field,
            issue.message_vi,
            issue.message_en,
            issue.expected,
            issue.received,
            line,
        )
    )


def _read_document(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _file_problem(
            path,
            Issue("(file)", "không tìm thấy tệp", "file not found", f"a file at {path}", "nothing"),
            None,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _file_problem(
            path,
            Issue(
                "(file)",
                "không đọc được tệp",
                "cannot read the file",
                "a readable UTF-8 file",
                str(exc),
            ),
            None,
        ) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        line = None if mark is None else mark.line + 1
        if mark is not None:
            detail += f" (dòng / line {mark.line + 1}, cột / column {mark.column + 1})"
        raise _file_problem(
            path,
            Issue("(YAML)", "lỗi cú pháp YAML", "YAML syntax error", "valid YAML", detail),
            line,
        ) from None
    except yaml.YAMLError as exc:
        raise _file_problem(
            path,
            Issue("(YAML)", "lỗi cú pháp YAML", "YAML syntax error", "valid YAML", str(exc)),
            None,
        ) from None


def _read_list(path: Path, key: str, problems: list[_Problem]) -> list[Any] | None:
    """The list under ``key`` in ``path``, or ``None`` after recording why it cannot be read."""
    try:
        document = _read_document(path)
        if not isinstance(document, dict) or set(document) != {key}:
            shape = sorted(map(str, document)) if isinstance(document, dict) else document
            raise _file_problem(
                path,
                Issue(
                    "(top level)",
                    "cấu trúc tệp không đúng",
                    "wrong top-level structure",
                    f"a mapping with the single key '{key}'",
                    _describe(shape),
                ),
                1,
            )
        entries = document[key]
        if not isinstance(entries, list):
            raise _file_problem(
                path,
                Issue(
                    key,
                    "phải là một danh sách",
                    "must be a list",
                    "a list of entries",
                    type(entries).__name__,
                ),
                getattr(document, "line", None),
            )
    except _Unreadable as exc:
        problems.append(exc.problem)
        return None
    return entries


# --- pass 1: each file alone -----------------------------------------------------------------

_VI_BY_ERROR_TYPE: Final[Mapping[str, str]] = {
    "missing": "thiếu trường bắt buộc",
    "extra_forbidden": "trường không có trong lược đồ",
    "literal_error": "giá trị không thuộc danh sách cho phép",
    "string_pattern_mismatch": "giá trị không đúng định dạng",
    "string_type": "phải là chuỗi ký tự",
    "float_type": "phải là một số",
    "int_type": "phải là một số nguyên",
    "finite_number": "phải là một số hữu hạn",
    "greater_than": "giá trị quá nhỏ",
    "greater_than_equal": "giá trị quá nhỏ",
    "less_than_equal": "giá trị quá lớn",
    "too_short": "danh sách quá ngắn",
    "union_tag_invalid": "loại không hợp lệ",
    "union_tag_not_found": "thiếu trường phân loại",
    "value_error": "giá trị không hợp lệ",
    "model_type": "phải là một ánh xạ (mapping)",
    "tuple_type": "phải là một danh sách",
}


def _field_path(loc: Sequence[int | str], suffix: str = "") -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    if suffix:
        path = f"{path}.{suffix}" if path and not suffix.startswith("[") else path + suffix
    return path or "(entry)"


def _expected(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "missing":
        return "a value"
    if kind == "extra_forbidden":
        return "only the fields of the schema"
    for name in ("expected", "pattern", "discriminator"):
        if name in ctx:
            return str(ctx[name])
    for name, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if name in ctx:
            return f"{sign} {ctx[name]!s}"
    if "min_length" in ctx:
        return f"at least {ctx['min_length']} item(s)"
    return str(error["msg"])


_PATH_PART: Final = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _line_of(raw: object, field: str) -> int | None:
    """The line of the innermost YAML mapping on the way to ``field`` (``history[2].value``)."""
    line = getattr(raw, "line", None)
    node = raw
    for match in _PATH_PART.finditer(field):
        index, key = match.groups()
        if index is not None and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        elif key is not None and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            break
        line = getattr(node, "line", line)
    return line


def _problems_from(exc: ValidationError, file: str, entry: str, raw: object) -> Iterator[_Problem]:
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if error["type"] == ISSUES_ERROR_TYPE:
            issues: tuple[Issue, ...] = error["ctx"]["issues"]
            for issue in issues:
                field = _field_path(loc, issue.field)
                yield _Problem(
                    file,
                    entry,
                    field,
                    issue.message_vi,
                    issue.message_en,
                    issue.expected,
                    issue.received,
                    _line_of(raw, field),
                )
            continue
        received = "nothing" if error["type"] == "missing" else _describe(error.get("input"))
        field = _field_path(loc)
        yield _Problem(
            file,
            entry,
            field,
            _VI_BY_ERROR_TYPE.get(error["type"], "giá trị không hợp lệ"),
            error["msg"],
            _expected(error),
            received,
            _line_of(raw, field),
        )


def _validate_entries(
    path: Path, key: str, model: type[_M], problems: list[_Problem]
) -> dict[str, tuple[_M, object]]:
    """Validate every entry of one file; valid ones by code, with their raw YAML."""
    entries = _read_list(path, key, problems)
    if entries is None:
        return {}
    valid: dict[str, tuple[_M, object]] = {}
    first_line: dict[str, int | None] = {}
    for index, raw in enumerate(entries):
        line = getattr(raw, "line", None)
        code = raw.get("code") if isinstance(raw, dict) else None
        entry = code if isinstance(code, str) else f"#{index + 1}"
        if isinstance(code, str) and code in first_line:
            problems.append(
                _Problem(
                    path.name,
                    entry,
                    "code",
                    "mã bị trùng",
                    "duplicate code",
                    f"a code not used before (first used at line {first_line[code]})",
                    _describe(code),
                    line,
                )
            )
            continue
        if isinstance(code, str):
            first_line[code] = line
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems_from(exc, path.name, entry, raw))
            continue
        valid[entry] = (item, raw)
    return valid


# --- pass 2: references between files and the province's contract ----------------------------


class _CrossCheck:
    """Collects the problems that need several files to see."""

    def __init__(
        self,
        sources: Mapping[str, tuple[Source, object]],
        areas: Mapping[str, tuple[AdminUnit, object]],
        indicators: Mapping[str, tuple[Indicator, object]],
        rules: Mapping[str, tuple[Rule, object]],
    ) -> None:
        self.sources = {code: item for code, (item, _) in sources.items()}
        self.areas = {code: item for code, (item, _) in areas.items()}
        self.indicators = {code: item for code, (item, _) in indicators.items()}
        self.rules = {code: item for code, (item, _) in rules.items()}
        self.raw = {
            SOURCES_FILE: {code: raw for code, (_, raw) in sources.items()},
            AREAS_FILE: {code: raw for code, (_, raw) in areas.items()},
            INDICATORS_FILE: {code: raw for code, (_, raw) in indicators.items()},
            RULES_FILE: {code: raw for code, (_, raw) in rules.items()},
        }
        self.problems: list[_Problem] = []

    def add(self, file: str, entry: str, issue: Issue) -> None:
        """Record ``issue`` of ``entry`` in ``file``, at the line of its field."""
        line = _line_of(self.raw[file].get(entry), issue.field)
        self.problems.append(
            _Problem(
                file,
                entry,
                issue.field,
                issue.message_vi,
                issue.message_en,
                issue.expected,
                issue.received,
                line,
            )
        )

    def run(self) -> list[_Problem]:
        """Every cross-file problem, in file order."""
        self.check_sources()
        self.check_areas()
        self.check_indicators()
        self.check_rules()
        return self.problems

    # -- sources ------------------------------------------------------------------------------

    def check_sources(self) -> None:
        count = len(self.sources)
        if count != EXPECTED_SOURCE_COUNT:
            self.add(
                SOURCES_FILE,
                "(file)",
                Issue(
                    "sources",
                    "phải có 41 nguồn (38 sở, ban, ngành, đoàn thể và 3 cơ quan ngành dọc)",
                    "the province has 41 sources (38 provincial bodies and 3 vertical agencies)",
                    str(EXPECTED_SOURCE_COUNT),
                    str(count),
                ),
            )
        for code, source in self.sources.items():
            if source.kind == "vertical" and code not in EXPECTED_VERTICALS:
                self.add(
                    SOURCES_FILE,
                    code,
                    Issue(
                        "kind",
                        "chỉ Cục Thuế, Cục Thống kê và Ngân hàng Nhà nước là cơ quan ngành dọc",
                        "only tax, statistics and sbv are vertical agencies",
                        "a provincial kind (department, board, ...)",
                        "'vertical'",
                    ),
                )
        for code in sorted(EXPECTED_VERTICALS):
            agency = self.sources.get(code)
            if agency is not None and agency.kind != "vertical":
                self.add(
                    SOURCES_FILE,
                    code,
                    Issue(
                        "kind",
                        "đây là cơ quan ngành dọc",
                        "this is a vertical (central-government) agency",
                        "'vertical'",
                        repr(agency.kind),
                    ),
                )
        missing = sorted(REQUIRED_SOURCES - self.sources.keys())
        if missing:
            self.add(
                SOURCES_FILE,
                "(file)",
                Issue(
                    "code",
                    "thiếu nguồn dữ liệu bắt buộc",
                    "required sources are missing",
                    ", ".join(sorted(REQUIRED_SOURCES)),
                    "missing: " + ", ".join(missing),
                ),
            )

    # -- areas --------------------------------------------------------------------------------

    def check_areas(self) -> None:
        provinces = sorted(code for code, unit in self.areas.items() if unit.level == "province")
        if len(provinces) != 1:
            self.add(
                AREAS_FILE,
                "(file)",
                Issue(
                    "level",
                    "phải có đúng một đơn vị cấp tỉnh",
                    "there must be exactly one province",
                    "1 unit with level 'province'",
                    f"{len(provinces)}: {', '.join(provinces) or 'none'}",
                ),
            )
        for code, unit in self.areas.items():
            self._check_links(code, unit)
            self._check_successor(code, unit)
        self._check_cycles()
        self._check_official_codes()

    def _check_links(self, code: str, unit: AdminUnit) -> None:
        for index, link in enumerate(unit.parents):
            field = f"parents[{index}].parent"
            parent = self.areas.get(link.parent)
            if parent is None:
                self.add(
                    AREAS_FILE,
                    code,
                    Issue(
                        field,
                        "đơn vị cấp trên không có trong areas.yaml",
                        "the parent is not an area in areas.yaml",
                        "the code of an area",
                        repr(link.parent),
                    ),
                )
                continue
            if LEVEL_RANK[parent.level] >= LEVEL_RANK[unit.level]:
                self.add(
                    AREAS_FILE,
                    code,
                    Issue(
                        field,
                        "cấp của đơn vị cấp trên phải cao hơn",
                        "the parent must be of a higher level",
                        f"a parent above a {unit.level}",
                        f"{link.parent} ({parent.level})",
                    ),
                )
            starts_late = parent.valid_from is not None and (
                link.valid_from is None or link.valid_from < parent.valid_from
            )
            ends_early = parent.valid_to is not None and (
                link.valid_to is None or link.valid_to > parent.valid_to
            )
            if starts_late or ends_early:
                self.add(
                    AREAS_FILE,
                    code,
                    Issue(
                        f"parents[{index}]",
                        "đơn vị cấp trên không tồn tại suốt thời gian liên kết",
                        "the parent does not exist for the whole link",
                        f"a link within {_span(parent.valid_from, parent.valid_to)}",
                        _span(link.valid_from, link.valid_to),
                    ),
                )

    def _check_successor(self, code: str, unit: AdminUnit) -> None:
        if unit.successor is None or unit.valid_to is None:
            return
        successor = self.areas.get(unit.successor)
        if successor is None:
            self.add(
                AREAS_FILE,
                code,
                Issue(
                    "successor",
                    "đơn vị kế thừa không có trong areas.yaml",
                    "the successor is not an area in areas.yaml",
                    "the code of an area",
                    repr(unit.successor),
                ),
            )
            return
        next_day = unit.valid_to + timedelta(days=1)
        if successor.level != unit.level or not successor.exists_on(next_day):
            self.add(
                AREAS_FILE,
                code,
                Issue(
                    "successor",
                    "đơn vị kế thừa phải cùng cấp và tồn tại từ ngày hôm sau",
                    "the successor must be of the same level and exist from the next day",
                    f"a {unit.level} existing on {next_day}",
                    f"{unit.successor} ({successor.level},"
                    f" {_span(successor.valid_from, successor.valid_to)})",
                ),
            )

    def _check_cycles(self) -> None:
        # Parent links over all time, ignoring dates: a cycle at any date is a cycle here.
        graph = {
            code: sorted({link.parent for link in unit.parents if link.parent in self.areas})
            for code, unit in self.areas.items()
        }
        done: set[str] = set()
        path: list[str] = []
        reported: set[frozenset[str]] = set()

        def visit(code: str) -> None:
            if code in done:
                return
            if code in path:
                cycle = [*path[path.index(code) :], code]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    self.add(
                        AREAS_FILE,
                        code,
                        Issue(
                            "parents",
                            "quan hệ cấp trên tạo thành vòng lặp",
                            "the parent links form a cycle",
                            "a tree rooted at the province",
                            " → ".join(cycle),
                        ),
                    )
                return
            path.append(code)
            for parent in graph[code]:
                visit(parent)
            path.pop()
            done.add(code)

        for start in sorted(graph):
            visit(start)

    def _check_official_codes(self) -> None:
        # The 2025 reform reuses codes (phường Tô Hiệu took 03646 from phường Chiềng Lề), so a
        # code only has to be unique among units that exist on the same days.
        by_code: dict[str, list[AdminUnit]] = {}
        for unit in self.areas.values():
            if unit.official_code is not None:
                by_code.setdefault(unit.official_code, []).append(unit)
        for official, units in by_code.items():
            for index, unit in enumerate(units):
                for other in units[:index]:
                    if _lifetimes_overlap(unit, other):
                        self.add(
                            AREAS_FILE,
                            unit.code,
                            Issue(
                                "official_code",
                                "mã hành chính trùng với một đơn vị cùng thời",
                                "another unit existing at the same time has this official code",
                                f"a code not used by {other.code} while both exist",
                                official,
                            ),
                        )

    # -- indicators ---------------------------------------------------------------------------

    def check_indicators(self) -> None:
        for code, indicator in self.indicators.items():
            if indicator.owner not in self.sources:
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        "owner",
                        "đơn vị chủ quản không có trong sources.yaml",
                        "the owner is not a source in sources.yaml",
                        "the code of a source",
                        repr(indicator.owner),
                    ),
                )
            if indicator.ratio is not None:
                self._check_ratio(code, indicator)
            self._check_history(code, indicator)
            for index, target in enumerate(indicator.targets):
                self._check_area_use(code, indicator, f"targets[{index}].area", target.area)

    def _check_ratio(self, code: str, indicator: Indicator) -> None:
        assert indicator.ratio is not None
        for part in ("numerator", "denominator"):
            field = f"ratio.{part}"
            component_code: str = getattr(indicator.ratio, part)
            component = self.indicators.get(component_code)
            if component is None:
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        field,
                        "chỉ tiêu thành phần không có trong indicators.yaml",
                        "the component is not an indicator in indicators.yaml",
                        "the code of an indicator",
                        repr(component_code),
                    ),
                )
                continue
            if component.unit not in SUMMABLE_UNITS or component.hierarchy_aggregation != "sum":
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        field,
                        "thành phần của tỷ số phải cộng được theo địa bàn",
                        "a ratio component must be a quantity summed over areas",
                        "a count-like unit with hierarchy_aggregation 'sum'",
                        f"{component_code} ({component.unit}, {component.hierarchy_aggregation})",
                    ),
                )
            same_period = component.period_type == indicator.period_type
            summed_in = (
                period_type_nests(component.period_type, indicator.period_type)
                and component.time_aggregation == "sum"
            )
            if not (same_period or summed_in):
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        field,
                        "kỳ của thành phần không tổng hợp được thành kỳ của tỷ lệ",
                        "the component's periods do not add up to the rate's period",
                        f"a {indicator.period_type} component, or a finer one summed over time",
                        f"{component_code} ({component.period_type}, {component.time_aggregation})",
                    ),
                )
            missing_levels = [lvl for lvl in indicator.levels if lvl not in component.levels]
            if missing_levels:
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        field,
                        "thành phần phải được báo cáo ở mọi cấp của tỷ lệ",
                        "the component must be reported at every level of the rate",
                        ", ".join(indicator.levels),
                        f"{component_code}: {', '.join(component.levels)}",
                    ),
                )

    def _check_area_use(self, code: str, indicator: Indicator, field: str, area: str) -> bool:
        unit = self.areas.get(area)
        if unit is None:
            self.add(
                INDICATORS_FILE,
                code,
                Issue(
                    field,
                    "địa bàn không có trong areas.yaml",
                    "the area is not in areas.yaml",
                    "the code of an area",
                    repr(area),
                ),
            )
            return False
        if unit.level not in indicator.levels:
            self.add(
                INDICATORS_FILE,
                code,
                Issue(
                    field,
                    "chỉ tiêu không báo cáo ở cấp của địa bàn này",
                    "the indicator is not reported at this area's level",
                    "an area of level " + " or ".join(indicator.levels),
                    f"{area} ({unit.level})",
                ),
            )
            return False
        return True

    def _check_history(self, code: str, indicator: Indicator) -> None:
        for index, point in enumerate(indicator.history):
            field = f"history[{index}].area"
            if not self._check_area_use(code, indicator, field, point.area):
                continue
            unit = self.areas[point.area]
            if not unit.overlaps(point.period.first_day, point.period.last_day):
                self.add(
                    INDICATORS_FILE,
                    code,
                    Issue(
                        field,
                        "địa bàn không tồn tại trong kỳ báo cáo",
                        "the area did not exist during the period",
                        f"an area existing during {point.period}",
                        f"{point.area} ({_span(unit.valid_from, unit.valid_to)})",
                    ),
                )

    # -- rules --------------------------------------------------------------------------------

    def check_rules(self) -> None:
        for code, rule in self.rules.items():
            known: list[Indicator] = []
            for side in ("left", "right"):
                codes: tuple[str, ...] = getattr(rule, side)
                for index, indicator_code in enumerate(codes):
                    indicator = self.indicators.get(indicator_code)
                    if indicator is None:
                        self.add(
                            RULES_FILE,
                            code,
                            Issue(
                                f"{side}[{index}]",
                                "chỉ tiêu không có trong indicators.yaml",
                                "the indicator is not in indicators.yaml",
                                "the code of an indicator",
                                repr(indicator_code),
                            ),
                        )
                    else:
                        known.append(indicator)
            # Counts of things and counts of people compare (members >= teams); nothing else mixes.
            units = {"count" if item.unit == "people" else item.unit for item in known}
            if len({item.period_type for item in known}) > 1 or len(units) > 1:
                self.add(
                    RULES_FILE,
                    code,
                    Issue(
                        "left",
                        "các chỉ tiêu của quy tắc phải cùng kỳ và cùng đơn vị tính",
                        "the rule's indicators must share period type and unit",
                        "one period type and one unit (count and people compare)",
                        ", ".join(f"{i.code}: {i.period_type}/{i.unit}" for i in known),
                    ),
                )


def _span(start: date | None, end: date | None) -> str:
    return f"{start or '…'}..{end or '…'}"


def _lifetimes_overlap(one: AdminUnit, other: AdminUnit) -> bool:
    return (
        one.valid_from is None or other.valid_to is None or one.valid_from <= other.valid_to
    ) and (other.valid_from is None or one.valid_to is None or other.valid_from <= one.valid_to)


# --- entry points ----------------------------------------------------------------------------


def load_catalogue(data_dir: Path | None = None) -> Catalogue:
    """Load and check the catalogue in ``data_dir`` (default: the one shipped, :data:`DATA_DIR`).

    Raises :class:`~ioc.errors.CatalogueError` listing every problem found.
    """
    directory = DATA_DIR if data_dir is None else Path(data_dir)
    problems: list[_Problem] = []
    sources = _validate_entries(directory / SOURCES_FILE, "sources", Source, problems)
    areas = _validate_entries(directory / AREAS_FILE, "areas", AdminUnit, problems)
    indicators = _validate_entries(directory / INDICATORS_FILE, "indicators", Indicator, problems)
    rules = _validate_entries(directory / RULES_FILE, "rules", Rule, problems)
    _raise_if_any(problems, directory)
    _raise_if_any(_CrossCheck(sources, areas, indicators, rules).run(), directory)
    return Catalogue(
        sources=(item for item, _ in sources.values()),
        areas=(item for item, _ in areas.values()),
        indicators=(item for item, _ in indicators.values()),
        rules=(item for item, _ in rules.values()),
    )


@functools.cache
def default_catalogue() -> Catalogue:
    """The shipped catalogue, loaded once per process (later calls return the same object)."""
    return load_catalogue()
