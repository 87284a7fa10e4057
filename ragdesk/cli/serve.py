"""`ragdesk serve` and `ragdesk token ...`: the LAN server's command-line side.

FastAPI and uvicorn are imported only when `serve` runs. The vault is opened by one process at
a time, so tokens are managed while the server is stopped (or with `serve --new-token NAME`, or
from the GUI while it serves, or over the API with an admin token).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import time

from ragdesk.cli.common import (
    EXIT_OK,
    CliParser,
    Subcommands,
    add_command,
    open_services,
    shared_options,
)
from ragdesk.errors import RagdeskError, UsageError, VaultInUse

WARNING_PLAIN_HTTP = """\
================================================================================
 WARNING: --insecure-http: TLS IS OFF.
 Questions, answers, document text and client tokens cross the network in
 PLAIN TEXT: anyone on the network path can read them and reuse the tokens.
 Use it only behind a TLS-terminating reverse proxy on this machine, or for a
 test on loopback. Without the flag RagDesk serves HTTPS.
================================================================================"""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


def cmd_serve(args: argparse.Namespace) -> int:
    from ragdesk.server.auth import TokenRegistry
    from ragdesk.server.config import Limits, ServerConfig
    from ragdesk.server.runner import ServerHandle

    if args.insecure_http and (args.cert or args.key):
        raise UsageError("--insecure-http and --cert/--key contradict each other")
    if bool(args.cert) != bool(args.key):
        raise UsageError("give both --cert FILE and --key FILE")
    limits = Limits()
    if args.max_streams is not None:
        limits = Limits(**{**limits.__dict__, "max_streams": args.max_streams})
    if args.max_streams_per_token is not None:
        limits = Limits(**{**limits.__dict__, "max_streams_per_token": args.max_streams_per_token})
    if args.max_connections_per_client is not None:
        if args.max_connections_per_client < 1:
            raise UsageError("--max-connections-per-client must be at least 1")
        limits = Limits(**{**limits.__dict__, "max_connections_per_client": args.max_connections_per_client})
    config = ServerConfig(host=args.host, port=args.port, tls=not args.insecure_http,
                          cert_file=args.cert, key_file=args.key, limits=limits,
                          docs=not args.no_docs, trusted_proxies=",".join(args.trusted_proxy or []))
    services = open_services(args)
    try:
        tokens = TokenRegistry(services.store)
        if args.new_token:
            _, secret = tokens.create(args.new_token)
            print(f"New read-only token {args.new_token!r} (shown only this once):", file=sys.stderr)
            print(secret, flush=True)
        handle = ServerHandle(services, config, tokens)
        handle.build()
        if not config.tls:
            print(WARNING_PLAIN_HTTP, file=sys.stderr)
            if not _is_loopback(config.host):
                print(f" {config.host} is not a loopback address: this is reachable from the network.",
                      file=sys.stderr)
        if handle.identity is None:
            print(f"RagDesk is serving this vault on {handle.url}", flush=True)
        else:
            # The fingerprint on the start-up line itself: what users compare when a browser or
            # client asks whether to trust the certificate.
            print(f"RagDesk is serving this vault on {handle.url} (certificate SHA-256 "
                  f"{handle.fingerprint})", flush=True)
            where = "from the vault" if handle.identity.source == "vault" else "from your files"
            print(f"TLS certificate ({where}), valid for: {', '.join(handle.identity.names)}", flush=True)
        head = services.store.audit_head()
        if head is not None:  # on stdout, so the journal (and a SIEM reading it) keeps a copy
            print(f"Audit log anchor: {head} (check later: ragdesk audit verify --anchor {head})",
                  flush=True)
        if not tokens.list():
            print("No client tokens yet: stop the server and run `ragdesk token create NAME`"
                  " (or start it with --new-token NAME).", file=sys.stderr)
        print("Stop with Ctrl+C.", file=sys.stderr, flush=True)
        # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again: a requested
        # stop is a clean exit (systemd's `stop`, Ctrl+C), not an interruption.
        previous = signal.signal(signal.SIGTERM, _exit_cleanly)
        try:
            handle.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        print("RagDesk stopped serving.", file=sys.stderr)
        return EXIT_OK
    finally:
        services.close()


def cmd_token(args: argparse.Namespace) -> int:
    if not getattr(args, "token_command", None):
        raise UsageError("token what? create NAME, list or revoke NAME")
    from ragdesk.server.auth import TokenRegistry

    try:
        services = open_services(args)
    except VaultInUse as exc:  # most often: `ragdesk serve` has it
        raise VaultInUse(f"{exc}. While `ragdesk serve` runs, an admin token manages tokens over "
                         "the API: POST /api/v1/tokens, GET /api/v1/tokens, "
                         "DELETE /api/v1/tokens/NAME") from None
    try:
        registry = TokenRegistry(services.store)
        if args.token_command == "create":
            collections = None
            if args.collections is not None:  # given, even as "": never read as "every collection"
                collections = [c.strip() for group in args.collections for c in group.split(",") if c.strip()]
                if not collections:
                    raise UsageError("--collections names no collection: give at least one name, or "
                                     "leave the option out for a token that reads every collection")
            token, secret = registry.create(args.name, collections=collections, admin=args.admin)
            scope = "admin (may add and remove documents)" if token.admin else "read-only"
            where = ", ".join(token.collections) if token.collections is not None else "all collections"
            print(f"Created token {token.name!r}: {scope}, {where}.", file=sys.stderr)
            print("It is shown only this once; clients send it as `Authorization: Bearer <token>`.",
                  file=sys.stderr)
            print(secret, flush=True)
        elif args.token_command == "list":
            items = registry.list(include_revoked=args.all)
            if args.json:
                print(json.dumps([{"name": t.name, "admin": t.admin,
                                   "collections": list(t.collections) if t.collections is not None else None,
                                   "created_at": t.created_at, "revoked_at": t.revoked_at}
                                  for t in items], indent=2))
            elif not items:
                print("No tokens. Create one with `ragdesk token create NAME`.")
            else:
                for t in items:
                    scope = "admin" if t.admin else "read-only"
                    where = ",".join(t.collections) if t.collections is not None else "all"
                    state = f"  revoked {time.strftime('%Y-%m-%d %H:%M', time.localtime(t.revoked_at))}" \
                        if t.revoked_at else ""
                    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created_at))
                    print(f"{t.name:24} {scope:9} collections: {where:20} created {created}{state}")
        elif args.token_command == "revoke":
            if not registry.revoke(args.name):
                raise RagdeskError(f"no active token named {args.name!r}")
            print(f"Revoked token {args.name!r}.")
        return EXIT_OK
    finally:
        services.close()


def register(commands: Subcommands) -> None:
    p = add_command(commands, "serve", cmd_serve,
                    "share this vault on the network (HTTPS, token sign-in) until stopped")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    p.add_argument("--cert", metavar="FILE", help="your own certificate (PEM, chain first)")
    p.add_argument("--key", metavar="FILE", help="its private key (PEM)")
    p.add_argument("--insecure-http", action="store_true",
                   help="serve plain HTTP (no TLS): only behind a TLS proxy on this machine")
    p.add_argument("--new-token", metavar="NAME", help="create a read-only token first and print it")
    p.add_argument("--max-streams", type=int, metavar="N", help="answers streamed at once (default 1000)")
    p.add_argument("--max-streams-per-token", type=int, metavar="N",
                   help="answers one token may stream at once (default 8)")
    p.add_argument("--no-docs", action="store_true", help="do not serve the /docs page")
    p.add_argument("--trusted-proxy", action="append", metavar="ADDRESS",
                   help="a reverse proxy (IP address or network) whose X-Forwarded-For is believed; "
                        "repeat for several (default: none, the connecting address counts)")
    p.add_argument("--max-connections-per-client", type=int, metavar="N",
                   help="connections one address may hold open (default 128; a trusted proxy has no cap)")

    p = add_command(commands, "token", cmd_token, "create, list and revoke LAN client tokens")
    actions = p.add_subparsers(dest="token_command", metavar="ACTION", parser_class=CliParser)
    shared = [shared_options(suppress=True)]
    c = actions.add_parser("create", help="create a token and print it (once)", parents=shared)
    c.add_argument("name", metavar="NAME")
    c.add_argument("--collections", action="extend", nargs="+", metavar="NAME",
                   help="only these collections (names, or NAME,NAME; default: all)")
    c.add_argument("--admin", action="store_true",
                   help="may also add and remove documents, and manage tokens over the API")
    c = actions.add_parser("list", help="list tokens", parents=shared)
    c.add_argument("--all", action="store_true", help="include revoked tokens")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = actions.add_parser("revoke", help="revoke a token at once", parents=shared)
    c.add_argument("name", metavar="NAME")
