"""``hepml course list`` and ``hepml course run NAME|all [--out DIR]``.

A typer sub-app; ``hepml/cli.py`` mounts it with ``app.add_typer(course_app, name="course")``.
Exercises (and their numpy/torch/keras imports) load only inside ``run``. A failing lecture
check (:class:`~hepml.course._util.CourseCheckError`) or a user mistake (``HepmlError``, e.g.
an unknown name) propagates to the main app, which prints it as one line.
"""

from __future__ import annotations

from pathlib import Path

import typer

course_app = typer.Typer(help="The lecture's exercises, reproduced: list them or run them.", no_args_is_help=True)


@course_app.command("list")
def list_command():
    """List the exercises in lecture order."""
    from . import list_exercises

    for i, (name, title) in enumerate(list_exercises(), start=1):
        typer.echo(f"{i}. {name:<20} {title}")


@course_app.command("run")
def run_command(
    name: str = typer.Argument(..., help="An exercise name from `hepml course list`, or 'all'."),
    out: Path = typer.Option(Path("course_output"), "--out", "-o", help="Folder for the plots and results.json."),
):
    """Run an exercise (or all of them): check the lecture's numbers, write PNGs and results.json."""
    from . import EXERCISES, _check_name, run

    names = list(EXERCISES) if name == "all" else [_check_name(name)]
    for n in names:
        results = run(n, out)
        typer.echo(f"== {n} ({results['seconds']:.1f} s): {out / n}")
        if "table" in results:
            typer.echo(results["table"])
        for plot in results["plots"]:
            typer.echo(f"   plot: {plot}")
    typer.echo(f"{len(names)} exercise(s) reproduced; results in {out}")
