"""``ioc catalog validate|list|show`` as an operator runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from streams.catalogue import DATA_DIR


def ioc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc", *args], capture_output=True, text=True, check=False
    )


def test_validate_the_shipped_catalogue() -> None:
    result = ioc("catalog", "validate")

    assert result.returncode == 0, result.stderr
    assert "41 sources" in result.stdout


def test_validate_names_the_broken_file_and_exits_3(tmp_path: Path) -> None:
    broken = tmp_path / "data"
    shutil.copytree(DATA_DIR, broken)
    indicators = broken / "indicators.yaml"
    text = indicators.read_text(encoding="utf-8")
    indicators.write_text(text.replace("owner: police", "owner: polise", 1), encoding="utf-8")

    result = ioc("catalog", "validate", "--data-dir", str(broken))

    assert result.returncode == 3
    assert "indicators.yaml" in result.stderr
    assert "polise" in result.stderr
    assert "owner" in result.stderr


def test_validate_reports_yaml_syntax_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "data"
    shutil.copytree(DATA_DIR, broken)
    (broken / "sources.yaml").write_text("sources:\n  - code: [unclosed\n", encoding="utf-8")

    result = ioc("catalog", "validate", "--data-dir", str(broken))

    assert result.returncode == 3
    assert "sources.yaml" in result.stderr
    assert "line 3" in result.stderr  # where the parser found the list unclosed


def test_list_and_show() -> None:
    sources = ioc("catalog", "list", "sources")
    indicator = ioc("catalog", "show", "online_application_rate")
    unknown = ioc("catalog", "show", "no_such_code")

    assert len(sources.stdout.strip().splitlines()) == 41
    assert "69.46" in indicator.stdout
    assert "Resolution 17-NQ/TU" in indicator.stdout
    assert "17:00" in indicator.stdout
    assert unknown.returncode == 3
    assert "no_such_code" in unknown.stderr
