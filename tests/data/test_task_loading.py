"""Task files → Datasets on small ROOT files written here: flat, jagged, multi-file, samples, objects."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import yaml

from hepml.data import Standardizer, load_dataset, load_task, task_from_dict

from ..conftest import jet_events, write_root


def _task(tmp_path, body: dict, name="task.yaml"):
    body = {"name": "t", **body}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


@pytest.fixture
def flat_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    return write_root(
        tmp_path / "flat.root",
        {
            "x": rng.normal(size=n).astype(np.float32),
            "y2": rng.normal(size=n),
            "cls": rng.integers(0, 3, n).astype(np.int32),
            "w": rng.uniform(0.5, 2.0, n),
            "event": np.arange(n, dtype=np.int64),
        },
    )


@pytest.fixture
def jet_file(tmp_path):
    return write_root(tmp_path / "jets.root", jet_events(300, seed=1))


def test_flat_label_by_branch(tmp_path, flat_file):
    task = _task(
        tmp_path,
        {
            "files": ["flat.root"],
            "label": {"branch": "cls", "classes": {"a": 0, "b": 1, "c": 2}},
            "features": ["x", {"name": "r", "expr": "sqrt(x**2 + y2**2)"}],
            "weight": "w",
            "spectators": ["event"],
        },
    )
    ds = load_dataset(task)
    raw = __import__("uproot").open(flat_file)["Events"].arrays(library="np")
    assert ds.X.shape == (400, 2) and ds.X.dtype == np.float32
    assert ds.feature_names == ["x", "r"]
    np.testing.assert_allclose(ds.X[:, 0], raw["x"])
    np.testing.assert_allclose(ds.X[:, 1], np.sqrt(raw["x"].astype(np.float64) ** 2 + raw["y2"] ** 2), rtol=1e-6)
    np.testing.assert_array_equal(ds.y, raw["cls"])
    np.testing.assert_allclose(ds.weights, raw["w"])
    np.testing.assert_array_equal(ds.spectators["event"], raw["event"])
    assert ds.class_names == ["a", "b", "c"]
    assert sum(ds.split.sizes().values()) == 400


def test_unmapped_label_values_are_dropped_or_fail(tmp_path, flat_file):
    body = {"files": ["flat.root"], "label": {"branch": "cls", "classes": {"a": 0, "b": 1}}, "features": ["x"]}
    ds = load_dataset(_task(tmp_path, body))
    raw = __import__("uproot").open(flat_file)["Events"]["cls"].array(library="np")
    assert len(ds) == int((raw < 2).sum()) and ds.meta["dropped_unlabelled"] == int((raw == 2).sum())
    body["label"]["unmapped"] = "fail"
    from hepml.errors import DataError

    with pytest.raises(DataError, match=r"values \[2\] not in label.classes"):
        load_dataset(_task(tmp_path, body))


def test_jagged_top_n_sorted_padded_as_set_and_flat(tmp_path, jet_file):
    task = _task(
        tmp_path,
        {
            "files": ["jets.root"],
            "label": {"branch": "MET_pt > 30", "classes": {"low": 0, "high": 1}},
            "features": [{"name": "HT", "expr": "sum(Jet_pt)"}, {"name": "nJ", "expr": "num(Jet_pt)"}],
            "objects": {"jets": {"fields": ["Jet_pt", "Jet_eta"], "sort_by": "Jet_pt", "max": 3, "pad": -9, "as": "both"}},
        },
    )
    ds = load_dataset(task)
    ev = jet_events(300, seed=1)
    pt = ev["Jet"].pt
    assert ds.sets["jets"].shape == (300, 3, 2) and ds.masks["jets"].shape == (300, 3)
    np.testing.assert_allclose(ds.X[:, 0], ak.to_numpy(ak.sum(pt, axis=1)), rtol=1e-5)
    np.testing.assert_array_equal(ds.X[:, 1], ak.to_numpy(ak.num(pt)))
    expected = ak.to_numpy(ak.fill_none(ak.pad_none(ak.sort(pt, ascending=False), 3, clip=True), -9.0))
    np.testing.assert_allclose(ds.sets["jets"][:, :, 0], expected)
    np.testing.assert_array_equal(ds.masks["jets"], np.minimum(ak.to_numpy(ak.num(pt))[:, None], 3) > np.arange(3))
    # flattened copies, field-major names
    assert ds.feature_names[2:] == ["Jet_pt_0", "Jet_pt_1", "Jet_pt_2", "Jet_eta_0", "Jet_eta_1", "Jet_eta_2"]
    np.testing.assert_allclose(ds.X[:, 2:5], expected)
    # eta travels with its jet when sorting by pt
    order = ak.argsort(pt, ascending=False)
    eta_sorted = ak.to_numpy(ak.fill_none(ak.pad_none(ev["Jet"].eta[order], 3, clip=True), -9.0))
    np.testing.assert_allclose(ds.sets["jets"][:, :, 1], eta_sorted)


def test_per_object_examples_flatten_and_broadcast(tmp_path, jet_file):
    task = _task(
        tmp_path,
        {
            "files": ["jets.root"],
            "example": "Jet",
            "collections": {"Jet": {"selection": "Jet_pt > 30"}},
            "selection": "MET_pt > 5",
            "label": {"branch": "Jet_hadronFlavour", "classes": {"b": 5, "c": 4, "light": 0}},
            "features": ["Jet_pt", "Jet_eta", "MET_pt", {"name": "HT", "expr": "sum(Jet_pt)"}],
        },
    )
    ds = load_dataset(task)
    ev = jet_events(300, seed=1)
    keep_ev = ev["MET_pt"] > 5
    jets = ev["Jet"][keep_ev]
    jets = jets[jets.pt > 30]
    counts = ak.to_numpy(ak.num(jets))
    assert len(ds) == int(counts.sum())
    np.testing.assert_allclose(ds.X[:, 0], ak.to_numpy(ak.flatten(jets.pt)))
    np.testing.assert_allclose(ds.X[:, 2], np.repeat(ev["MET_pt"][keep_ev], counts))
    np.testing.assert_allclose(ds.X[:, 3], np.repeat(ak.to_numpy(ak.sum(jets.pt, axis=1)), counts), rtol=1e-5)
    flav = ak.to_numpy(ak.flatten(jets.hadronFlavour))
    np.testing.assert_array_equal(ds.y, np.select([flav == 5, flav == 4], [0, 1], 2))
    # event numbers are broadcast, so k-fold keeps all jets of one event in one fold
    np.testing.assert_array_equal(ds.event, np.repeat(ev["event"][keep_ev], counts))


def test_per_object_selection_in_entry_selection_masks_objects(tmp_path, jet_file):
    base = {
        "files": ["jets.root"],
        "example": "Jet",
        "label": {"branch": "Jet_hadronFlavour", "classes": {"b": 5, "c": 4, "light": 0}},
        "features": ["Jet_pt"],
    }
    a = load_dataset(_task(tmp_path, {**base, "selection": "abs(Jet_eta) < 1"}, "a.yaml"))
    b = load_dataset(_task(tmp_path, {**base, "collections": {"Jet": {"selection": "abs(Jet_eta) < 1"}}}, "b.yaml"))
    np.testing.assert_array_equal(a.X, b.X)
    assert len(a) < sum(len(x) for x in jet_events(300, seed=1)["Jet"].pt)


def test_samples_multi_file_glob_and_sample_weights(tmp_path):
    for i in range(3):
        write_root(tmp_path / f"sig_{i}.root", jet_events(50, seed=10 + i, signal=True))
    write_root(tmp_path / "bkg.root", jet_events(120, seed=20, signal=False))
    task = _task(
        tmp_path,
        {
            "samples": {
                "signal": {"files": ["sig_*.root"], "weight": 0.5},
                "background": {"files": ["bkg.root"], "weight": "MET_pt * 0 + 2"},
            },
            "features": [{"name": "HT", "expr": "sum(Jet_pt)"}],
        },
    )
    ds = load_dataset(task)
    assert ds.class_names == ["signal", "background"]
    assert ds.class_counts() == {"signal": 150, "background": 120}
    assert set(np.unique(ds.weights[ds.y == 0])) == {0.5} and set(np.unique(ds.weights[ds.y == 1])) == {2.0}
    assert len(ds.meta["files"]) == 4
    # files are read in glob order: event numbers of sig_0 come first
    np.testing.assert_array_equal(ds.event[:50], jet_events(50, seed=10)["event"])


def test_balance_classes_equalises_weight_sums(tmp_path):
    write_root(tmp_path / "sig.root", jet_events(40, seed=1))
    write_root(tmp_path / "bkg.root", jet_events(160, seed=2))
    ds = load_dataset(
        _task(
            tmp_path,
            {
                "samples": {"s": {"files": ["sig.root"]}, "b": {"files": ["bkg.root"]}},
                "features": ["MET_pt"],
                "balance_classes": True,
            },
        )
    )
    sums = np.bincount(ds.y, weights=ds.weights)
    np.testing.assert_allclose(sums[0], sums[1])
    np.testing.assert_allclose(sums.sum(), 200)


def test_split_is_deterministic_stratified_and_kfold_by_event(tmp_path, flat_file):
    body = {"files": ["flat.root"], "label": {"branch": "cls", "classes": {"a": 0, "b": 1, "c": 2}}, "features": ["x"]}
    d1 = load_dataset(_task(tmp_path, body))
    d2 = load_dataset(_task(tmp_path, body))
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(d1.split, part), getattr(d2.split, part))
    all_idx = np.concatenate([d1.split.train, d1.split.val, d1.split.test])
    assert sorted(all_idx.tolist()) == list(range(len(d1)))
    # stratified: each class is ~20 % test
    for c in range(3):
        frac = np.isin(np.flatnonzero(d1.y == c), d1.split.test).mean()
        assert abs(frac - 0.2) < 0.02
    d3 = load_dataset(_task(tmp_path, {**body, "split": {"seed": 7}}))
    assert not np.array_equal(d1.split.test, d3.split.test)
    kf = load_dataset(_task(tmp_path, {**body, "split": {"kfold": 4, "fold": 1}}))
    assert np.all(kf.event[kf.split.test] % 4 == 1)
    assert np.all(kf.event[np.concatenate([kf.split.train, kf.split.val])] % 4 != 1)


def test_standardizer_fitted_on_train_only(tmp_path, jet_file):
    task = _task(
        tmp_path,
        {
            "files": ["jets.root"],
            "label": {"branch": "MET_pt > 30", "classes": {"low": 0, "high": 1}},
            "features": ["MET_pt"],
            "objects": {"jets": {"fields": ["Jet_pt"], "sort_by": "Jet_pt", "max": 4, "as": "set"}},
        },
    )
    ds = load_dataset(task)
    st = Standardizer().fit(ds.train)
    z = st.transform(ds)
    np.testing.assert_allclose(z.X[ds.split.train].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.X[ds.split.train].std(axis=0), 1, atol=1e-4)
    assert abs(z.X[ds.split.test].mean()) > 1e-4  # test data were not used to fit
    real = ds.train.masks["jets"]
    np.testing.assert_allclose(st.set_mean_["jets"], [ds.train.sets["jets"][real][:, 0].mean()], rtol=1e-5)
    assert np.all(z.sets["jets"][~ds.masks["jets"]] == 0)  # padding stays zero
    st.save(tmp_path / "std.json")
    again = Standardizer.load(tmp_path / "std.json").transform(ds)
    np.testing.assert_array_equal(again.X, z.X)


def test_dataset_save_load_roundtrip(tmp_path, jet_file):
    task = _task(
        tmp_path,
        {
            "files": ["jets.root"],
            "label": {"branch": "MET_pt > 30", "classes": {"low": 0, "high": 1}},
            "features": ["MET_pt"],
            "objects": {"jets": {"fields": ["Jet_pt"], "max": 2, "as": "set"}},
            "spectators": ["event"],
        },
    )
    ds = load_dataset(task)
    ds.save(tmp_path / "ds.npz")
    back = type(ds).load(tmp_path / "ds.npz")
    np.testing.assert_array_equal(back.X, ds.X)
    np.testing.assert_array_equal(back.sets["jets"], ds.sets["jets"])
    np.testing.assert_array_equal(back.split.test, ds.split.test)
    assert back.feature_names == ds.feature_names and back.class_names == ds.class_names


def test_chunked_reading_gives_the_same_dataset(tmp_path, jet_file):
    body = {
        "files": ["jets.root"],
        "label": {"branch": "MET_pt > 30", "classes": {"low": 0, "high": 1}},
        "features": [{"name": "HT", "expr": "sum(Jet_pt)"}],
        "objects": {"jets": {"fields": ["Jet_pt"], "max": 2}},
    }
    whole = load_dataset(_task(tmp_path, body))
    chunked = load_dataset(_task(tmp_path, {**body, "step_size": 37}))
    np.testing.assert_array_equal(whole.X, chunked.X)
    np.testing.assert_array_equal(whole.split.test, chunked.split.test)


def test_cms_open_data_dimuon_task(cms_file, tmp_path):
    """The README's example task over the real shared CMS file."""
    from pathlib import Path

    readme_task = Path(__file__).resolve().parents[2] / "tasks" / "dimuon_charge.yaml"
    cfg = load_task(readme_task)
    ds = load_dataset(cfg)
    import uproot

    n_muon = uproot.open(cms_file)["Events"]["nMuon"].array(library="np")
    n2 = int((n_muon == 2).sum())
    assert len(ds) == n2
    assert ds.X.shape == (n2, 4) and ds.feature_names == ["Muon_pt_0", "Muon_pt_1", "Muon_eta_0", "Muon_eta_1"]
    assert ds.class_names == ["opposite_sign", "same_sign"]
    counts = ds.class_counts()
    assert counts["opposite_sign"] > counts["same_sign"] > 0
    assert np.all(ds.X[:, 0] >= ds.X[:, 1])  # leading muon first
    assert ds.sets["muons"].shape == (n2, 2, 2) and ds.masks["muons"].all()
    assert "m_mumu" in ds.spectators and np.nanmedian(ds.spectators["m_mumu"]) > 1.0


def test_task_from_dict_matches_yaml(tmp_path, flat_file):
    body = {"name": "t", "files": ["flat.root"], "label": {"branch": "cls", "classes": {"a": 0, "b": 1, "c": 2}}, "features": ["x"]}
    a = load_dataset(task_from_dict(body, base_dir=tmp_path))
    b = load_dataset(_task(tmp_path, body))
    np.testing.assert_array_equal(a.X, b.X)
