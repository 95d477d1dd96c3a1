"""The `catalytic` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from shared.platform import SERVICES, service


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    info = service(args.service)
    settings = info.module("settings").get_settings()
    uvicorn.run(
        info.module().app(),
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


def _bench(args: argparse.Namespace) -> None:
    from bench.run import main as bench_main

    bench_main(args.scenarios)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="catalytic", description="Catalytic Computing platform")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run a service's HTTP server")
    p.add_argument("service", choices=list(SERVICES))
    p.add_argument("--host")
    p.add_argument("--port", type=int)
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
    p = sub.add_parser("bench", help="run benchmarks and print one JSON line per figure")
    p.add_argument("scenarios", nargs="*", default=[])
    p.set_defaults(fn=_bench)
    args = parser.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
