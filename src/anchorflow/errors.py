"""One hierarchy of errors. The CLI turns every `AnchorflowError` into a one-line message.

Whether to retry is a property of the class (`TransientSourceError` vs `TerminalSourceError`), so
callers never parse messages to decide.
"""

from __future__ import annotations


class AnchorflowError(Exception):
    """A known failure with a message fit for the user: what, where, and what to do."""


class ConfigError(AnchorflowError):
    """The project file is invalid; nothing has been written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SourceError(AnchorflowError):
    """A source could not deliver data."""


class TransientSourceError(SourceError):
    """Worth retrying: rate limits, 5xx, timeouts, a corrupt download."""


class TerminalSourceError(SourceError):
    """Retrying will not help: bad credentials, a range the API refuses, a protocol violation."""


class WarehouseError(AnchorflowError):
    """The warehouse refused a statement or is in a state we cannot continue from."""


class WarehouseLocked(WarehouseError):
    """Another process held the warehouse for longer than `warehouse.lock_timeout`."""


class NoWarehouse(WarehouseError):
    """A command that only reads found no warehouse file (nothing has been loaded yet)."""


class ModelError(AnchorflowError):
    """The anchor model in the warehouse cannot take the declared change without a migration."""


class IntegrityError(AnchorflowError):
    """An integrity check of the anchor model failed after a load (the load was rolled back)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler: stopped like Ctrl-C (the
    window in flight rolls back, the run is recorded as interrupted), exit code 143."""
