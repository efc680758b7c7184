"""`streamctl auth youtube` and `streamctl auth facebook`, and the account warnings `streamctl check` prints."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from ..redact import redact
from . import facebook, google
from .files import CredentialFileError

EXIT_FAILED, EXIT_USAGE = 1, 2


def cmd_auth_youtube(args) -> int:
    try:
        client = google.ClientSecrets.load(args.client_secrets, token_uri=args.token_uri, device_uri=args.device_uri)
    except CredentialFileError as e:
        print(f"streamctl auth youtube: {e}", file=sys.stderr)
        return EXIT_USAGE

    def show(code: google.DeviceCode) -> None:
        minutes = max(1, round(code.expires_in / 60))
        print(f"On any phone or computer, open {code.verification_url}\nand type the code {code.user_code}\n"
              f"(sign in with the Google account that owns the YouTube channel; the code works for {minutes} min).\n"
              "Waiting for the sign-in...", flush=True)

    try:
        user = asyncio.run(google.device_flow(client, show))
    except google.DeviceFlowError as e:
        print(redact(f"streamctl auth youtube: {e}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("streamctl auth youtube: stopped before the sign-in was approved", file=sys.stderr)
        return 130
    print(redact(google.save(user, args.output)))
    print(f"Use it in the event file: credentials_file = \"{args.output}\"")
    return 0


def cmd_auth_facebook(args) -> int:
    user_token = os.environ.get(args.user_token_env)
    if not user_token:
        print(f"streamctl auth facebook: environment variable {args.user_token_env} is not set, expected a user "
              "access token of a Page admin (Graph API Explorer, with pages_manage_posts, pages_read_engagement "
              "and publish_video)", file=sys.stderr)
        return EXIT_USAGE
    api_base = args.api_base or facebook.default_api_base()
    try:
        token = asyncio.run(facebook.exchange(api_base, user_token, args.page))
    except facebook.GraphError as e:
        hint = " (the user token has expired: make a new one)" if e.code == 190 else ""
        print(redact(f"streamctl auth facebook: {e}{hint}"), file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print(redact(f"streamctl auth facebook: {api_base}: {e}"), file=sys.stderr)
        return EXIT_FAILED
    print(redact(facebook.save(token, args.output)))
    warning = token.expiring()
    if warning:
        print(f"warning: {warning}: run this command again before then", file=sys.stderr)
    version = facebook.version_warning(api_base)
    if version:
        print(f"warning: {version}", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    """The `auth` command and its two platforms."""
    p = sub.add_parser("auth", help="sign in to a platform account and save its credentials file")
    asub = p.add_subparsers(dest="auth_command", required=True)
    y = asub.add_parser("youtube", help="Google's device sign-in: writes an authorized_user file (mode 0600)")
    y.add_argument("--client-secrets", required=True, help="the OAuth client JSON from Google Cloud "
                                                           "(type \"TVs and Limited Input devices\")")
    y.add_argument("-o", "--output", required=True, help="where to write the credentials (JSON, mode 0600)")
    y.add_argument("--token-uri", default=None, help="token endpoint (default: the client file's token_uri)")
    y.add_argument("--device-uri", default=None, help="device-code endpoint (default: Google's, or the client "
                                                      "file's device_uri)")
    y.set_defaults(func=cmd_auth_youtube)
    f = asub.add_parser("facebook", help="exchange a user token for a Page token; writes it (mode 0600)")
    f.add_argument("--page", required=True, help="the Page id")
    f.add_argument("--user-token-env", required=True, help="environment variable holding the user access token")
    f.add_argument("-o", "--output", required=True, help="where to write the Page token (JSON, mode 0600)")
    f.add_argument("--api-base", default=None, help=f"Graph API root, default {facebook.default_api_base()}")
    f.set_defaults(func=cmd_auth_facebook)


def account_warnings(event, at: float | None = None) -> list[str]:
    """What `streamctl check` warns about: Page tokens that expire within 7 days, Graph versions near their end."""
    at = time.time() if at is None else at
    out = []
    seen: set[Path] = set()
    for dest in event.destinations:
        if dest.platform == "facebook":
            if dest.api_base and (warning := facebook.version_warning(dest.api_base)):
                out.append(f"destination {dest.name}: {warning}")
            if dest.credentials_file and dest.credentials_file not in seen:
                seen.add(dest.credentials_file)
                out += _page_warnings(f"destination {dest.name}", dest.credentials_file, at)
        if dest.platform == "youtube" and dest.credentials_file:
            try:
                google.AuthorizedUser.load(dest.credentials_file)
            except CredentialFileError as e:
                out.append(f"destination {dest.name}: {e}")
    for source in event.audience:
        api_base = source.get("api_base")
        if source.platform == "facebook" and api_base and (warning := facebook.version_warning(api_base)):
            out.append(f"audience {source.name}: {warning}")
    return [redact(line) for line in out]


def _page_warnings(where: str, path: Path, at: float) -> list[str]:
    try:
        page = facebook.PageToken.load(path)
    except CredentialFileError as e:
        return [f"{where}: {e}"]
    out = []
    problem = page.expiring(at)
    if problem:
        out.append(f"{where}: credential.expiring: {problem}: run `streamctl auth facebook --page {page.page_id} "
                   f"--user-token-env VAR -o {path.name}` again")
    if page.api_base and (warning := facebook.version_warning(page.api_base)):
        out.append(f"{where}: {warning}")
    return out
