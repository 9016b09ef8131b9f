"""Keras MirroredStrategy: 1 and 2 replicas (logical CPU devices) give the 1-device weights; the trainer's --distributed.

TensorFlow fixes its devices when it starts, so the checks run in one subprocess that first splits the
CPU into two logical devices and prints what it measured as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow")

from ..conftest import write_root  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from hepml.distributed.keras_dp import build_mirrored
    from hepml.errors import HepmlError
    from hepml.frameworks.base import Batch, adapter_class
    from hepml.models.spec import MLPSpec, TrainSpec
    from hepml.train import train

    out = {}
    rng = np.random.default_rng(0)
    for n_classes in (2, 3):
        spec = MLPSpec(hidden=[8, 8])
        tspec = TrainSpec(dtype="float64", optimizer="adam", learning_rate=0.02, clip_grad_norm=0.5, weight_decay=1e-3, seed=4)
        plain = adapter_class("keras").build(spec, 4, n_classes, train=tspec, device="cpu")
        one = build_mirrored(spec, 4, n_classes, train=tspec, devices=["/cpu:0"])
        two = build_mirrored(spec, 4, n_classes, train=tspec, devices=["/cpu:0", "CPU:1"])
        start = plain.get_weights()
        losses = {"plain": [], "one": [], "two": []}
        for size in (32, 32, 17, 1, 32, 9):  # odd sizes: unequal shares, and one empty share
            X = rng.normal(size=(size, 4))
            y = rng.integers(0, n_classes, size)
            w = rng.uniform(0.5, 2.0, size)
            b = Batch(X=X, set=None, mask=None, y=y, w=w)
            for name, a in (("plain", plain), ("one", one), ("two", two)):
                losses[name].append(a.train_step(b))
        ref = plain.get_weights()
        diff = lambda a: max(float(np.max(np.abs(a.get_weights()[k] - ref[k]))) for k in ref)
        out[n_classes] = {
            "replicas": [one.replicas, two.replicas],
            "diff_one": diff(one), "diff_two": diff(two),
            "moved": max(float(np.max(np.abs(ref[k] - start[k]))) for k in ref),
            "loss_diff": max(abs(p - q) for name in ("one", "two") for p, q in zip(losses[name], losses["plain"])),
            "opt_equal": all(np.allclose(v, plain.optimizer_state()[k], rtol=1e-10, atol=1e-14) for k, v in two.optimizer_state().items()),
        }
    errors = []
    for kwargs in ({"devices": ["/gpu:7"]}, {"precision": "fp16"}):
        try:
            build_mirrored(MLPSpec(hidden=[4]), 4, 2, train=TrainSpec(), **kwargs)
        except HepmlError as exc:
            errors.append(exc.one_line())
    try:
        build_mirrored(MLPSpec(hidden=[4], batch_norm=True), 4, 2, train=TrainSpec(), devices=["/cpu:0", "/cpu:1"])
    except HepmlError as exc:
        errors.append(exc.one_line())
    out["errors"] = errors

    task = sys.argv[1]
    over = {"model": {"hidden": [8]}, "train": {"dtype": "float64", "epochs": 2, "batch_size": 64, "early_stopping": None}}
    single = train(task, "keras", "mlp", overrides=over, device="cpu")
    dp = train(task, "keras", "mlp", overrides=over, device="cpu", distributed=True)
    ws, wd = single.adapter.get_weights(), dp.adapter.get_weights()
    out["trainer"] = {"diff": max(float(np.max(np.abs(ws[k] - wd[k]))) for k in ws), "record": dp.record["distributed"],
                      "loss_diff": max(abs(a["loss"] - b["loss"]) for a, b in zip(single.history, dp.history))}
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    d = tmp_path_factory.mktemp("keras_dp")
    rng = np.random.default_rng(2)
    n = 600
    y = rng.integers(0, 2, n).astype(np.int32)
    X = rng.normal(size=(n, 3)) + 0.7 * y[:, None]
    write_root(d / "toy.root", {**{f"x{i}": X[:, i].astype(np.float32) for i in range(3)}, "cls": y, "event": np.arange(n, dtype=np.int64)})
    task = {"name": "toy", "files": ["toy.root"], "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}}, "features": ["x0", "x1", "x2"]}
    (d / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    (d / "run.py").write_text(SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(d / "run.py"), str(d / "toy.yaml")], capture_output=True, text=True, env=env, timeout=400)
    assert res.returncode == 0, res.stderr[-4000:]
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads(line[0][len("RESULT "):])


@pytest.mark.slow  # one TensorFlow subprocess for the three: ~20-30 s
@pytest.mark.parametrize("n_classes", ["2", "3"])
def test_replicas_give_the_single_device_update(measured, n_classes):
    m = measured[n_classes]
    print(f"{n_classes} classes: max |Δw| 1 replica {m['diff_one']:.1e}, 2 replicas {m['diff_two']:.1e} (moved {m['moved']:.2f})")
    assert m["replicas"] == [1, 2]
    assert m["moved"] > 0.01
    assert m["diff_one"] <= 1e-12 and m["diff_two"] <= 1e-12  # float64, with clipping and L2 on the global gradient
    assert m["loss_diff"] <= 1e-12 and m["opt_equal"]


@pytest.mark.slow
def test_refused_configurations_are_one_line_errors(measured):
    errors = measured["errors"]
    assert len(errors) == 3
    assert "device '/gpu:7' is not visible to TensorFlow" in errors[0] and "cpu:1" in errors[0]
    assert "fp16" in errors[1] and "use --precision bf16 or fp32" in errors[1]
    assert "batch_norm with 2 Keras replicas" in errors[2]


@pytest.mark.slow
def test_trainer_distributed_keras_matches_plain_run(measured):
    t = measured["trainer"]
    assert t["record"]["engine"] == "tf.distribute.MirroredStrategy" and t["record"]["replicas"] == 1  # no GPU: the CPU
    assert t["diff"] <= 1e-12 and t["loss_diff"] <= 1e-12
