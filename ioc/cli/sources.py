"""``ioc sources provision``: Kafka users and ACLs of the 41 sources and the worker."""

from __future__ import annotations

import typer

from ioc.cli._common import say, settings

app = typer.Typer(
    help="Nguồn dữ liệu và tài khoản Kafka / Data sources and their Kafka users.",
    no_args_is_help=True,
)


@app.command("provision")
def provision() -> None:
    """Tạo tài khoản Kafka và ACL cho mọi nguồn và worker / Create Kafka users and ACLs
    for every source and the worker (needs the admin's credentials; safe to run again)."""
    from ioc.security import acl_plan, provision, worker_user  # noqa: PLC0415
    from streams.catalogue import default_catalogue  # noqa: PLC0415 - keep the CLI quick

    config = settings()
    sources = sorted(default_catalogue().sources)
    report = provision(config, sources)
    say(
        f"Topic: tạo mới {len(report.topics_created)}",
        f"Topics: {len(report.topics_created)} created",
    )
    say(
        f"Tài khoản Kafka: {len(report.users_created)} mới, {len(report.users_kept)} đã có "
        f"({len(sources)} nguồn và worker)",
        f"Kafka users: {len(report.users_created)} new, {len(report.users_kept)} existed "
        f"({len(sources)} sources and the worker)",
    )
    plan = acl_plan(config.topic_prefix, config.app_id, sources)
    say(
        f"ACL: {len(plan)} theo kế hoạch, thêm {len(report.acls_added)}, "
        f"gỡ {len(report.acls_removed)}",
        f"ACLs: {len(plan)} planned, {len(report.acls_added)} added, "
        f"{len(report.acls_removed)} removed",
    )
    say(
        f"Mật khẩu nằm trong {report.credentials_dir} (mỗi tài khoản một tệp <tên>.password, "
        f"quyền 0600; {len(report.files_written)} tệp mới); không bao giờ được in ra",
        f"Passwords are in {report.credentials_dir} (one <user>.password file per user, mode "
        f"0600; {len(report.files_written)} new files); they are never printed",
    )
    say(
        f"Worker: IOC_KAFKA_SASL_USERNAME={worker_user(config.topic_prefix)} và "
        "IOC_KAFKA_SASL_PASSWORD_FILE=<tệp của nó>",
        f"Worker: IOC_KAFKA_SASL_USERNAME={worker_user(config.topic_prefix)} and "
        "IOC_KAFKA_SASL_PASSWORD_FILE=<its file>",
    )
