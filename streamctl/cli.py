"""The `streamctl` command: run, demo, check, doctor, user, token, backup, auth, report."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import sys
from pathlib import Path

from . import __version__
from .assets import AssetMissing
from .config import ConfigError, load_event, placeholders
from .redact import redact
from .store import ROLES, Store, StoreError

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
    """Everything that would fail at `run`: the file key by key, placeholders, missing extras, the ingest's rules."""
    from .accounts.cli import account_warnings
    from .audience.registry import missing_extras
    from .console.https import plain_http_warning
    from .restream.check import check_ingest_against_rules

    unfilled = placeholders(args.event)
    try:
        event = load_event(args.event)
    except ConfigError as e:
        for line in e.issues + unfilled:
            print(redact(line), file=sys.stderr)
        return EXIT_USAGE
    problems = unfilled + [f'{args.event}: audience "{config.name}": {hint}'
                           for config, hint in missing_extras(event.audience)]
    if problems:
        for line in problems:
            print(redact(line), file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.event}: ok: {event.event.name!r}, {len(event.destinations)} destination(s), "
          f"{len(event.audience)} audience source(s)")
    for d in event.destinations:
        print(f"  destination {d.name}: {d.platform} {d.display_url} profile={d.profile}")
    if (warning := plain_http_warning(event)) is not None:
        print(warning, file=sys.stderr)
    for line in account_warnings(event):
        print(f"warning: {line}", file=sys.stderr)
    problems = asyncio.run(check_ingest_against_rules(event, timeout=args.probe_timeout))
    for line in problems:
        print(redact(line), file=sys.stderr)
    return EXIT_USAGE if problems else 0


def cmd_doctor(args) -> int:
    from . import doctor
    from .restream.ffmpeg import doctor_report

    event = _load(args.event, need_secrets=False) if args.event else None
    text, ok = doctor_report()
    print(text)
    if ok:
        from .restream.hardware import find_hardware_encoder
        from .restream.supervisor import Supervisor

        # A working hardware encoder is a bonus, not a need: none found is not a failure.
        print("\n".join(asyncio.run(find_hardware_encoder(Supervisor())).lines()))
    found = doctor.checks(event)
    print("\n".join(check.line() for check in found))
    return 0 if ok and all(check.status != doctor.PROBLEM for check in found) else 1


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


def _read_password(args) -> str:
    """The password from standard input (--password-stdin) or typed twice at a terminal; SystemExit otherwise."""
    command = f"streamctl user {args.user_command}"
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print(f"{command}: there is no terminal to type the password in; give it on standard input with "
              f"--password-stdin, e.g. printf '%s\\n' \"$PASSWORD\" | {command} {args.name} --event {args.event} "
              + ("--role ROLE " if args.user_command == "add" else "") + "--password-stdin", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    try:
        password = getpass.getpass(f"password for {args.name}: ")
        again = getpass.getpass("the same password again: ")
    except EOFError:
        print(f"\n{command}: no password typed; nothing changed", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    if password != again:
        print(f"{command}: the two passwords differ; nothing changed", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    return password


def _when(ts: float | None, timezone: str) -> str:
    """A stored time as the event's local time, to the minute, or "never"."""
    if ts is None:
        return "never"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.fromtimestamp(ts, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _on_store(args, action, password: bool = False):
    """(event, action(store[, password])) on the event's database, closed after; a LookupError or ValueError
    (no such user, a bad password) is printed as `streamctl COMMAND: what is wrong` and exits 2."""
    event = _load(args.event, need_secrets=False)
    given = (_read_password(args),) if password else ()
    store = Store(event.event.database)
    try:
        return event, action(store, *given)
    except (LookupError, ValueError) as e:
        command = " ".join(a for a in (args.command, getattr(args, "user_command", None),
                                       getattr(args, "token_command", None)) if a)
        print(f"streamctl {command}: {e.args[0]}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    finally:
        store.close()


def cmd_user_add(args) -> int:
    from .console.accounts import add_user

    event, _ = _on_store(args, lambda store, pw: add_user(store, args.name, args.role, pw, lang=args.lang), True)
    print(f"user {args.name} ({args.role}) added to {event.event.database}")
    return 0


def cmd_user_list(args) -> int:
    from .console.accounts import list_users

    event, users = _on_store(args, list_users)
    if not users:
        print(f"no users in {event.event.database} (add one with `streamctl user add NAME --role ROLE "
              f"--event {args.event}`)")
        return 0
    tz = event.event.timezone
    print(_table([["name", "role", "language", f"created ({tz})", "signed in"]]
                 + [[u["username"], u["role"], u["lang"], _when(u["created_at"], tz), str(u["sessions"])]
                    for u in users]))
    return 0


def cmd_user_passwd(args) -> int:
    from .console.accounts import set_password

    _, ended = _on_store(args, lambda store, pw: set_password(store, args.name, pw), True)
    print(f"new password for {args.name}; {ended} session(s) signed out")
    return 0


def cmd_user_remove(args) -> int:
    from .console.accounts import remove_user

    _, ended = _on_store(args, lambda store: remove_user(store, args.name))
    print(f"user {args.name} removed; {ended} session(s) signed out")
    return 0


def cmd_token_create(args) -> int:
    _, token = _on_store(args, lambda store: store.create_token(args.role, args.label))
    print(token)
    return 0


def cmd_token_list(args) -> int:
    event, tokens = _on_store(args, lambda store: store.tokens())
    if not tokens:
        print(f"no tokens in {event.event.database} (make one with `streamctl token create --role ROLE "
              f"--event {args.event}`)")
        return 0
    tz = event.event.timezone
    print(_table([["id", "role", "label", f"created ({tz})", "last used", "state"]]
                 + [[str(t["id"]), t["role"], t["label"] or "-", _when(t["created_at"], tz),
                     _when(t["last_used_at"], tz), "revoked" if t["revoked"] else "active"] for t in tokens]))
    return 0


def _revoke(store: Store, token_id: int) -> str:
    """The revoked token's role; LookupError saying why nothing was revoked."""
    known = {t["id"]: t for t in store.tokens()}
    if not store.revoke_token(token_id):
        why = "was already revoked" if token_id in known else "does not exist (see `streamctl token list`)"
        raise LookupError(f"token {token_id} {why}")
    return known[token_id]["role"]


def cmd_token_revoke(args) -> int:
    _, role = _on_store(args, lambda store: _revoke(store, args.id))
    print(f"token {args.id} ({role}) revoked; whatever used it is refused from now on")
    return 0


def cmd_backup(args) -> int:
    from .backup import BackupError, backup

    try:
        copied = backup(Path(args.database), Path(args.output))
    except BackupError as e:
        print(f"streamctl backup: {e}", file=sys.stderr)
        return 1
    print(f"{args.database} copied to {copied.target}: {copied.pages} pages, {copied.bytes / 1e6:.1f} MB, "
          f"{copied.seconds:.2f} s")
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

    p = sub.add_parser("doctor", help="ffmpeg and what it supports, Chromium, ports, disk space, the clock")
    p.add_argument("event", nargs="?", default=None, help="an event file: also check its ports and disks")
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
    u = usub.add_parser("list", help="the accounts: name, role, language, created, signed-in sessions")
    u.add_argument("--event", required=True)
    u.set_defaults(func=cmd_user_list)
    u = usub.add_parser("passwd", help="set a new password; signs out the user's sessions")
    u.add_argument("name")
    u.add_argument("--event", required=True)
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.set_defaults(func=cmd_user_passwd)
    u = usub.add_parser("remove", help="delete an account; its sessions end at once")
    u.add_argument("name")
    u.add_argument("--event", required=True)
    u.set_defaults(func=cmd_user_remove)

    p = sub.add_parser("token", help="API bearer tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    t = tsub.add_parser("create", help="print a new bearer token")
    t.add_argument("--role", required=True, choices=ROLES)
    t.add_argument("--event", required=True)
    t.add_argument("--label", default=None, help="what the token is for, e.g. 'stream deck'")
    t.set_defaults(func=cmd_token_create)
    t = tsub.add_parser("list", help="the tokens: id, role, label, created, last used (never the token)")
    t.add_argument("--event", required=True)
    t.set_defaults(func=cmd_token_list)
    t = tsub.add_parser("revoke", help="revoke a token by its id (from `token list`); its users are refused")
    t.add_argument("id", type=int)
    t.add_argument("--event", required=True)
    t.set_defaults(func=cmd_token_revoke)

    p = sub.add_parser("backup", help="a consistent copy of the event database, also while the event runs")
    p.add_argument("database", help="the event's SQLite database")
    p.add_argument("output", help="the copy (replaced atomically if it exists)")
    p.set_defaults(func=cmd_backup)

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
    except (AssetMissing, StoreError) as e:
        print(redact(f"streamctl {args.command}: {e}"), file=sys.stderr)
        return 1
