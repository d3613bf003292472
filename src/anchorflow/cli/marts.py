"""`anchorflow marts`: build the marts that are due (or all, whole), and run their tests."""

from __future__ import annotations

from typing import Annotated

import typer

from anchorflow.cli.base import PlainHelp, ProjectOption, _with_pipeline, app, console

marts_app = typer.Typer(
    help="Marts: build the ones that are due, run their tests.",
    cls=PlainHelp,
    no_args_is_help=True,
)
app.add_typer(marts_app, name="marts")


@marts_app.command("build")
def build(
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild every mart whole, due or not.")
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Build the marts that are due (what `run` does after loading), and test them."""
    from anchorflow.console import print_marts

    built = _with_pipeline(project, lambda p: p.build_marts(full))
    if not built:
        console.print("marts: nothing due")
    print_marts(console, built)
    if any(m.failed_errors for m in built):
        raise typer.Exit(1)


@marts_app.command("test")
def test(
    models: Annotated[
        list[str] | None, typer.Argument(help="The marts to test (default: all).")
    ] = None,
    project: ProjectOption = None,
) -> None:
    """Run the marts' tests on what they hold now: each test passes or fails, with how many
    rows fail and a query that lists them. Exit code 1 when a test of severity error fails."""
    from anchorflow.console import print_marts

    tested = _with_pipeline(project, lambda p: p.test_marts(models or ()))
    print_marts(console, tested, every_test=True)
    if any(m.failed_errors for m in tested):
        raise typer.Exit(1)
