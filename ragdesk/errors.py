"""The two kinds of failure: the environment's fault (a clear message, exit 1) and bugs.

Anything a user can cause or fix -- a wrong passphrase, a vault in use, a full disk, a file that
cannot be read -- is raised as a RagdeskError subclass with a message meant for that user. Any
other exception is a bug: the command line logs its traceback and says so in one line.
"""

from __future__ import annotations


class RagdeskError(Exception):
    """A failure the user can understand and act on; str(error) is the message shown."""


class WrongPassphrase(RagdeskError):
    def __init__(self) -> None:
        super().__init__("wrong passphrase or not a RagDesk vault")


class VaultMissing(RagdeskError):
    pass


class VaultExists(RagdeskError):
    pass


class VaultInUse(RagdeskError):
    pass


class VaultTooNew(RagdeskError):
    pass


class VaultLocked(RagdeskError):
    pass


class StorageError(RagdeskError):
    """The database failed for a reason outside RagDesk: disk full, I/O error, read-only disk."""


class UsageError(RagdeskError):
    """The user asked for something that cannot be done as asked (exit code 2 on the CLI)."""
