"""Helpers shared by the command modules."""

from __future__ import annotations

import typer

from ioc.settings import Settings, load_settings


def say(vi: str, en: str, *, err: bool = False) -> None:
    """Print one line for a person: Vietnamese, then English."""
    typer.echo(f"{vi} / {en}", err=err)


def settings() -> Settings:
    """The settings of this invocation (errors name the IOC_* variable)."""
    return load_settings()
