"""``ioc push`` checks everything locally before it connects: these runs need no broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GOOD = "source,indicator,area,period,value\nict,online_application_rate,son-la,2023,69.46\n"
BAD_ROW = "ict,online_application_rate,son-la,2023,101\n"


def ioc(*args: str) -> subprocess.CompletedProcess[str]:
    # A bootstrap nobody listens on: any attempt to send would fail with exit code 5.
    env = os.environ | {"IOC_KAFKA_BOOTSTRAP": "127.0.0.1:1", "IOC_PRODUCER_TIMEOUT": "3"}
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args], env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return tmp_path / "report.csv"


def test_dry_run_of_a_good_report(report: Path) -> None:
    report.write_text(GOOD)

    result = ioc("push", "--file", str(report), "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "1 valid rows, nothing sent" in result.stdout


def test_bad_row_stops_everything_with_exit_4(report: Path) -> None:
    report.write_text(GOOD + BAD_ROW)

    result = ioc("push", "--file", str(report))

    assert result.returncode == 4
    assert "1/2 rows are invalid" in result.stderr
    assert "row 3" in result.stderr
    assert "Nothing was sent" in result.stderr


def test_skip_invalid_dry_run_reports_partial_with_exit_7(report: Path) -> None:
    report.write_text(GOOD + BAD_ROW)

    result = ioc("push", "--file", str(report), "--skip-invalid", "--dry-run")

    assert result.returncode == 7
    assert "1 valid rows" in result.stdout


def test_single_value_out_of_range_is_refused_before_sending() -> None:
    result = ioc(
        "push", "--source", "ict", "--indicator", "online_application_rate",
        "--period", "2023", "--value", "169.46",
    )  # fmt: skip

    assert result.returncode == 4
    assert "'value'" in result.stderr
    assert "0..100" in result.stderr


def test_missing_options_are_named() -> None:
    result = ioc("push", "--source", "ict", "--value", "1")

    assert result.returncode == 2
    assert "--indicator" in result.stderr
    assert "--period" in result.stderr


def test_unreachable_broker_is_exit_5_with_advice() -> None:
    result = ioc(
        "push", "--source", "ict", "--indicator", "online_application_rate",
        "--period", "2023", "--value", "69.46",
    )  # fmt: skip

    assert result.returncode == 5
    assert "ioc kafka status" in result.stderr
