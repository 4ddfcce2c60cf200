"""``ioc dashboards build|push``: the Grafana dashboards of ``dashboards/``, as JSON and in Grafana.

``build`` regenerates the committed JSON that Grafana provisions from ``dashboards/json/``;
``push`` sends the same dashboards to a running Grafana through its HTTP API
(``IOC_GRAFANA_URL``, ``IOC_GRAFANA_TOKEN``), into the folder "IOC Sơn La", overwriting what is
there. The token is never printed.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ioc.cli._common import say, settings
from ioc.errors import ConfigurationError, LocalServiceError
from ioc.settings import Settings

app = typer.Typer(
    help="Bảng điều khiển Grafana / Grafana dashboards.",
    no_args_is_help=True,
)

#: The folder pushed dashboards go to: the provisioned ones have the same title
#: (deploy/grafana/provisioning/dashboards/ioc.yml).
FOLDER_TITLE = "IOC Sơn La"
FOLDER_UID = "ioc-son-la"
#: Seconds Grafana has to answer each request.
TIMEOUT = 10.0


@dataclass(frozen=True)
class PushedDashboard:
    """One dashboard Grafana accepted."""

    uid: str
    title: str
    url: str
    version: int | None


@dataclass(frozen=True)
class _Target:
    url: str  # what the client connects to (credentials in it are used, never shown)
    shown: str  # the same without user and password, for messages
    credential: str | None
    has_credentials: bool


def _target(config: Settings) -> _Target:
    """Check ``IOC_GRAFANA_URL`` and pick the credentials: the token, else user:pass in the URL."""
    raw = config.grafana_url.strip()
    parts = urllib.parse.urlsplit(raw)
    netloc = parts.hostname or ""
    try:
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a port that is not a number
        valid = False
    shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if not valid:
        raise ConfigurationError(
            f"IOC_GRAFANA_URL phải có dạng http(s)://máy:cổng, nhận được {shown or raw!r}\n"
            f"IOC_GRAFANA_URL must look like http(s)://host:port, received {shown or raw!r}"
        )
    # grafana-client appends "api" to the path as it is: a sub-path needs its trailing slash.
    path = parts.path if not parts.path or parts.path.endswith("/") else parts.path + "/"
    url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    token = config.grafana_token.get_secret_value() if config.grafana_token else ""
    return _Target(
        url=url,
        shown=shown.rstrip("/"),
        credential=token or None,
        has_credentials=bool(token) or bool(parts.username and parts.password),
    )


def _unreachable(target: _Target, reason_vi: str, reason_en: str) -> LocalServiceError:
    return LocalServiceError(
        f"Không kết nối được Grafana tại {target.shown} ({reason_vi}). Kiểm tra Grafana đã chạy "
        "chưa (docker compose up grafana), hoặc đặt IOC_GRAFANA_URL=<địa chỉ Grafana>.\n"
        f"Could not reach Grafana at {target.shown} ({reason_en}). Check that Grafana is "
        "running (docker compose up grafana), or set IOC_GRAFANA_URL=<your Grafana's address>."
    )


def _auth_error(target: _Target, status: int) -> ConfigurationError:
    if not target.has_credentials:
        return ConfigurationError(
            f"Grafana tại {target.shown} yêu cầu xác thực (HTTP {status}). Tạo một service "
            "account có vai trò Editor và đặt IOC_GRAFANA_TOKEN=<token>.\n"
            f"Grafana at {target.shown} requires authentication (HTTP {status}). Create a "
            "service account with the Editor role and set IOC_GRAFANA_TOKEN=<token>."
        )
    if status == 401:
        return ConfigurationError(
            f"Grafana tại {target.shown} từ chối thông tin xác thực (HTTP 401): token trong "
            "IOC_GRAFANA_TOKEN sai hoặc đã hết hạn. Tạo token mới cho service account.\n"
            f"Grafana at {target.shown} rejected the credentials (HTTP 401): the token in "
            "IOC_GRAFANA_TOKEN is wrong or expired. Create a new service-account token."
        )
    return ConfigurationError(
        f"Token trong IOC_GRAFANA_TOKEN không có quyền ghi bảng điều khiển trên {target.shown} "
        "(HTTP 403). Service account cần vai trò Editor.\n"
        f"The token in IOC_GRAFANA_TOKEN may not save dashboards on {target.shown} (HTTP 403). "
        "The service account needs the Editor role."
    )


@contextlib.contextmanager
def _grafana_errors(target: _Target, doing_vi: str, doing_en: str) -> Iterator[None]:
    """Turn grafana-client's and niquests' exceptions into IOC errors that say what to do."""
    import niquests.exceptions  # noqa: PLC0415 - only `push` pays for the HTTP client
    from grafana_client.client import (  # noqa: PLC0415
        GrafanaClientError,
        GrafanaException,
        GrafanaServerError,
        GrafanaTimeoutError,
    )

    try:
        yield
    except GrafanaTimeoutError:
        raise _unreachable(
            target, f"không trả lời sau {TIMEOUT:g} s", f"no answer within {TIMEOUT:g} s"
        ) from None
    except GrafanaClientError as exc:
        status = int(exc.status_code)
        if status in (401, 403):
            raise _auth_error(target, status) from None
        if status == 404:
            raise _not_grafana(target, exc.message) from None
        detail = str(exc.message)
        hint_vi = hint_en = ""
        if "provisioned" in detail.lower():
            hint_vi = (
                " Bảng này được Grafana nạp từ dashboards/json/ (provisioning): chạy "
                "`ioc dashboards build`, Grafana tự nạp lại trong 30 s."
            )
            hint_en = (
                " Grafana provisions it from dashboards/json/: run `ioc dashboards build` and "
                "Grafana reloads it within 30 s."
            )
        raise LocalServiceError(
            f"Grafana tại {target.shown} từ chối {doing_vi}: {detail}.{hint_vi}\n"
            f"Grafana at {target.shown} refused {doing_en}: {detail}.{hint_en}"
        ) from None
    except GrafanaServerError as exc:
        raise LocalServiceError(
            f"Grafana tại {target.shown} gặp lỗi khi {doing_vi}: {exc.message}. Xem nhật ký "
            f"của Grafana.\nGrafana at {target.shown} failed while {doing_en}: {exc.message}. "
            "See Grafana's log."
        ) from None
    except GrafanaException as exc:  # a transport error grafana-client wrapped
        raise _unreachable(target, str(exc.message), str(exc.message)) from None
    except niquests.exceptions.Timeout:
        raise _unreachable(
            target, f"không trả lời sau {TIMEOUT:g} s", f"no answer within {TIMEOUT:g} s"
        ) from None
    except niquests.exceptions.ConnectionError as exc:
        refused = "refused" in str(exc).lower()
        raise _unreachable(
            target,
            "bị từ chối kết nối" if refused else "lỗi kết nối",
            "connection refused" if refused else f"connection failed: {exc}",
        ) from None
    except niquests.exceptions.RequestException as exc:
        raise _unreachable(target, f"lỗi HTTP: {exc}", f"HTTP error: {exc}") from None


def _not_grafana(target: _Target, answer: object) -> LocalServiceError:
    shown = repr(answer)[:120]
    return LocalServiceError(
        f"{target.shown} không trả lời như Grafana ({shown}). Kiểm tra IOC_GRAFANA_URL.\n"
        f"{target.shown} does not answer like Grafana ({shown}). Check IOC_GRAFANA_URL."
    )


def _folder_uid(api: Any, target: _Target) -> str:
    """The uid of the "IOC Sơn La" folder, created when Grafana has none of that title."""
    with _grafana_errors(target, "liệt kê thư mục", "listing folders"):
        folders = api.folder.get_all_folders()
    if not isinstance(folders, list):
        raise _not_grafana(target, folders)
    for folder in folders:
        if isinstance(folder, dict) and folder.get("title") == FOLDER_TITLE:
            return str(folder["uid"])
    with _grafana_errors(target, f"tạo thư mục {FOLDER_TITLE}", f"creating folder {FOLDER_TITLE}"):
        created = api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
    if not isinstance(created, dict) or "uid" not in created:
        raise _not_grafana(target, created)
    return str(created["uid"])


def push_dashboards(
    config: Settings, dashboards: Mapping[str, Mapping[str, Any]]
) -> list[PushedDashboard]:
    """Save ``dashboards`` (uid -> JSON) in Grafana at ``IOC_GRAFANA_URL``, overwriting.

    Raises :class:`LocalServiceError` when Grafana cannot be reached or refuses a dashboard,
    :class:`ConfigurationError` when it needs (other) credentials; both name the setting.
    """
    from grafana_client.api import GrafanaApi  # noqa: PLC0415 - only `push` needs it

    target = _target(config)
    api = GrafanaApi.from_url(target.url, credential=target.credential, timeout=TIMEOUT)
    folder_uid = _folder_uid(api, target)
    pushed: list[PushedDashboard] = []
    for uid, data in dashboards.items():
        with _grafana_errors(target, f"lưu bảng {uid}", f"saving dashboard {uid}"):
            answer = api.dashboard.update_dashboard(
                {
                    "dashboard": dict(data),
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "ioc dashboards push",
                }
            )
        if not isinstance(answer, dict):
            raise _not_grafana(target, answer)
        version = answer.get("version")
        pushed.append(
            PushedDashboard(
                uid=uid,
                title=str(data.get("title", uid)),
                url=f"{target.shown}{answer.get('url', f'/d/{uid}')}",
                version=version if isinstance(version, int) else None,
            )
        )
    return pushed


@app.command("build")
def build(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            file_okay=False,
            help="Thư mục ghi JSON (mặc định dashboards/json/) / Output directory "
            "(default: dashboards/json/)",
        ),
    ] = None,
) -> None:
    """Tạo lại JSON của các bảng điều khiển / Regenerate the dashboards' JSON."""
    from dashboards.build import JSON_DIR, write  # noqa: PLC0415 - only `build` needs the SDK

    directory = out or JSON_DIR
    written = write(directory)
    for path in written:
        typer.echo(path)
    say(
        f"Đã ghi {len(written)} bảng điều khiển vào {directory}",
        f"Wrote {len(written)} dashboards to {directory}",
    )


@app.command("push")
def push() -> None:
    """Đẩy các bảng điều khiển lên Grafana / Push the dashboards to Grafana (IOC_GRAFANA_URL)."""
    from dashboards.build import build_all  # noqa: PLC0415 - only `push` needs the SDK

    config = settings()
    pushed = push_dashboards(config, build_all())
    for item in pushed:
        version_vi = f", phiên bản {item.version}" if item.version is not None else ""
        version_en = f", version {item.version}" if item.version is not None else ""
        say(
            f"Đã cập nhật {item.title} ({item.uid}{version_vi}): {item.url}",
            f"Updated {item.title} ({item.uid}{version_en}): {item.url}",
        )
    say(
        f"Đã đẩy {len(pushed)} bảng điều khiển vào thư mục {FOLDER_TITLE}",
        f"Pushed {len(pushed)} dashboards into the folder {FOLDER_TITLE}",
    )
