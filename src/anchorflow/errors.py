"""One hierarchy of errors. The CLI turns every `AnchorflowError` into a one-line message.

Whether to retry is a property of the class (`TransientSourceError` vs `TerminalSourceError`), so
callers never parse messages to decide.
"""

from __future__ import annotations

import signal


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


def swallowed_stop(error: BaseException) -> KeyboardInterrupt | None:
    """The interrupt behind `error` when the engine turned one into its own error, else None.

    A signal that arrives while DuckDB runs a statement never reaches Python as the handler's
    exception: DuckDB stops the statement and raises `RuntimeError('Query interrupted')`
    (`InterruptException` after `interrupt()`), which a caller would take for a failed run and
    go on, deaf to the signal. It was SIGTERM when the CLI's handler ran (it ignores SIGTERM
    from then on), else Ctrl-C."""
    seen: BaseException | None = error
    while seen is not None:
        if type(seen).__name__ == "InterruptException" or (
            isinstance(seen, RuntimeError) and str(seen) == "Query interrupted"
        ):
            sigterm = signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            return Terminated() if sigterm else KeyboardInterrupt()
        seen = seen.__cause__ or seen.__context__
    return None
