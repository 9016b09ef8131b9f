"""Each physics task, from nothing: its sample is generated on first use (tiny here), loads through
the shipped task YAML unchanged, and trains with a quality floor that catches broken training."""

from __future__ import annotations

import numpy as np
import pytest

from hepml.data import load_dataset, load_task
from hepml.data.task_config import with_generated_events
from hepml.train import train

# (task, examples to generate, model, framework, metric floor on the test split)
CASES = [
    ("particle_id", 3000, "bdt", "xgboost", {"log_loss_max": 1.0}),
    ("jet_flavour", 3000, "bdt", "xgboost", {"log_loss_max": 0.8}),
    ("ttbar_vs_qcd", 120, "mlp", "core", {"auc_min": 0.6}),
    ("top_tagging", 200, "bdt", "core", {"auc_min": 0.8}),
]


@pytest.mark.slow
@pytest.mark.parametrize("task, events, model, framework, floor", CASES, ids=[c[0] for c in CASES])
def test_task_generates_loads_and_trains(task, events, model, framework, floor):
    cfg = with_generated_events(load_task(task), events)
    ds = load_dataset(cfg)  # generates into this test's own $HEPML_DATA, then reads through the YAML
    assert len(ds) > 0 and ds.n_classes == len(cfg.class_names)
    assert all(c > 0 for c in ds.class_counts().values())
    over = {"model": {"n_estimators": 40, "max_depth": 3}} if model == "bdt" else {"train": {"epochs": 15, "learning_rate": 0.01, "batch_size": 32}}
    r = train(None, framework, model, dataset=ds, overrides=over)
    m = r.record["metrics"]
    if "log_loss_max" in floor:
        assert m["test_log_loss"] < floor["log_loss_max"] < np.log(ds.n_classes)
    if "auc_min" in floor:
        assert m["test_auc"] > floor["auc_min"]
    again = load_dataset(cfg)  # the cached sample is reused, identical
    np.testing.assert_array_equal(again.X, ds.X)
