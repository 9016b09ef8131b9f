"""sbatch scripts for a SLURM cluster, written from the run options (``hepml cluster slurm TASK ...``).

Two kinds of job, each on the engine the cluster already runs:

- **torch** — DistributedDataParallel across nodes: ``srun`` starts one ``torchrun`` per node
  (``--nnodes``, ``--nproc-per-node`` = GPUs per node), which rendezvous (c10d) on the first node of the
  allocation and start ``hepml train ... --distributed``; NCCL on GPUs, gloo on CPU nodes. A requeued
  or resubmitted job resumes from the run folder's checkpoint (``--resume`` is added when one exists).
- **xgboost** — a small driver job that starts a ``dask_jobqueue.SLURMCluster`` (one worker job per
  node, submitted by the driver) and trains with ``xgboost.dask``; the cluster file is written by
  the script itself (here-document) and handed over in ``$HEPML_DASK_CLUSTER``.

Everything the job needs is checked here, before the script is written: the task and model
files, the framework, numbers of nodes and GPUs, the time limit format.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Optional

from ..errors import ConfigError

__all__ = ["RDZV_PORT", "slurm_script", "write_slurm_script"]

#: the TCP port of the torchrun rendezvous on the first node
RDZV_PORT = 29500
_TIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")


def _check(framework: str, nodes: int, gpus_per_node: Optional[int], time: str, cpus: Optional[int]) -> tuple[str, int]:
    from ..frameworks.base import ALIASES, FRAMEWORKS

    name = ALIASES.get(framework.lower(), framework.lower())
    if name not in FRAMEWORKS:
        raise ConfigError(f"unknown framework {framework!r}", "write a SLURM script for torch (DDP) or xgboost (Dask)")
    if name in ("core", "keras"):
        why = "the NumPy core runs in one process" if name == "core" else "Keras data parallelism (MirroredStrategy) uses the GPUs of one node"
        raise ConfigError(f"no multi-node script for framework {name!r}: {why}",
                          "use --framework torch or xgboost, or submit `hepml train` as a one-node job (see docs/cluster.md)")
    if nodes < 1:
        raise ConfigError(f"--nodes must be >= 1; received {nodes}", "ask for at least one node")
    gpus = (1 if name == "torch" else 0) if gpus_per_node is None else gpus_per_node
    if gpus < 0:
        raise ConfigError(f"--gpus-per-node must be >= 0; received {gpus}", "use 0 for CPU nodes")
    if name == "xgboost" and gpus:
        raise ConfigError(f"--gpus-per-node {gpus} was asked for XGBoost on Dask, whose SLURM workers are CPU jobs here",
                          "use --gpus-per-node 0, or train on one GPU with `hepml train -f xgboost --device cuda`")
    if not _TIME.match(time):
        raise ConfigError(f"--time {time!r} is not a SLURM time", "write minutes, HH:MM:SS or D-HH:MM:SS, e.g. 04:00:00")
    if cpus is not None and cpus < 1:
        raise ConfigError(f"--cpus-per-node must be >= 1; received {cpus}", "give the cores of one node")
    return name, gpus


def _hepml_train(task: str, framework: str, model: str, sets: list, max_entries: Optional[int], device: str, out: str) -> str:
    words = ["-m", "hepml.cli", "train", task, "--framework", framework, "--model", model, "--device", device, "--distributed", "--out", out]
    for s in sets:
        words += ["--set", s]
    if max_entries is not None:
        words += ["--max-entries", str(max_entries)]
    return " ".join(shlex.quote(w) for w in words)


def slurm_script(
    task: str,
    *,
    framework: str = "torch",
    model: str = "mlp",
    nodes: int = 1,
    gpus_per_node: Optional[int] = None,
    cpus_per_node: Optional[int] = None,
    mem: Optional[str] = None,
    time: str = "04:00:00",
    partition: Optional[str] = None,
    account: Optional[str] = None,
    run_dir: Optional[str] = None,
    sets: Optional[list] = None,
    max_entries: Optional[int] = None,
    python: str = "python",
    rdzv_port: int = RDZV_PORT,
) -> str:
    """The text of an sbatch script that trains ``model`` on ``task`` with ``framework`` on ``nodes`` nodes.

    ``gpus_per_node`` defaults to 1 for torch (0: CPU nodes, gloo) and must be 0 for xgboost;
    ``cpus_per_node`` is the cores per node (torch: OpenMP threads per process = cores / processes;
    xgboost: threads of each Dask worker); ``run_dir`` the run folder on a shared file system
    (default ``runs/TASK/FRAMEWORK-MODEL``); ``sets`` are ``--set KEY=VALUE`` overrides; ``rdzv_port``
    the torchrun rendezvous port on the first node.
    """
    from ..data.task_config import load_task, resolve_task_path
    from ..models import load_model_file

    sets = list(sets or [])
    name, gpus = _check(framework, nodes, gpus_per_node, time, cpus_per_node)
    if not 1024 <= rdzv_port <= 65535:
        raise ConfigError(f"--port must be 1024..65535; received {rdzv_port}", f"use a free port, e.g. {RDZV_PORT}")
    cfg = load_task(task)  # a bad task or model fails now, not hours later in the queue
    path = resolve_task_path(task)
    task_arg = str(path.resolve()) if Path(task).suffix in (".yaml", ".yml") else task
    from ..cli import _parse_sets

    mf = load_model_file(model, _parse_sets(sets))
    # the adapters' kinds, named here so that writing a script imports no framework
    kinds = {"torch": ("mlp", "deepsets", "transformer"), "xgboost": ("bdt",)}[name]
    if mf.model.kind not in kinds:
        raise ConfigError(f"framework {name!r} cannot build model {mf.model.kind!r}", f"{name} builds: {', '.join(kinds)}")
    model_stem = Path(model).stem
    run_dir = run_dir or f"runs/{cfg.name}/{name}-{model_stem}"
    job = f"hepml-{cfg.name}-{name}-{model_stem}"
    head = ["#!/bin/bash", f"#SBATCH --job-name={job}"]
    if partition:
        head.append(f"#SBATCH --partition={partition}")
    if account:
        head.append(f"#SBATCH --account={account}")
    head.append(f"#SBATCH --time={time}")
    lines: list[str]
    if name == "torch":
        procs = max(gpus, 1)
        head += [f"#SBATCH --nodes={nodes}", "#SBATCH --ntasks-per-node=1"]
        if gpus:
            head.append(f"#SBATCH --gpus-per-node={gpus}")
        if cpus_per_node:
            head.append(f"#SBATCH --cpus-per-task={cpus_per_node}")
        if mem:
            head.append(f"#SBATCH --mem={mem}")
        head += ["#SBATCH --requeue", "#SBATCH --output=%x-%j.out"]
        device = "cuda" if gpus else "cpu"
        train = _hepml_train(task_arg, name, model, sets, max_entries, device, run_dir)
        threads = f"$(( ${{SLURM_CPUS_PER_TASK:-{procs}}} / {procs} ))"
        lines = [
            f"# DistributedDataParallel on {nodes} node(s) x {procs} process(es) ({'NCCL, one per GPU' if gpus else 'gloo, CPU'}).",
            "# Every rank takes its share of each global batch; rank 0 alone writes the checkpoint and the outputs.",
            "set -euo pipefail",
            f"RUN_DIR={shlex.quote(run_dir)}",
            'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed -n 1p)  # sed reads all: no SIGPIPE under pipefail',
            f"export OMP_NUM_THREADS={threads}",
            'resume=""',
            'if [ -f "$RUN_DIR/checkpoint.npz" ]; then resume="--resume"; fi  # a requeued job continues the run',
            f"srun --nodes={nodes} --ntasks-per-node=1 \\",
            f"  {python} -m torch.distributed.run --nnodes={nodes} --nproc-per-node={procs} \\",
            f'    --rdzv-backend=c10d --rdzv-endpoint="$head_node:{rdzv_port}" --rdzv-id="$SLURM_JOB_ID" \\',
            f"    {train} $resume",
        ]
    else:
        cores = cpus_per_node or 32
        memory = mem or "64GB"
        # the driver reads the task and hands each worker its rows: it needs the memory of the training set
        head += ["#SBATCH --nodes=1", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=2", f"#SBATCH --mem={memory}", "#SBATCH --output=%x-%j.out"]
        train = _hepml_train(task_arg, name, model, sets, max_entries, "cpu", run_dir)
        cluster = [
            "cluster: slurm",
            f"jobs: {nodes}",
            f"cores: {cores}",
            "processes: 1",
            f"memory: {memory}",
            f"walltime: '{time}'",
        ]
        if partition:
            cluster.append(f"queue: {partition}")
        if account:
            cluster.append(f"account: {account}")
        cluster.append("log_directory: dask-logs")
        lines = [
            f"# XGBoost on a Dask cluster of {nodes} SLURM worker job(s) x {cores} cores (dask-jobqueue), started by this driver job.",
            "set -euo pipefail",
            'CLUSTER_FILE="dask-cluster-$SLURM_JOB_ID.yaml"',
            "cat > \"$CLUSTER_FILE\" <<'EOF'",
            *cluster,
            "EOF",
            'export HEPML_DASK_CLUSTER="$CLUSTER_FILE"',
            f"{python} {train}",
        ]
    return "\n".join(head) + "\n\n" + "\n".join(lines) + "\n"


def write_slurm_script(path, task: str, **options) -> Path:
    """Write :func:`slurm_script` to ``path`` (atomically, executable); returns the path."""
    from ..atomic import atomic_path

    text = slurm_script(task, **options)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        tmp.chmod(0o755)
    return path
