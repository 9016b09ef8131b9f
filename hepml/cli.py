"""The ``hepml`` command line.

Every heavy import (numpy, uproot, a framework) happens inside the subcommand that needs it,
so ``hepml --help`` answers quickly. User mistakes surface as one line
``error: <what>; <fix>`` and a non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import HepmlError

app = typer.Typer(
    name="hepml",
    help="Train the same model in a NumPy core, PyTorch, Keras and XGBoost on ROOT data, and compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Make, list and download datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _mount_subapps() -> None:
    """Sub-apps that live beside their code (kept light: they import frameworks lazily)."""
    from .course.cli import course_app
    from .distributed.cli import cluster_app

    app.add_typer(course_app, name="course")
    app.add_typer(cluster_app, name="cluster")


_mount_subapps()


@app.command()
def inspect(
    file: Path = typer.Argument(..., help="A ROOT file."),
    tree: Optional[str] = typer.Option(None, "--tree", "-t", help="Only this tree."),
    filter: Optional[str] = typer.Option(None, "--filter", "-f", help="Only branches matching this glob."),
):
    """List every tree with its entry count and every branch with its type (flat / jagged / nested)."""
    from .data.root_io import inspect_file
    from .display import print_inspection

    print_inspection(inspect_file(file, tree=tree, branch_filter=filter))


@app.command()
def dataset(
    task: str = typer.Argument(..., help="A task name under tasks/ or a path to a task YAML."),
    max_entries: Optional[int] = typer.Option(None, "--max-entries", help="Read at most this many entries per file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also save the arrays to this .npz (atomically)."),
):
    """Load a task into a Dataset and print its shapes, classes and splits."""
    from .data import load_dataset
    from .display import print_dataset

    ds = load_dataset(task, max_entries=max_entries)
    print_dataset(ds)
    if out is not None:
        ds.save(out)
        typer.echo(f"saved {out}")


def _parse_sets(items) -> dict:
    """``--set train.epochs=3 --set model.hidden=[32,32]`` → nested overrides (values parsed as YAML)."""
    import yaml

    from .errors import ConfigError

    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE", "write e.g. --set train.epochs=3")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


@app.command()
def train(
    task: str = typer.Argument(..., help="A task name under tasks/ or a path to a task YAML."),
    framework: str = typer.Option("core", "--framework", "-f", help="core, torch, keras or xgboost."),
    model: str = typer.Option("mlp", "--model", "-m", help="A model under configs/models (mlp, deepsets, transformer, bdt) or a YAML path."),
    device: str = typer.Option("auto", "--device", "-d", help="auto, cpu, cuda, cuda:N or mps."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 or fp16 (torch and keras)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/TASK/FRAMEWORK-MODEL)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a model-file key, e.g. --set train.epochs=3."),
    max_entries: Optional[int] = typer.Option(None, "--max-entries", help="Read at most this many entries per file."),
    streaming: bool = typer.Option(False, "--streaming", help="Read the files chunk by chunk (larger than memory): event-hash split, shuffle buffer."),
    chunk_size: Optional[str] = typer.Option(None, "--chunk-size", help="Entries per read (e.g. 100000) or a size such as '50 MB'; default the task's step_size."),
    distributed: bool = typer.Option(False, "--distributed", help="torch under torchrun (DDP), xgboost on Dask ($HEPML_DASK_CLUSTER); see docs/cluster.md."),
    data: Optional[str] = typer.Option(None, "--data", help="Read this downloaded dataset instead of the task's files, e.g. top_tagging."),
):
    """Train one framework x model on a task; writes the model, predictions, history.csv and run.json."""
    from .data.task_config import load_task, with_download
    from .train import print_summary
    from .train import train as run_training

    cfg = load_task(task)
    if data is not None:
        cfg = with_download(cfg, data)
    if out is None:
        out = Path("runs") / cfg.name / f"{framework}-{Path(model).stem}"
    result = run_training(
        cfg, framework, model, overrides=_parse_sets(set_), device=device, precision=precision, out=out, resume=resume,
        progress=True, max_entries=max_entries, streaming=streaming, distributed=distributed,
        chunk_size=int(chunk_size) if chunk_size is not None and chunk_size.strip().isdigit() else chunk_size,
    )
    print_summary(result)


def _csv(text: Optional[str]):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
def compare(
    task: str = typer.Argument(..., help="A task name or YAML path, or a run preset name from configs/runs/."),
    frameworks: Optional[str] = typer.Option(None, "--frameworks", help="Comma-separated, default core,torch,keras,xgboost."),
    models: Optional[str] = typer.Option(None, "--models", help="Comma-separated model names, default mlp,bdt."),
    kfold: Optional[int] = typer.Option(None, "--kfold", help="Also run K-fold cross-validation (folds by event number)."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto, cpu, cuda, cuda:N."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default runs/compare-TASK)."),
    fc: Optional[float] = typer.Option(None, "--fc", help="f_c of the b-tagging discriminant (default 0.1, as GN2)."),
    reference: Optional[str] = typer.Option(None, "--reference", help="Method label for ratio panels, e.g. 'torch mlp'."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override for every model, e.g. --set train.epochs=3."),
    max_entries: Optional[int] = typer.Option(None, "--max-entries", help="Read at most this many entries per file."),
    events: Optional[int] = typer.Option(None, "--events", help="Size of the generated samples (overrides the preset's)."),
    data: Optional[str] = typer.Option(None, "--data", help="Read this downloaded dataset instead of the task's files, e.g. top_tagging."),
):
    """Train every framework x model on a task and write one comparison report (HTML, PNG, JSON, ROOT)."""
    _compare(task, frameworks=_csv(frameworks), models=_csv(models), kfold=kfold, device=device, out=out, fc=fc,
             reference=reference, sets=set_, max_entries=max_entries, events=events, data=data)


def _compare(task, *, frameworks=None, models=None, kfold=None, device=None, out=None, fc=None, reference=None, sets=None,
             max_entries=None, events=None, data=None):
    """Merge a run preset (when ``task`` names one) with the command-line options, then compare."""
    from .compare import DEFAULT_FC, load_preset, preset_exists, print_summary_table
    from .compare import compare as run_compare

    is_preset = preset_exists(task) or (str(task).endswith((".yaml", ".yml")) and Path(task).parent.name == "runs")
    preset = load_preset(task) if is_preset else {}
    opts = {
        "frameworks": frameworks or preset.get("frameworks") or ["core", "torch", "keras", "xgboost"],
        "models": models or preset.get("models") or ["mlp", "bdt"],
        "kfold": kfold if kfold is not None else preset.get("kfold"),
        "device": device or preset.get("device", "auto"),
        "fc": fc if fc is not None else preset.get("fc", DEFAULT_FC),
        "reference": reference or preset.get("reference"),
        "max_entries": max_entries if max_entries is not None else preset.get("max_entries"),
        "events": events if events is not None else preset.get("events"),
        "data": data,
    }
    overrides = dict(preset.get("overrides") or {})
    extra = _parse_sets(sets)
    if extra:
        from .models.spec import _merge

        overrides = {m: _merge(overrides.get(m, {}), extra) for m in opts["models"]}
    summary = run_compare(preset.get("task", task), out=out, overrides=overrides, progress=True, **opts)
    print_summary_table(summary)
    return summary


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Where the demo writes its report."),
):
    """The main job: compare all four frameworks on the default task (configs/runs/demo.yaml).

    The sample is generated on first use and cached in $HEPML_DATA; the report lands in OUT/report.html.
    """
    _compare("demo", out=out)


@app.command()
def tasks():
    """List the task files hepml can find ($HEPML_TASKS, the repo's tasks/, ./tasks)."""
    from .data.task_config import available_tasks

    for name, path in available_tasks().items():
        typer.echo(f"{name:20s} {path}")


@data_app.command("generate")
def data_generate(
    name: str = typer.Argument(..., help="ttbar_vs_qcd, jet_flavour, top_tagging or particle_id."),
    events: int = typer.Option(10_000, "--events", "-n", min=1, help="Number of events (tracks for particle_id)."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed: same seed and N give identical files."),
    out: Path = typer.Option(..., "--out", "-o", help="Output ROOT file (written atomically)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Parallel worker processes."),
):
    """Generate a Monte Carlo sample for a physics task and write it as ROOT."""
    from data_download.generators import generate

    generate(name, events=events, seed=seed, out=out, workers=workers, progress=True)


@data_app.command("list")
def data_list():
    """Show the public datasets hepml knows: size, licence, and whether downloaded and verified."""
    from data_download.downloads import list_datasets
    from .display import print_registry

    print_registry(list_datasets())


@data_app.command("download")
def data_download_cmd(
    name: str = typer.Argument(..., help="A dataset name from `hepml data list`."),
    dest: Optional[Path] = typer.Option(None, "--dest", help="Folder to download into (default: $HEPML_DATA)."),
    timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="Seconds without data before a connection is retried."),
):
    """Download a public dataset: resumable, checksum-verified, renamed into place only when it matches."""
    from data_download.downloads import download

    path = download(name, dest=dest, progress=True, timeout=timeout)
    typer.echo(str(path))


def main(argv: Optional[list] = None) -> int:
    """Console entry point: run the app, turning HepmlError into one line on stderr.

    Returns the exit status (usage errors: 2, user errors: 2, success: 0).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        argv.remove("--debug")
    try:
        app(args=argv, prog_name="hepml")  # standalone: usage errors print and raise SystemExit
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except HepmlError as exc:
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
