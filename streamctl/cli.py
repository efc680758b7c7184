"""The `streamctl` command: run, demo, check, doctor, user, token, auth, report."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import sys
from pathlib import Path

from . import __version__
from .config import ConfigError, load_event
from .redact import redact
from .store import ROLES, Store

EXIT_USAGE = 2


class RedactingFormatter(logging.Formatter):
    """Every log line passes through `redact`, so no key or token reaches a log."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _load(path: str, need_secrets: bool = True):
    try:
        return load_event(path, need_secrets=need_secrets)
    except ConfigError as e:
        for line in e.issues:
            print(redact(line), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def cmd_check(args) -> int:
    event = _load(args.event)
    print(f"{args.event}: ok: {event.event.name!r}, {len(event.destinations)} destination(s), "
          f"{len(event.audience)} audience source(s)")
    for d in event.destinations:
        print(f"  destination {d.name}: {d.platform} {d.display_url} profile={d.profile}")
    from .accounts.cli import account_warnings
    from .restream.probe import check_ingest_against_rules

    for line in account_warnings(event):
        print(f"warning: {line}", file=sys.stderr)
    problems = asyncio.run(check_ingest_against_rules(event, timeout=args.probe_timeout))
    for line in problems:
        print(redact(line), file=sys.stderr)
    return EXIT_USAGE if problems else 0


def cmd_doctor(args) -> int:
    from .restream.ffmpeg import doctor_report

    text, ok = doctor_report()
    print(text)
    return 0 if ok else 1


def cmd_run(args) -> int:
    from .controller import Controller, os_error_in, run_until_signalled

    event = _load(args.event)
    setup_logging(args.verbose)
    controller = Controller(event)
    try:
        asyncio.run(run_until_signalled(controller))
    except KeyboardInterrupt:
        pass
    except Exception as e:
        error = os_error_in(e)
        if error is None:
            raise
        hint = f" (is another program using it? change [console] listen in {args.event})" \
            if error.errno == errno.EADDRINUSE else ""
        print(redact(f"streamctl run: {error.strerror or error}{hint}"), file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    setup_logging(args.verbose)
    return run_demo(port=args.port, workdir=args.dir)


def cmd_user_add(args) -> int:
    from .console.accounts import add_user

    event = _load(args.event, need_secrets=False)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    store = Store(event.event.database)
    try:
        add_user(store, args.name, args.role, password, lang=args.lang)
    except ValueError as e:
        print(f"streamctl user add: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    print(f"user {args.name} ({args.role}) added to {event.event.database}")
    return 0


def cmd_token_create(args) -> int:
    event = _load(args.event, need_secrets=False)
    store = Store(event.event.database)
    try:
        print(store.create_token(args.role, args.label))
    finally:
        store.close()
    return 0


def cmd_report(args) -> int:
    from .report.cli import run_report

    return run_report(Path(args.database), args.format, args.output, lang=args.lang)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamctl", description=__doc__)
    parser.add_argument("--version", action="version", version=f"streamctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run an event: ingest, destinations, audience, console")
    p.add_argument("event", help="the event file (TOML)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="a whole rehearsal with nothing configured")
    p.add_argument("--port", type=int, default=8080, help="console port (default 8080)")
    p.add_argument("--dir", default=None, help="where the demo keeps its database (default: a temporary folder)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check", help="validate an event file; probe a reachable ingest against platform rules")
    p.add_argument("event")
    p.add_argument("--probe-timeout", type=float, default=5.0, help="seconds to wait for the ingest (default 5)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="which ffmpeg is used and what it supports")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("user", help="console accounts")
    usub = p.add_subparsers(dest="user_command", required=True)
    u = usub.add_parser("add", help="create a console account")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=[r for r in ROLES if r != "overlay"])
    u.add_argument("--event", required=True)
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.add_argument("--lang", choices=["vi", "en"], default="vi", help="the user's console language")
    u.set_defaults(func=cmd_user_add)

    p = sub.add_parser("token", help="API bearer tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    t = tsub.add_parser("create", help="print a new bearer token")
    t.add_argument("--role", required=True, choices=ROLES)
    t.add_argument("--event", required=True)
    t.add_argument("--label", default=None, help="what the token is for, e.g. 'stream deck'")
    t.set_defaults(func=cmd_token_create)

    from .accounts.cli import add_parsers as add_auth_parsers

    add_auth_parsers(sub)

    p = sub.add_parser("report", help="the post-event viewer report")
    p.add_argument("database", help="the event's SQLite database")
    p.add_argument("--format", choices=["html", "pdf", "csv", "json"], default="html")
    p.add_argument("-o", "--output", default=None, help="output file (default: standard output; pdf needs -o)")
    p.add_argument("--lang", choices=["vi", "en"], default="vi")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
