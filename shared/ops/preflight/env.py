"""Checks of the env file: settings load, production-safe values, key shapes, file modes."""

from __future__ import annotations

import stat
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from shared.ops.preflight.result import Options, Result, bad, ok, skip
from shared.platform import SERVICES
from shared.settings import CommonSettings, SettingsError, load_settings


def var(env: Mapping[str, str], *names: str) -> str:
    for name in names:
        if name in env:
            return env[name]
        if f"{name}_FILE" in env:
            try:
                return Path(env[f"{name}_FILE"]).read_text().strip()
            except OSError:
                return ""
    return ""


def settings_class(name: str) -> tuple[type[CommonSettings], str]:
    """A service's settings Struct and its env prefix."""
    module = SERVICES[name].module("settings")
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, CommonSettings) and v is not CommonSettings
    )
    return cls, str(module.PREFIX)


# Read by the CLI (`catalytic backup`), not by a service's settings.
CLI_VARIABLES = frozenset({"BACKUP_DIR", "BACKUP_RETENTION_DAYS"})


def settings_variables() -> dict[str, set[str]]:
    """`service.field` -> every variable name that sets it (prefixed and shared; _FILE not listed)."""
    found: dict[str, set[str]] = {}
    for name in SERVICES:
        cls, prefix = settings_class(name)
        for field in msgspec.structs.fields(cls):
            found[f"{name}.{field.name}"] = {field.name.upper(), f"{prefix}_{field.name.upper()}"}
    return found


def service_settings(env: Mapping[str, str], name: str) -> CommonSettings:
    cls, prefix = settings_class(name)
    return load_settings(cls, prefix, env)


def check_settings(opts: Options) -> Result:
    problems: list[str] = []
    for name in SERVICES:
        try:
            service_settings(opts.env, name)
        except SettingsError as exc:
            problems += [f"{name}: {p}" for p in exc.problems]
    if problems:
        return bad(
            "settings",
            "; ".join(problems),
            "set or correct each variable named (see .env.production.template), then rerun",
        )
    return ok("settings", f"every service's settings load ({', '.join(SERVICES)})")


def check_production_mode(opts: Options) -> Result:
    env, found = opts.env, []
    if env.get("APP_ENV") != "production":
        found.append(f"APP_ENV is {env.get('APP_ENV', 'unset')!r}")
    if env.get("DEBUG", "false").strip().lower() not in ("false", "0", "no", "off"):
        found.append("DEBUG is on")
    if not env.get("LOG_LEVEL"):
        found.append("LOG_LEVEL is not set")
    if found:
        return bad("production mode", "; ".join(found), "set APP_ENV=production, DEBUG=false, LOG_LEVEL=INFO")
    return ok("production mode", f"APP_ENV=production, DEBUG=false, LOG_LEVEL={env['LOG_LEVEL']}")


def check_cors(opts: Options) -> Result:
    names = ["CORS_ALLOWED_ORIGINS", *(f"{s.upper()}_CORS_ALLOWED_ORIGINS" for s in SERVICES)]
    wild = [n for n in names if "*" in [o.strip() for o in opts.env.get(n, "").split(",")]]
    if wild:
        return bad(
            "cors",
            f"{', '.join(wild)} allows every origin ('*')",
            "list the exact origins, e.g. CORS_ALLOWED_ORIGINS=https://app.example.com",
        )
    origins = opts.env.get("CORS_ALLOWED_ORIGINS", "")
    return ok("cors", f"allowed origins: {origins or 'none (no browser calls)'}")


def check_stripe(opts: Options) -> Result:
    key = var(opts.env, "BILLING_STRIPE_API_KEY", "STRIPE_API_KEY")
    secrets = [
        s.strip()
        for name in ("BILLING_STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRET")
        for s in var(opts.env, name).split(",")
        if s.strip()
    ]
    found, fixes = [], []
    if not key.startswith(("sk_live_", "rk_live_")):
        found.append("STRIPE_API_KEY is not a live secret key (sk_live_… or rk_live_…)")
        fixes.append("set STRIPE_API_KEY to the live secret key (Dashboard → Developers → API keys)")
    if not secrets:
        found.append("no Stripe webhook secret is set")
    if any(not s.startswith("whsec_") for s in secrets):
        found.append("a Stripe webhook secret does not start with whsec_")
    if not secrets or any(not s.startswith("whsec_") for s in secrets):
        fixes.append("set STRIPE_WEBHOOK_SECRET to the endpoint's signing secret (whsec_…)")
    if found:
        return bad("stripe keys", "; ".join(found), "; ".join(fixes))
    return ok("stripe keys", f"live key and {len(secrets)} webhook secret(s) of the right shape")


def check_file_modes(opts: Options) -> Result:
    paths = [Path(v) for k, v in sorted(opts.env.items()) if k.endswith("_FILE") and v]
    if opts.env_file is not None:
        paths.insert(0, opts.env_file)
    loose, missing = [], []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            missing.append(str(path))
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            loose.append(f"{path} is {stat.S_IMODE(mode):o}")
    if loose or missing:
        detail = "; ".join(loose + [f"{p} is missing" for p in missing])
        fixes = [f"chmod 600 {p.split(' is ')[0]}" for p in loose]
        if missing:
            fixes.append("create the missing files (`catalytic keys generate production --dir …`)")
        return bad("file modes", detail, "; ".join(fixes))
    return ok("file modes", f"{len(paths)} file(s), none readable by group or others")


def check_unknown_names(opts: Options) -> Result:
    """A misspelt name is silently ignored by the services: refuse names nothing reads."""
    if opts.env_file is None:
        return skip("variable names", "no --env-file: the process environment has unrelated names")
    known = set().union(*settings_variables().values()) | CLI_VARIABLES
    unknown = sorted(n for n in opts.env if n.removesuffix("_FILE") not in known)
    if unknown:
        return bad(
            "variable names",
            f"no service reads {', '.join(unknown)}",
            "correct the spelling or remove them (names as in .env.production.template)",
        )
    return ok("variable names", f"all {len(opts.env)} names are read by the platform")


ENV_CHECKS: list[Callable[[Options], Result]] = [
    check_settings,
    check_unknown_names,
    check_production_mode,
    check_cors,
    check_stripe,
    check_file_modes,
]
