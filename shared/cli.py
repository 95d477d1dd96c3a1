"""The `catalytic` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from shared.platform import SERVICES, service


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    info = service(args.service)
    settings = info.module("settings").get_settings()
    # Several processes need an import string (each worker builds its own app); one keeps the
    # app built here, so a bad setting fails before the server starts.
    workers = max(1, args.workers)
    app = f"services.{info.name}.app:app" if workers > 1 else info.module().app()
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers if workers > 1 else None,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from any local peer and rewrite the
        # client address itself; the gateway applies GATEWAY_TRUSTED_PROXIES, nothing else may.
        proxy_headers=False,
    )


def _worker(args: argparse.Namespace) -> None:
    from shared.worker import run_worker

    spec = service(args.service).module().worker()
    if spec is None:
        print(f"{args.service} has no worker", file=sys.stderr)
        return
    asyncio.run(run_worker(spec))


def _migrate(args: argparse.Namespace) -> None:
    from shared.setup import migrate_all, provision_roles_from_env

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("DATABASE_URL (a role that may create schemas) is required to migrate")
    if args.create_roles:
        try:
            roles = asyncio.run(provision_roles_from_env(url, os.environ))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        print(f"login roles ready: {', '.join(roles) or 'none (no <SERVICE>_DATABASE_URL set)'}")
    for name, applied in asyncio.run(migrate_all(url, args.service)).items():
        print(f"{name}: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))


def _dev(args: argparse.Namespace) -> None:
    from shared.devrun import run_dev

    run_dev()


def _checkout_complete(args: argparse.Namespace) -> None:
    from shared.devstack.fakestripe.cli import main as checkout_complete

    raise SystemExit(checkout_complete(args.session_id, args.to))


def _keys(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shared.auth import keys

    directory = Path(args.dir or f"keys/{args.env}")
    try:
        made = keys.generate(args.env, directory, force=args.force)
    except keys.KeyFileExists as exc:
        raise SystemExit(str(exc)) from None
    print(f"wrote {args.env} keys to {made.directory} (mode 600). Back up:")
    for name, purpose in made.files.items():
        print(f"  {made.directory / name}: {purpose}")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("DATABASE_URL (a role that owns the service schemas) is required")
    return url


def _backup(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shared.ops import backup

    dump = backup.backup(_database_url(), Path(args.dir), retention_days=args.retention_days)
    print(f"backup written: {dump} ({dump.stat().st_size} bytes)")


def _restore(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shared.ops import backup

    backup.restore(_database_url(), Path(args.file))
    print(f"restored {args.file}")


def _email_test(args: argparse.Namespace) -> None:
    from services.notifier.cli import send_test

    raise SystemExit(send_test(args.to))


def _env_check(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shared.ops import envfile, preflight

    path = Path(args.file)
    try:
        env = envfile.load(path)
    except (OSError, envfile.EnvFileError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None
    results = preflight.env_results(preflight.Options(env=env, env_file=path))
    print(preflight.format_table(results))
    raise SystemExit(1 if any(r.status == "fail" for r in results) else 0)


def _preflight(args: argparse.Namespace) -> None:
    from pathlib import Path

    from shared.ops import envfile, preflight

    env_file = Path(args.env_file) if args.env_file else None
    try:
        env = envfile.load(env_file) if env_file else dict(os.environ)
    except (OSError, envfile.EnvFileError) as exc:
        raise SystemExit(f"cannot read {env_file}: {exc}") from None
    opts = preflight.Options(
        env=env,
        env_file=env_file,
        send_test_mail=args.send_test_mail,
        health_url=args.health_url,
        backup_dir=Path(args.backup_dir or env.get("BACKUP_DIR") or "/var/backups/catalytic"),
        max_backup_age_hours=args.max_backup_age_hours,
        systemd_dir=Path(args.systemd_dir),
        cron_dir=Path(args.cron_dir),
    )
    results = asyncio.run(preflight.run(opts))
    print(preflight.format_table(results))
    raise SystemExit(1 if any(r.status == "fail" for r in results) else 0)


def _admin_create(args: argparse.Namespace) -> None:
    import getpass
    from pathlib import Path

    from services.identity.cli import create_admin

    if args.password_file:
        password = Path(args.password_file).read_text().rstrip("\n")
    else:
        password = getpass.getpass("password for the owner: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("the two passwords differ; nothing was changed")
    raise SystemExit(create_admin(args.email, args.tenant, password))


def _import_legacy(args: argparse.Namespace) -> None:
    from shared.ops import legacy
    from shared.ops.preflight.env import var

    secrets_key = var(os.environ, "SECRETS_KEY")
    if not secrets_key:
        raise SystemExit(
            "SECRETS_KEY (or SECRETS_KEY_FILE) is required: webhook secrets are stored encrypted"
        )
    try:
        report = asyncio.run(legacy.run(args.source, _database_url(), secrets_key, dry_run=args.dry_run))
    except legacy.LegacyError as exc:
        raise SystemExit(f"import-legacy: {exc}") from None
    print(report.format())


def _bench(args: argparse.Namespace) -> None:
    from bench.run import main as bench_main

    bench_main(args.scenarios)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catalytic", description="Catalytic Computing platform")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run a service's HTTP server")
    p.add_argument("service", choices=list(SERVICES))
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1, help="server processes on one socket (default 1)")
    p.set_defaults(fn=_serve)
    p = sub.add_parser("worker", help="run a service's worker (outbox relay, consumers, jobs)")
    p.add_argument("service", choices=list(SERVICES))
    p.set_defaults(fn=_worker)
    p = sub.add_parser("migrate", help="apply database migrations (all services or one)")
    p.add_argument("service", nargs="?", choices=[n for n, s in SERVICES.items() if s.schema])
    p.add_argument(
        "--create-roles",
        action="store_true",
        help="first create or update each service's login role from <SERVICE>_DATABASE_URL",
    )
    p.set_defaults(fn=_migrate)
    p = sub.add_parser("dev", help="run the whole platform locally with throwaway peers")
    p.set_defaults(fn=_dev)
    dev_sub = p.add_subparsers(dest="dev_command")
    p = dev_sub.add_parser("checkout-complete", help="pay a checkout in the fake Stripe, send its webhooks")
    p.add_argument("session_id")
    p.add_argument("--to", default="auto", help="auto (default), gateway, billing, or a webhook URL")
    p.set_defaults(fn=_checkout_complete)
    keys_sub = sub.add_parser("keys", help="key material").add_subparsers(dest="keys_command", required=True)
    p = keys_sub.add_parser("generate", help="generate JWT, assertion and encryption keys (mode 600)")
    p.add_argument("env", choices=["development", "test", "staging", "production"])
    p.add_argument("--dir", help="target directory (default keys/<env>)")
    p.add_argument("--force", action="store_true", help="replace existing key files")
    p.set_defaults(fn=_keys)
    p = sub.add_parser("backup", help="dump every service schema (gzip'd SQL) and prune old dumps")
    p.add_argument("--dir", default=os.environ.get("BACKUP_DIR", "backups"))
    p.add_argument("--retention-days", type=int, default=int(os.environ.get("BACKUP_RETENTION_DAYS", "14")))
    p.set_defaults(fn=_backup)
    p = sub.add_parser("restore", help="load a dump made by `catalytic backup` into an empty database")
    p.add_argument("file")
    p.set_defaults(fn=_restore)
    email = sub.add_parser("email", help="email tools")
    email_sub = email.add_subparsers(dest="email_command", required=True)
    p = email_sub.add_parser("test", help="send a test email with the notifier's SMTP settings")
    p.add_argument("--to", required=True, help="recipient address")
    p.set_defaults(fn=_email_test)
    _add_operations(sub)
    p = sub.add_parser("bench", help="run benchmarks and print one JSON line per figure")
    p.add_argument("scenarios", nargs="*", default=[])
    p.set_defaults(fn=_bench)
    return parser


def _add_operations(sub: Any) -> None:
    env_sub = sub.add_parser("env", help="env file tools").add_subparsers(dest="env_command", required=True)
    p = env_sub.add_parser("check", help="validate an env file with the services' production rules")
    p.add_argument("file")
    p.set_defaults(fn=_env_check)
    p = sub.add_parser("preflight", help="run the machine-checkable production checklist")
    p.add_argument("--env-file", help="the env file the services read (default: this environment)")
    p.add_argument("--send-test-mail", metavar="TO", help="also send a test mail to this address")
    p.add_argument("--health-url", help="the gateway's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--backup-dir", help="where `catalytic backup` writes (default BACKUP_DIR)")
    p.add_argument("--max-backup-age-hours", type=float, default=26.0)
    p.add_argument("--systemd-dir", default="/etc/systemd/system")
    p.add_argument("--cron-dir", default="/etc/cron.d")
    p.set_defaults(fn=_preflight)
    admin_sub = sub.add_parser("admin", help="accounts").add_subparsers(dest="admin_command", required=True)
    p = admin_sub.add_parser("create", help="create a tenant and its owner (email verified)")
    p.add_argument("--email", required=True)
    p.add_argument("--tenant", required=True, help="the tenant's (company's) name")
    p.add_argument("--password-file", help="read the password from this file (default: prompt)")
    p.set_defaults(fn=_admin_create)
    p = sub.add_parser("import-legacy", help="import the legacy monolith's database (see docs/deploy.md)")
    p.add_argument("--source", required=True, help="sqlite:///PATH or postgresql://USER@HOST/DATABASE")
    p.add_argument("--dry-run", action="store_true", help="report what would be imported, write nothing")
    p.set_defaults(fn=_import_legacy)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
