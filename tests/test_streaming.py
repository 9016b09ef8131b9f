"""Streaming training: the event-hash split, the streamed standardiser, the bounded shuffle buffer, and
end-to-end streamed runs of the NumPy core, torch, Keras and XGBoost on ROOT files written here."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from hepml.cli import main
from hepml.data import Standardizer, load_dataset, task_from_dict
from hepml.data.streaming import RunningMoments, TaskStream, parse_chunk_size, stream_split
from hepml.errors import ConfigError, DataError
from hepml.frameworks.base import make_batch
from hepml.models import load_model_file
from hepml.train import train

from .conftest import jet_events, write_root

N_PER_FILE = 700
FEATURES = ["x0", "x1", "x2", "x3"]


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Three files of two Gaussian blobs (labels by branch), unique event numbers, a spectator."""
    d = tmp_path_factory.mktemp("stream_toy")
    rng = np.random.default_rng(11)
    for k in range(3):
        y = rng.integers(0, 2, N_PER_FILE).astype(np.int32)
        X = rng.normal(size=(N_PER_FILE, 4)) * [1, 2, 0.5, 3] + [0, 5, -1, 10] + 0.9 * y[:, None]
        write_root(d / f"toy_{k}.root", {
            **{f"x{i}": X[:, i].astype(np.float32) for i in range(4)},
            "cls": y, "event": np.arange(N_PER_FILE, dtype=np.int64) + 10_000 * k, "run": np.full(N_PER_FILE, k, np.int32),
        })
    task = {"name": "toy", "files": [f"toy_{k}.root" for k in range(3)], "label": {"branch": "cls", "classes": {"sig": 1, "bkg": 0}},
            "features": FEATURES, "spectators": ["run"]}
    (d / "toy.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return d


def _task(d, **changes):
    base = yaml.safe_load((d / "toy.yaml").read_text())
    return task_from_dict({**base, **changes}, base_dir=d)


@pytest.fixture(scope="module")
def jets(tmp_path_factory):
    """Signal and background samples, one file each, with jagged jets kept as a padded set and flat."""
    d = tmp_path_factory.mktemp("stream_jets")
    write_root(d / "sig.root", jet_events(600, seed=1, signal=True))
    write_root(d / "bkg.root", jet_events(600, seed=2, signal=False))
    return task_from_dict({
        "name": "jets",
        "samples": {"sig": {"files": ["sig.root"]}, "bkg": {"files": ["bkg.root"]}},
        "features": ["MET_pt", {"name": "HT", "expr": "sum(Jet_pt)"}],
        "objects": {"jets": {"fields": ["Jet_pt", "Jet_eta"], "sort_by": "Jet_pt", "max": 4, "as": "both"}},
    }, base_dir=d)


FAST = {"model": {"hidden": [16]}, "train": {"epochs": 2, "batch_size": 64, "learning_rate": 0.01}}


# ------------------------------------------------------------------------------------------ the split
def test_split_codes_follow_the_fractions_and_kfold_rule():
    event = np.arange(200_000, dtype=np.int64) * 7 + 3
    code = stream_split(event, validation=0.25, test=0.15, seed=4)
    np.testing.assert_allclose(np.bincount(code, minlength=3) / len(event), [0.60, 0.25, 0.15], atol=0.005)
    np.testing.assert_array_equal(code[::-1], stream_split(event[::-1], validation=0.25, test=0.15, seed=4))  # per event, order-free
    assert (code != stream_split(event, validation=0.25, test=0.15, seed=5)).mean() > 0.3  # the seed matters
    k = stream_split(event, validation=0.2, kfold=5, fold=2, seed=4)
    np.testing.assert_array_equal(k == 2, event % 5 == 2)
    assert abs((k[event % 5 != 2] == 1).mean() - 0.2) < 0.005


def _events_by_part(stream):
    return {part: np.sort(np.concatenate([c.event for c in stream.chunks(part)])) for part in ("train", "val", "test")}


@pytest.fixture(scope="module")
def toy_parts(toy):
    """The event numbers of each split part of the toy task (read once)."""
    return _events_by_part(TaskStream(toy / "toy.yaml", chunk_size=N_PER_FILE))


def test_split_does_not_depend_on_chunk_size_or_file_order(toy, toy_parts):
    ref = toy_parts
    reversed_files = _task(toy, files=[f"toy_{k}.root" for k in (2, 0, 1)])
    for stream in (TaskStream(_task(toy), chunk_size=97), TaskStream(_task(toy), chunk_size="3 kB"), TaskStream(reversed_files, chunk_size=250)):
        got = _events_by_part(stream)
        for part in ref:
            np.testing.assert_array_equal(got[part], ref[part])
    assert sum(len(v) for v in ref.values()) == 3 * N_PER_FILE
    assert all(len(v) > 0.1 * 3 * N_PER_FILE for v in ref.values())
    ds = load_dataset(_task(toy))  # the same assignment from the in-memory arrays
    np.testing.assert_array_equal(np.sort(ds.event[stream_split(ds.event, seed=1) == 0]), ref["train"])


def test_chunk_size_parsing():
    assert parse_chunk_size(500) == 500 and parse_chunk_size("500") == 500
    assert parse_chunk_size("50 MB") == ("bytes", 50_000_000) and parse_chunk_size("2KiB") == ("bytes", 2048)
    with pytest.raises(ConfigError, match=r"chunk size 'fifty' is not"):
        parse_chunk_size("fifty")
    with pytest.raises(ConfigError, match="received 0"):
        parse_chunk_size(0)


# ------------------------------------------------------------------------------------------ the standardiser
def test_running_moments_equal_two_pass_moments():
    rng = np.random.default_rng(0)
    x = rng.normal(3e3, 5.0, size=(1000, 3))
    m = RunningMoments(3)
    for a, b in ((0, 1), (1, 300), (300, 301), (301, 1000)):
        m.update(x[a:b])
    mean, std = m.mean_std()
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(0), rtol=1e-9)


@pytest.mark.parametrize("fraction", [0.4, 1.0])
def test_streamed_standardizer_equals_standardizer_fit(jets, fraction):
    stream = TaskStream(jets, chunk_size=70)
    st = stream.fit_preprocessing(fraction=fraction)
    seen = list(TaskStream(jets, chunk_size=70).chunks("train", fraction=fraction, preprocess=False))
    assert len(seen) > 3  # several chunks were merged
    from hepml.data.streaming import _concat

    train_part = _concat(seen)
    ref = Standardizer().fit(train_part)
    if fraction == 1.0:  # and the same examples as the in-memory dataset's event-hash training split
        ds = load_dataset(jets)
        ref_mem = Standardizer().fit(ds.subset(stream_split(ds.event, seed=1) == 0))
        np.testing.assert_allclose(ref_mem.mean_, ref.mean_, rtol=1e-12)
    assert st.feature_names_ == ref.feature_names_ and "jets" in st.set_mean_
    np.testing.assert_allclose(st.mean_, ref.mean_, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(st.std_, ref.std_, rtol=1e-6)
    np.testing.assert_allclose(st.set_mean_["jets"], ref.set_mean_["jets"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(st.set_std_["jets"], ref.set_std_["jets"], rtol=1e-6)
    # the streamed chunks are transformed exactly as Standardizer.transform does
    raw = next(iter(TaskStream(jets, chunk_size=70).chunks("test", preprocess=False)))
    done = next(iter(stream.chunks("test")))
    want = st.transform(raw)
    np.testing.assert_array_equal(done.X, want.X)
    np.testing.assert_array_equal(done.sets["jets"], want.sets["jets"])


def test_standardize_fraction_must_see_every_class(jets, toy):
    with pytest.raises(ConfigError, match=r"standardize_fraction must be in \(0, 1\]; received 0"):
        TaskStream(jets, chunk_size=100).fit_preprocessing(fraction=0)
    one_class = _task(toy, selection="cls == 1")
    with pytest.raises(DataError, match=r"class 'bkg' has no training examples in the first 10% .*raise standardize_fraction"):
        TaskStream(one_class, chunk_size=100).fit_preprocessing(fraction=0.1)


# ------------------------------------------------------------------------------------------ the buffer
def test_shuffle_buffer_is_bounded_and_yields_each_example_once(jets):
    spec = load_model_file("mlp").model
    stream = TaskStream(jets, chunk_size=50, buffer_size=120, batch_size=32, seed=3)
    stream.fit_preprocessing(fraction=1.0, standardize=False)
    train_X = np.concatenate([c.X for c in TaskStream(jets, chunk_size=50).chunks("train")])
    stream.counters["peak_buffered"] = 0
    read_before = stream.counters["chunks_read"]
    it = stream.batches(0, spec)
    first = next(it)
    # only enough chunks to fill the buffer were read before the first batch came out
    assert stream.counters["chunks_read"] - read_before <= 120 // 20 + 2
    assert set(np.unique(first.y)) == {0, 1}  # the two sample files are interleaved, not read one after the other
    batches = [first, *it]
    assert all(len(b) == 32 for b in batches[:-1])
    X = np.concatenate([b.X for b in batches])
    assert len(X) == len(train_X) > 400
    np.testing.assert_array_equal(np.sort(X, axis=0), np.sort(train_X, axis=0))  # every example exactly once
    assert 120 <= stream.counters["peak_buffered"] <= 120 + 50  # buffer + one chunk (≤ 50 entries), never more
    again = np.concatenate([b.X for b in stream.batches(0, spec)])
    other = np.concatenate([b.X for b in stream.batches(1, spec)])
    np.testing.assert_array_equal(X, again)  # (seed, epoch) fixes the order
    assert not np.array_equal(X, other)


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("framework", ["core", "torch", "keras", "xgboost"])
def test_streamed_training_end_to_end(toy, toy_parts, framework, tmp_path):
    model, over = ("bdt", {"model": {"n_estimators": 30}}) if framework == "xgboost" else ("mlp", FAST)
    out = tmp_path / "run"
    res = train(toy / "toy.yaml", framework, model, overrides=over, streaming=True, chunk_size=300, buffer_size=400, out=out)
    rec = json.loads((out / "run.json").read_text())
    assert [rec["n_train"], rec["n_val"], rec["n_test"]] == [len(toy_parts[p]) for p in ("train", "val", "test")]
    assert rec["metrics"]["test_auc"] > 0.85  # separable blobs
    assert rec["streaming"]["chunk_size"] == 300 and rec["streaming"]["counters"]["chunks_read"] > 9
    if framework != "xgboost":
        assert rec["streaming"]["counters"]["peak_buffered"] <= 400 + 300
        assert len(res.history) == 2 and all("val_loss" in h for h in res.history)
        assert (out / "model/standardizer.json").exists()
    import uproot

    pred = uproot.open(out / "predictions.root")["Predictions"].arrays(library="np")
    assert len(pred["event"]) == rec["n_test"] and set(np.unique(pred["run"])) == {0, 1, 2}
    np.testing.assert_array_equal(np.sort(pred["event"]), toy_parts["test"])
    assert res.train_proba is None and len(res.dataset) == rec["n_test"]


def test_streamed_batches_are_the_same_for_core_and_torch(toy):
    over = {"model": {"hidden": [8]}, "train": {"epochs": 1, "batch_size": 50, "dtype": "float64", "learning_rate": 0.05}}
    kw = dict(overrides=over, streaming=True, chunk_size=350, buffer_size=300)
    a = train(toy / "toy.yaml", "core", "mlp", **kw).adapter.get_weights()
    b = train(toy / "toy.yaml", "torch", "mlp", **kw).adapter.get_weights()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9)


def test_streamed_run_is_reproducible(toy):
    kw = dict(overrides=FAST, streaming=True, chunk_size=350, buffer_size=300)
    a = train(toy / "toy.yaml", "core", "mlp", **kw)
    b = train(toy / "toy.yaml", "core", "mlp", **kw)
    for k, v in a.adapter.get_weights().items():
        np.testing.assert_array_equal(v, b.adapter.get_weights()[k])
    np.testing.assert_array_equal(a.test_proba, b.test_proba)
    c = train(toy / "toy.yaml", "core", "mlp", overrides={**FAST, "train": {**FAST["train"], "seed": 9}}, streaming=True, chunk_size=350, buffer_size=300)
    assert not np.array_equal(a.test_proba, c.test_proba)
    # the last epoch's fused validation + test pass predicts what a separate streamed pass predicts
    again = TaskStream(toy / "toy.yaml", chunk_size=350)
    again.standardizer_ = a.standardizer
    proba, examples = again.predict(a.adapter, "test", a.adapter.spec)
    np.testing.assert_array_equal(proba, a.test_proba)
    np.testing.assert_array_equal(examples.event, a.dataset.event)


def test_streamed_early_stopping_restores_the_best_epoch(toy):
    over = {"model": {"hidden": [16]}, "train": {"epochs": 4, "early_stopping": 1, "learning_rate": 0.3, "batch_size": 64}}
    res = train(toy / "toy.yaml", "core", "mlp", overrides=over, streaming=True, chunk_size=700)
    vals = [h["val_loss"] for h in res.history]
    best = int(np.argmin(vals))
    assert res.record["best_epoch"] == best
    stream = TaskStream(toy / "toy.yaml", chunk_size=700)
    stream.standardizer_ = res.standardizer
    loss, n = stream.loss(res.adapter, "val", res.adapter.spec)
    assert n == res.record["n_val"] and abs(loss - vals[best]) < 1e-6  # the best weights are back
    np.testing.assert_array_equal(stream.predict(res.adapter, "test", res.adapter.spec)[0], res.test_proba)


def test_torch_workers_shard_ranges_reproducibly(toy, toy_parts):
    kw = dict(overrides={**FAST, "train": {**FAST["train"], "epochs": 1}}, streaming=True, chunk_size=350, buffer_size=300, num_workers=2)
    a = train(toy / "toy.yaml", "torch", "mlp", **kw)
    b = train(toy / "toy.yaml", "torch", "mlp", **kw)
    for k, v in a.adapter.get_weights().items():
        np.testing.assert_array_equal(v, b.adapter.get_weights()[k])
    assert a.record["n_train"] == len(toy_parts["train"])  # two readers together read each range once
    assert a.record["metrics"]["test_auc"] > 0.85


def test_xgboost_from_one_chunk_equals_in_memory_fit(toy):
    from hepml.data.streaming import xgboost_iter
    from hepml.frameworks.xgboost import XGBoostAdapter

    spec = load_model_file("bdt", {"model": {"n_estimators": 15}}).model
    stream = TaskStream(_task(toy, files=["toy_0.root"]), chunk_size=N_PER_FILE)
    stream.fit_preprocessing(fraction=1.0, standardize=False)
    chunk = next(iter(stream.chunks("train")))
    a = XGBoostAdapter.build(spec, 4, 2)
    a.fit_iter(xgboost_iter(stream, "train"))
    b = XGBoostAdapter.build(spec, 4, 2)
    b.fit_full(make_batch(chunk, slice(None), spec))
    np.testing.assert_array_equal(a.predict_proba(make_batch(chunk, slice(None), spec)), b.predict_proba(make_batch(chunk, slice(None), spec)))


def test_streaming_refuses_what_it_cannot_do(toy):
    task = toy / "toy.yaml"
    with pytest.raises(ConfigError, match="cannot train the core BDT"):
        train(task, "core", "bdt", streaming=True)
    with pytest.raises(ConfigError, match="needs tree_method 'hist'.*'exact'"):
        train(task, "xgboost", "bdt", overrides={"model": {"tree_method": "exact"}}, streaming=True)
    with pytest.raises(ConfigError, match="num_workers=2 reader processes are for torch"):
        train(task, "core", "mlp", streaming=True, num_workers=2)
    with pytest.raises(ConfigError, match="received 1.5"):
        train(task, "core", "mlp", streaming=True, standardize_fraction=1.5)
    with pytest.raises(ConfigError, match="buffer_size must be a positive number of examples; received 0"):
        train(task, "core", "mlp", streaming=True, buffer_size=0)
    with pytest.raises(ConfigError, match="pass either dataset= or streaming=True"):
        train(task, "core", "mlp", streaming=True, dataset=load_dataset(task))
    with pytest.raises(DataError, match=r"train weights must be finite and >= 0 for XGBoost; received min -"):
        train(_task(toy, weight="x0"), "xgboost", "bdt", overrides={"model": {"n_estimators": 2}}, streaming=True, chunk_size=N_PER_FILE)


def test_cli_streaming(toy, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["train", str(toy / "toy.yaml"), "-f", "core", "--streaming", "--chunk-size", "300", "--set", "train.epochs=1", "--set", "model.hidden=[8]", "--out", str(out)])
    assert rc == 0
    rec = json.loads((out / "run.json").read_text())
    assert rec["streaming"]["chunk_size"] == 300 and rec["n_train"] > 0
    assert main(["train", str(toy / "toy.yaml"), "--streaming", "--chunk-size", "lots", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chunk size 'lots'" in err[0] and "--chunk-size 100000" in err[0]
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("which", ["toy", "jets"])
def test_streamed_chunks_hold_the_in_memory_examples(toy, jets, which):
    """Flat tasks are read as NumPy, jagged ones as awkward: both give load_dataset's arrays exactly."""
    task = _task(toy) if which == "toy" else jets
    stream = TaskStream(task, chunk_size=230)
    assert all(f.flat for f in stream.files) == (which == "toy")
    from hepml.data.streaming import _concat

    got, ref = _concat(list(stream.chunks("all", preprocess=False))), load_dataset(task)
    for key in ("X", "y", "weights", "event"):
        np.testing.assert_array_equal(getattr(got, key), getattr(ref, key))
    for k in ref.sets:
        np.testing.assert_array_equal(got.sets[k], ref.sets[k])
        np.testing.assert_array_equal(got.masks[k], ref.masks[k])
    for k in ref.spectators:
        np.testing.assert_array_equal(got.spectators[k], ref.spectators[k])
    assert got.feature_names == ref.feature_names
