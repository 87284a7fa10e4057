"""`ragdesk init`, `status` and `passwd`: creating a store, seeing what it holds, changing its key."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ragdesk.cli.common import (
    EXIT_OK,
    Subcommands,
    add_command,
    add_weak_passphrase_option,
    database_url,
    home_of,
    new_passphrase,
    open_command_store,
    open_store_at,
)
from ragdesk.core.store.open import store_exists
from ragdesk.core.units import format_bytes
from ragdesk.errors import RagdeskError


def cmd_init(args: argparse.Namespace) -> int:
    url = database_url(args)
    if url:
        # Asked over one connection before any passphrase (a missing psycopg is said here too).
        if store_exists(url):  # opened as it is: its schema brought up to date, nothing else
            with open_command_store(args):
                pass
            print("The PostgreSQL database already holds a RagDesk store; its schema is up to date.")
            return EXIT_OK
        # A new store: its passphrase is chosen here, so it is typed twice and checked like a
        # vault's (it encrypts the original files kept in the database).
        with open_store_at(url, new_passphrase(args, "passphrase_file", "RAGDESK_PASSPHRASE"), create=True):
            pass
        print("Created the RagDesk schema in the PostgreSQL database.")
        print("Keep the passphrase safe: it encrypts the original files stored there.")
        return EXIT_OK
    home = home_of(args)
    if store_exists(home):
        raise RagdeskError(f"a vault already exists in {home}")
    secret = new_passphrase(args, "passphrase_file", "RAGDESK_PASSPHRASE")
    with open_store_at(home, secret, create=True):
        pass
    print(f"Created an encrypted vault in {home}")
    print("Keep the passphrase safe: without it the data cannot be recovered by anyone.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from ragdesk.core.indexing.pipeline import outdated_documents

    with open_command_store(args) as store:
        st = store.status()
        outdated = len(outdated_documents(store))  # chunked by an older release (issue 16)
    if args.json:
        data = asdict(st)
        data["home"] = str(home_of(args))
        data["outdated_documents"] = outdated
        print(json.dumps(data, indent=2))
        return EXIT_OK
    space = st.vector_space
    print(f"Vault:          {'PostgreSQL (--database)' if database_url(args) else home_of(args)}")
    print(f"Schema version: {st.schema_version}")
    print(f"Collections:    {st.collections}")
    print(f"Documents:      {st.documents} indexed, {st.failed_documents} failed or unsupported")
    print(f"Chunks:         {st.chunks}")
    print(f"Conversations:  {st.conversations} ({st.messages} messages)")
    print(f"Originals:      {format_bytes(st.originals_bytes)}")
    print(f"Database:       {format_bytes(st.database_bytes)}")
    print(f"Vectors:        {f'{space.embedder}, {space.dimension} dimensions' if space else 'none yet'}")
    if outdated:
        print(f"{outdated} document{'s' if outdated != 1 else ''} indexed by an older version; run"
              " `ragdesk index` (or open the app) to update them")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    with open_command_store(args) as store:
        new = new_passphrase(args, "new_passphrase_file", "RAGDESK_NEW_PASSPHRASE")
        store.change_passphrase(new)
    print("Passphrase changed.")
    return EXIT_OK


def register(commands: Subcommands) -> None:
    p = add_command(commands, "init", cmd_init, "create a new encrypted vault")
    add_weak_passphrase_option(p)
    p = add_command(commands, "status", cmd_status, "show what the vault holds")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_command(commands, "passwd", cmd_passwd, "change the vault's passphrase")
    p.add_argument("--new-passphrase-file", metavar="FILE", help="read the new passphrase from FILE")
    add_weak_passphrase_option(p)
