"""XGBoost on Dask: a 2-worker LocalCluster gives the AUC of a 1-process fit, and a model the adapter can use."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")
xgboost = pytest.importorskip("xgboost")

from sklearn.metrics import roc_auc_score  # noqa: E402

from hepml.distributed.dask_xgb import dask_client, fit_full, load_cluster_config, slurm_cluster  # noqa: E402
from hepml.errors import ConfigError, FrameworkError  # noqa: E402
from hepml.frameworks.base import Batch, adapter_class  # noqa: E402
from hepml.models.spec import BDTSpec, TrainSpec  # noqa: E402


def toy(n, seed):
    """Six features, signal from x0, x1² and an x2·x3 interaction, per-example weights."""
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, 6)).astype(np.float32)
    score = X[:, 0] + 0.7 * X[:, 1] ** 2 + 0.6 * X[:, 2] * X[:, 3] + 0.8 * r.normal(size=n)
    y = (score > 0.9).astype(np.int64)
    w = r.uniform(0.5, 1.5, n).astype(np.float32)
    return Batch(X=X, set=None, mask=None, y=y, w=w)


def build(**spec):
    spec = BDTSpec(**{"n_estimators": 40, "max_depth": 4, "learning_rate": 0.2, "max_bin": 64, **spec})
    adapter = adapter_class("xgboost").build(spec, 6, 2, train=TrainSpec(seed=3))
    adapter.nthread = 1
    return adapter


def auc(adapter, batch):
    return roc_auc_score(batch.y, adapter.predict_proba(batch)[:, 1], sample_weight=batch.w)


@pytest.fixture(scope="module")
def client():
    with dask_client("local:2", threads_per_worker=1) as c:
        yield c


def test_two_workers_match_single_process_auc(client, tmp_path):
    """Continuous features: the workers' merged quantile sketch moves the bin edges a little, the AUC stays."""
    spec = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1}
    train, val, test = toy(30000, 0), toy(2000, 1), toy(20000, 2)
    single = build(**spec)
    single.fit_full(train, val)
    dist = build(**spec)
    history = fit_full(dist, train, val, client=client)
    assert len(client.scheduler_info()["workers"]) == 2
    assert len(history["loss"]) == len(history["val_loss"]) == 60 and history["loss"][-1] < 0.7 * history["loss"][0]
    a_single, a_dist = auc(single, test), auc(dist, test)
    print(f"AUC 1 process {a_single:.5f}, 2 Dask workers {a_dist:.5f}, |Δ| {abs(a_single - a_dist):.5f}")
    assert a_dist > 0.85
    assert abs(a_single - a_dist) <= 0.002
    # the Dask model is an ordinary booster in the adapter: save / load / predict as any xgboost run
    dist.save(tmp_path / "m")
    again = build(**spec)
    again.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_proba(test), dist.predict_proba(test))
    assert dist.best_iteration_ == 59


def test_exact_bin_edges_give_the_single_process_model(client):
    """Fewer distinct values than max_bin: same edges on both sides, so the same trees (to float rounding)."""
    batches = [toy(n, s) for n, s in ((8000, 6), (1000, 7), (4000, 8))]
    for b in batches:
        b.X[:] = np.round(b.X * 4) / 4  # ≤ 64 distinct values a feature
    train, val, test = batches
    single, dist = build(), build()
    h1 = single.fit_full(train, val)
    h2 = fit_full(dist, train, val, client=client)
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-6)
    np.testing.assert_allclose(dist.predict_proba(test), single.predict_proba(test), atol=1e-5)
    assert abs(auc(dist, test) - auc(single, test)) < 1e-6
    assert dist.booster_.get_dump()[0].split("leaf")[0] == single.booster_.get_dump()[0].split("leaf")[0]  # same first splits


def test_early_stopping_keeps_best_round(client):
    train, val = toy(3000, 4), toy(1000, 5)
    dist = build(n_estimators=300, learning_rate=0.5, max_depth=6, early_stopping_rounds=5)
    history = fit_full(dist, train, val, client=client)
    best = dist.best_iteration_
    assert best == int(np.argmin(history["val_loss"])) and len(history["val_loss"]) == best + 6 < 300
    assert dist.booster_.num_boosted_rounds() == best + 1
    with pytest.raises(ConfigError, match="needs a validation set"):
        fit_full(build(early_stopping_rounds=5), train, None, client=client)


def test_only_xgboost_hist(client):
    from hepml.models.spec import MLPSpec

    core = adapter_class("core").build(MLPSpec(hidden=[4]), 6, 2)
    with pytest.raises(FrameworkError, match="for the xgboost framework; received 'core'"):
        fit_full(core, toy(100, 0), client=client)
    with pytest.raises(FrameworkError, match="tree_method 'exact' .* cannot distribute; use tree_method: hist"):
        fit_full(build(tree_method="exact"), toy(100, 0), client=client)


def test_cluster_configuration_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="'local:0' is not understood"):
        with dask_client("local:0"):
            pass
    with pytest.raises(ConfigError, match="'slurmm' is not understood"):
        with dask_client("slurmm"):
            pass
    monkeypatch.setenv("HEPML_DASK_CLUSTER", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="scheduler file .*missing.json does not exist"):
        with dask_client():
            pass
    bad = tmp_path / "c.yaml"
    bad.write_text("cluster: slurm\njobs: 2\nwalltme: '01:00:00'\n")
    with pytest.raises(ConfigError, match="unknown key 'walltme'.*did you mean 'walltime'"):
        load_cluster_config(bad)
    bad.write_text("cluster: slurm\njobs: 0\n")
    with pytest.raises(ConfigError, match="received jobs=0"):
        load_cluster_config(bad)
    bad.write_text("cluster: pbs\n")
    with pytest.raises(ConfigError, match="received cluster='pbs'"):
        load_cluster_config(bad)


def test_slurm_cluster_file_reaches_dask_jobqueue(tmp_path):
    """The keys of a cluster file become dask-jobqueue's sbatch lines (no SLURM needed to render them)."""
    pytest.importorskip("dask_jobqueue")
    f = tmp_path / "c.yaml"
    f.write_text("cluster: slurm\njobs: 3\ncores: 8\nprocesses: 2\nmemory: 32GB\nwalltime: '02:30:00'\nqueue: short\naccount: hep123\n")
    with slurm_cluster(load_cluster_config(f), scheduler_options={"dashboard_address": ":0"}) as sc:
        script = sc.job_script()
    for line in ("#SBATCH -p short", "#SBATCH -A hep123", "#SBATCH -t 02:30:00", "#SBATCH --cpus-per-task=8", "--nworkers 2"):
        assert line in script, line


def test_trainer_fits_on_dask_with_distributed(client, tmp_path, monkeypatch):
    """``hepml train TASK -f xgboost --distributed``: the trainer fits on $HEPML_DASK_CLUSTER's workers."""
    import json

    import yaml

    from hepml.train import train

    from ..conftest import write_root

    b = toy(6000, 9)
    write_root(tmp_path / "toy.root", {**{f"x{i}": b.X[:, i] for i in range(6)}, "cls": b.y.astype(np.int32), "wt": b.w,
                                       "event": np.arange(len(b.y), dtype=np.int64)})
    task = {"name": "toy", "files": ["toy.root"], "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}},
            "features": [f"x{i}" for i in range(6)], "weight": "wt"}
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    over = {"model": {"n_estimators": 30, "max_depth": 3, "max_bin": 64}}
    monkeypatch.setenv("HEPML_DASK_CLUSTER", client.scheduler.address)  # the running 2-worker cluster, by address
    dist = train(tmp_path / "toy.yaml", "xgboost", "bdt", overrides=over, out=tmp_path / "dask", distributed=True)
    single = train(tmp_path / "toy.yaml", "xgboost", "bdt", overrides=over)
    rec = json.loads((tmp_path / "dask/run.json").read_text())
    assert rec["distributed"] == {"engine": "xgboost.dask"} and (tmp_path / "dask/model/model.ubj").is_file()
    assert len(dist.history) == 30 and dist.history[-1]["loss"] < dist.history[0]["loss"]
    assert abs(rec["metrics"]["test_auc"] - single.record["metrics"]["test_auc"]) < 0.01
