"""``hepml cluster ...``: job scripts for clusters (a typer sub-app; ``hepml/cli.py`` mounts it as ``cluster``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

cluster_app = typer.Typer(help="Write job scripts that run hepml training on a cluster (SLURM).", no_args_is_help=True)


@cluster_app.callback()
def cluster() -> None:
    """Write job scripts that run hepml training on a cluster (SLURM); see docs/cluster.md."""


@cluster_app.command("slurm")
def slurm(
    task: str = typer.Argument(..., help="A task name under tasks/ or a path to a task YAML."),
    framework: str = typer.Option("torch", "--framework", "-f", help="torch (DDP with torchrun) or xgboost (Dask)."),
    model: str = typer.Option("mlp", "--model", "-m", help="A model under configs/models or a YAML path."),
    nodes: int = typer.Option(1, "--nodes", "-N", help="Nodes (torch) or Dask worker jobs, one node each (xgboost)."),
    gpus_per_node: Optional[int] = typer.Option(None, "--gpus-per-node", help="GPUs a node, one process each (torch default 1; 0: CPU)."),
    cpus_per_node: Optional[int] = typer.Option(None, "--cpus-per-node", help="Cores a node (xgboost default 32)."),
    mem: Optional[str] = typer.Option(None, "--mem", help="Memory a node, e.g. 64GB."),
    time: str = typer.Option("04:00:00", "--time", "-t", help="Wall-time limit, HH:MM:SS or D-HH:MM:SS."),
    partition: Optional[str] = typer.Option(None, "--partition", "-p", help="SLURM partition."),
    account: Optional[str] = typer.Option(None, "--account", "-A", help="SLURM account."),
    run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Run folder on a shared file system (default runs/TASK/FRAMEWORK-MODEL)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a model-file key, e.g. --set train.epochs=3."),
    max_entries: Optional[int] = typer.Option(None, "--max-entries", help="Read at most this many entries per file."),
    port: int = typer.Option(29500, "--port", help="torchrun rendezvous port on the first node."),
    out: Path = typer.Option(Path("hepml-job.sh"), "--out", "-o", help="The sbatch script to write."),
):
    """Write a ready sbatch script: torchrun DDP across nodes (torch) or a dask-jobqueue cluster (xgboost)."""
    from .slurm import write_slurm_script

    path = write_slurm_script(
        out, task, framework=framework, model=model, nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_node=cpus_per_node,
        mem=mem, time=time, partition=partition, account=account, run_dir=run_dir, sets=set_ or [], max_entries=max_entries,
        rdzv_port=port,
    )
    typer.echo(f"wrote {path}; submit it with: sbatch {path}")
