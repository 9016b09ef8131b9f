"""`hepml cluster slurm`: the sbatch scripts say what they must, and run under stand-ins for srun/scontrol."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest
import yaml
from typer.testing import CliRunner

from hepml.distributed.cli import cluster_app
from hepml.distributed.dask_xgb import load_cluster_config
from hepml.distributed.slurm import slurm_script
from hepml.errors import ConfigError, HepmlError

TASK = "dimuon_charge"  # a task shipped in tasks/; writing a script reads only its YAML
BASH = shutil.which("bash")


def run_script(script, tmp_path, **env):
    """Run an sbatch script with fake ``scontrol``/``srun``/``python`` that log their arguments."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    fakes = {
        "scontrol": 'printf "gpu-node-07\\ngpu-node-08\\n"',
        "srun": f'echo "srun $* OMP=$OMP_NUM_THREADS" >> {log}',
        "python": f'echo "python $* CLUSTER=${{HEPML_DASK_CLUSTER:-}}" >> {log}',
    }
    for name, body in fakes.items():
        f = bin_ / name
        f.write_text(f"#!/bin/bash\n{body}\n")
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    path = tmp_path / "job.sh"
    path.write_text(script)
    full_env = {"PATH": f"{bin_}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "gpu-node-[07-08]", "SLURM_JOB_ID": "4242", **env}
    res = subprocess.run([BASH, str(path)], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    calls = log.read_text()
    log.unlink()
    return calls


def test_torch_script_runs_torchrun_on_every_node(tmp_path):
    text = slurm_script(TASK, framework="torch", model="mlp", nodes=2, gpus_per_node=4, cpus_per_node=32, mem="200G",
                        time="1-12:00:00", partition="gpu", account="hep-ml", run_dir=str(tmp_path / "run"),
                        sets=["train.epochs=3", "model.hidden=[32, 32]"], rdzv_port=29611)
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    for line in ("#SBATCH --job-name=hepml-dimuon_charge-torch-mlp", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=32", "#SBATCH --mem=200G", "#SBATCH --time=1-12:00:00",
                 "#SBATCH --partition=gpu", "#SBATCH --account=hep-ml", "#SBATCH --requeue"):
        assert line in lines, line
    # the srun line expands to one torchrun per node, rendezvous on the allocation's first node
    calls = run_script(text, tmp_path, SLURM_CPUS_PER_TASK="32").splitlines()
    assert len(calls) == 1
    call = calls[0]
    assert call.startswith("srun --nodes=2 --ntasks-per-node=1 python -m torch.distributed.run --nnodes=2 --nproc-per-node=4 ")
    assert "--rdzv-backend=c10d --rdzv-endpoint=gpu-node-07:29611 --rdzv-id=4242" in call
    assert f"-m hepml.cli train {TASK} --framework torch --model mlp --device cuda --distributed --out {tmp_path / 'run'}" in call
    assert "--set train.epochs=3 --set model.hidden=[32, 32]" in call  # one argument each (quoted in the script)
    assert "'model.hidden=[32, 32]'" in text
    assert "--resume" not in call and call.endswith("OMP=8")  # 32 cores / 4 processes
    # a requeued job finds the checkpoint and resumes
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.npz").write_bytes(b"")
    assert "--resume" in run_script(text, tmp_path, SLURM_CPUS_PER_TASK="32")


def test_torch_cpu_nodes_use_one_process_each(tmp_path):
    text = slurm_script(TASK, framework="pytorch", nodes=3, gpus_per_node=0)
    assert "--gpus-per-node" not in text and "#SBATCH --partition" not in text and "#SBATCH --account" not in text
    call = run_script(text, tmp_path)
    assert "--nnodes=3 --nproc-per-node=1 " in call and "--device cpu" in call
    assert f"--out runs/{TASK}/torch-mlp" in call and call.strip().endswith("OMP=1")


def test_xgboost_script_starts_a_dask_jobqueue_cluster(tmp_path):
    text = slurm_script(TASK, framework="xgboost", model="bdt", nodes=4, cpus_per_node=48, mem="180GB", time="02:00:00",
                        partition="cpu", account="hep-ml", sets=["model.n_estimators=500"])
    assert "#SBATCH --nodes=1" in text and "#SBATCH --ntasks=1" in text and "srun" not in text and "torch" not in text
    assert "#SBATCH --mem=180GB" in text  # the driver holds the training set before scattering it
    call = run_script(text, tmp_path)
    assert f"python -m hepml.cli train {TASK} --framework xgboost --model bdt --device cpu --distributed" in call
    assert "--set model.n_estimators=500" in call and "CLUSTER=dask-cluster-4242.yaml" in call
    cfg = load_cluster_config(tmp_path / "dask-cluster-4242.yaml")  # the file the driver hands to xgboost.dask
    assert cfg == {"cluster": "slurm", "jobs": 4, "cores": 48, "processes": 1, "memory": "180GB", "walltime": "02:00:00",
                   "queue": "cpu", "account": "hep-ml", "log_directory": "dask-logs"}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"framework": "keras"}, "no multi-node script for framework 'keras'"),
        ({"framework": "core"}, "no multi-node script for framework 'core'"),
        ({"framework": "jax"}, "unknown framework 'jax'"),
        ({"nodes": 0}, "--nodes must be >= 1; received 0"),
        ({"gpus_per_node": -1}, "--gpus-per-node must be >= 0; received -1"),
        ({"framework": "xgboost", "model": "bdt", "gpus_per_node": 2}, "--gpus-per-node 2 was asked for XGBoost on Dask"),
        ({"time": "4h"}, "--time '4h' is not a SLURM time"),
        ({"model": "bdt"}, "framework 'torch' cannot build model 'bdt'"),
        ({"framework": "xgboost", "model": "mlp"}, "framework 'xgboost' cannot build model 'mlp'"),
        ({"rdzv_port": 80}, "--port must be 1024..65535; received 80"),
        ({"sets": ["train.epoch=3"]}, "epoch"),
    ],
)
def test_bad_options_fail_before_writing(options, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        slurm_script(TASK, **options)


def test_cli_writes_an_executable_script(tmp_path):
    out = tmp_path / "jobs" / "train.sh"
    res = CliRunner().invoke(cluster_app, ["slurm", TASK, "-f", "torch", "-m", "mlp", "--nodes", "2", "--gpus-per-node", "2",
                                           "--time", "00:30:00", "-p", "gpu", "-A", "hep", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"sbatch {out}" in res.output
    assert os.access(out, os.X_OK) and "--nnodes=2 --nproc-per-node=2" in out.read_text()
    subprocess.run([BASH, "-n", str(out)], check=True)  # valid bash
    bad = CliRunner().invoke(cluster_app, ["slurm", "no_such_task", "--out", str(tmp_path / "x.sh")])
    assert bad.exit_code != 0 and isinstance(bad.exception, HepmlError)
    assert "no_such_task" in str(bad.exception) and not (tmp_path / "x.sh").exists()


def test_generated_yaml_names_only_known_keys():
    text = slurm_script(TASK, framework="xgboost", model="bdt")
    block = text.split("<<'EOF'\n", 1)[1].split("\nEOF", 1)[0]
    cfg = yaml.safe_load(block)
    assert cfg["jobs"] == 1 and cfg["cores"] == 32 and cfg["memory"] == "64GB" and "queue" not in cfg
