"""The `anchorflow` command's app, its options and the guard every command runs in.

No logic lives here that the web app would also need; known errors become one red line and
exit code 1.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from anchorflow.config import PROJECT_FILE, load_project
from anchorflow.errors import AnchorflowError, ConfigError, Terminated
from anchorflow.project_types import parse_hour, parse_instant
from anchorflow.redact import RedactingFilter, redact


class PlainHelp(TyperGroup):
    """typer's help shows a placeholder of each parameter's Python type: `--all <bool>`,
    `--ack <list[int]>`. A flag takes no value, and a value given several times shows what
    one of them is: `--all`, `--ack ID`, `SOURCES... <str>`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_placeholders(super().get_params(ctx), ctx)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None and not isinstance(command, TyperGroup):
            _plain_placeholders(command.get_params(ctx), ctx)
        return command


def _plain_placeholders(params: list[Any], ctx: Any) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.metavar is None and hasattr(param, "display_type"):
            element = re.fullmatch(r"<list\[(.+)\]>", param.display_type(ctx))
            if element is not None:  # an argument's type ignores its metavar: its own label
                label = f"<{element.group(1)}>"
                setattr(param, "display_type_rich", lambda ctx, label=label: label)  # noqa: B010
    return params


app = typer.Typer(
    name="anchorflow",
    help="Declarative ELT for product analytics: land, type and model events on DuckDB.\n\n"
    "Every command reads anchorflow.yml from --project (default: the current directory).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=PlainHelp,
)
emulate_app = typer.Typer(
    help="Run local emulators of the SaaS APIs that sources talk to.", cls=PlainHelp
)
synth_app = typer.Typer(help="Generate deterministic synthetic source data.", cls=PlainHelp)
app.add_typer(emulate_app, name="emulate")
app.add_typer(synth_app, name="synth")

# Rich cuts every line at 80 columns when it does not write to a terminal (a CI log, a pipe, a
# file); there, a line is as long as it needs to be, unless COLUMNS says otherwise.
PIPE_WIDTH = 10_000


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr)
    if console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return console
    return Console(stderr=stderr, width=PIPE_WIDTH)


console = _console()
errors = _console(stderr=True)
T = TypeVar("T")

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help=f"The project: {PROJECT_FILE} or its directory."),
]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Pretend the current UTC time is this (YYYYMMDDTHH or ISO 8601): for replays and "
        "demos.",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each step's timings.")]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (for scripts and other tools).")
]


INTERRUPTED = "interrupted: the window in flight was rolled back; run the command again to continue"


def _version(value: bool) -> None:
    if value:
        console.print(f"anchorflow {metadata.version('anchorflow')}", highlight=False)
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    # The options of `anchorflow` itself; its help text is the Typer's, above.
    return


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    # `kill -USR1 <pid>` writes every thread's stack to stderr: what a process that does not
    # stop is doing (a test that waits for one in vain asks for it before it kills it).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        app()
    except KeyboardInterrupt as stop:  # outside a command (typer turns it into exit 130 inside)
        _interrupted(stop)
    except Exception:  # a bug: its traceback, without the secrets it may quote
        sys.stderr.write(redact(traceback.format_exc()))
        sys.exit(1)


# Set by SIGTERM: a loop that runs until it is told to stop (`anchorflow load`) waits on it, so
# it stops after the run in flight even when the engine swallowed the handler's exception.
STOPPING = threading.Event()


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops the command like Ctrl-C does; a second one during the cleanup waits."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    STOPPING.set()
    raise Terminated()


def _interrupted(stop: KeyboardInterrupt) -> NoReturn:
    errors.print(f"[yellow]{INTERRUPTED}[/yellow]", highlight=False, soft_wrap=True)
    sys.exit(143 if isinstance(stop, Terminated) else 130)


def guarded(action: Callable[[], T]) -> T:
    """Run `action`, turning known errors into one red line each and exit code 1, and an
    interrupt into one line and exit code 130 (143 for SIGTERM). Every line is redacted."""
    try:
        return action()
    except AnchorflowError as error:
        # An engine's message can span lines (a caret under the SQL); its first line says it.
        lines = error.problems if isinstance(error, ConfigError) else [str(error).split("\n")[0]]
        for line in lines:
            errors.print(
                f"[red]error:[/red] {escape(redact(line))}", highlight=False, soft_wrap=True
            )
        raise typer.Exit(1) from None
    except KeyboardInterrupt as stop:
        _interrupted(stop)


def _setup_logging(verbose: bool) -> None:
    handler: logging.Handler = RichHandler(console=errors, show_path=False, markup=False)
    if not errors.is_terminal:  # a CI log or a file: plain lines, not a table padded to its width
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-8s %(message)s"))
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _hour(option: str, value: str) -> datetime:
    try:
        return parse_hour(value)
    except ValueError as error:
        raise ConfigError([f"{option}: {error}"]) from None


def _now(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as error:
        raise ConfigError([f"--now: {error}"]) from None


def _with_pipeline(
    project: Path | None,
    action: Callable[[Any], T],
    now: str | None = None,
    read_only: bool = False,  # a command that only reads: beside other readers, never creates
) -> T:
    from anchorflow.run import Pipeline

    def run() -> T:
        # These commands never contact a source: its secrets may be missing (`run` needs them).
        loaded = load_project(project, defer_source_env=True)
        with Pipeline(loaded, now=_now(now), read_only=read_only) as pipeline:
            return action(pipeline)

    return guarded(run)


def _fail(message: str) -> None:
    raise ConfigError([message])


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            [f"query: --as-of expects an ISO timestamp such as 2024-03-02T12:00, got {value!r}"]
        ) from None


def day_option(option: str, value: str | None) -> date | None:
    """A `--from`/`--to` day (YYYY-MM-DD), or one line naming the option."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError([f"{option}: expected a day such as 2024-03-01, got {value!r}"]) from None
