"""Converters: reference-layout fixtures (written here with h5py / NumPy) -> hepml's ROOT layouts."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from data_download.downloads import convert
from data_download.generators.top_tagging import nsubjettiness
from hepml.errors import DataError, InputFileError

N_CONST = 200  # the reference layout's constituent columns


# ---------------------------------------------------------------------------------------------
# fixtures in the public datasets' own layouts
# ---------------------------------------------------------------------------------------------


def make_top_jets(n: int = 40, seed: int = 3, n_const: int = N_CONST) -> dict:
    """Toy boosted jets shaped like the reference file: zero-padded (E, px, py, pz) per constituent.

    Jet 0 has one constituent, jet 1 two, jet 2 three (the N-subjettiness edge cases); every
    fifth jet is stored out of pT order (the reference is sorted, the converter must not rely on it).
    """
    rng = np.random.default_rng(seed)
    E = np.zeros((n, n_const), np.float32)
    PX, PY, PZ = np.zeros_like(E), np.zeros_like(E), np.zeros_like(E)
    for j in range(n):
        m = [1, 2, 3][j] if j < 3 else int(rng.integers(4, 80))
        eta0, phi0 = rng.uniform(-1.5, 1.5), rng.uniform(-np.pi, np.pi)
        pt = np.sort(rng.exponential(25.0, m) + 1.0)[::-1]
        eta = eta0 + rng.normal(0, 0.25, m)
        phi = phi0 + rng.normal(0, 0.25, m)
        if j % 5 == 4:
            perm = rng.permutation(m)
            pt, eta, phi = pt[perm], eta[perm], phi[perm]
        E[j, :m] = pt * np.cosh(eta)
        PX[j, :m], PY[j, :m], PZ[j, :m] = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    is_signal = (np.arange(n) % 2).astype(np.int64)
    truth = np.zeros((n, 4), np.float32)
    sig = is_signal == 1
    truth[sig, 0] = E[sig].sum(1) * 1.02
    truth[sig, 1] = PX[sig].sum(1) * 1.01
    truth[sig, 2] = PY[sig].sum(1) * 0.99
    truth[sig, 3] = PZ[sig].sum(1)
    return {"E": E, "PX": PX, "PY": PY, "PZ": PZ, "truth": truth, "is_signal": is_signal,
            "ttv": np.zeros(n, np.int64)}


def write_reference_h5(path, jets: dict, layout: str = "pandas-fixed") -> Path:
    """Write ``jets`` the way the reference files are stored.

    ``pandas-fixed``: what ``DataFrame.to_hdf(path, key="table")`` (format "fixed") writes: group
    ``table`` with ``axis0`` (column names), ``axis1`` (index) and one items/values pair per
    dtype block (float32 columns E_0, PX_0, PY_0, PZ_0, E_1, ..., truthE..truthPZ; int64 columns
    ttv, is_signal_new). ``plain``: 2-D datasets E/PX/PY/PZ plus is_signal_new, truthPX/PY.
    ``pandas-table``: the PyTables 'table' format shape (a compound ``table/table`` dataset).
    """
    import h5py

    n, k = jets["E"].shape
    with h5py.File(path, "w") as f:
        if layout == "pandas-fixed":
            names = [f"{p}_{i}" for i in range(k) for p in ("E", "PX", "PY", "PZ")]
            names += ["truthE", "truthPX", "truthPY", "truthPZ"]
            inter = np.stack([jets["E"], jets["PX"], jets["PY"], jets["PZ"]], axis=2).reshape(n, 4 * k)
            floats = np.concatenate([inter, jets["truth"]], axis=1).astype(np.float32)
            ints = np.stack([jets["ttv"], jets["is_signal"]], axis=1).astype(np.int64)
            g = f.create_group("table")
            for key, value in {"pandas_type": b"frame", "pandas_version": b"0.15.2", "encoding": b"UTF-8",
                               "errors": b"strict", "axis0_variety": b"regular", "axis1_variety": b"regular",
                               "block0_items_variety": b"regular", "block1_items_variety": b"regular"}.items():
                g.attrs[key] = value
            g.attrs["ndim"] = 2
            g.attrs["nblocks"] = 2
            g["axis0"] = np.array([s.encode() for s in names + ["ttv", "is_signal_new"]])
            g["axis1"] = np.arange(n, dtype=np.int64)
            g["block0_items"] = np.array([s.encode() for s in names])
            g["block0_values"] = floats
            g["block1_items"] = np.array([b"ttv", b"is_signal_new"])
            g["block1_values"] = ints
        elif layout == "plain":
            for key in ("E", "PX", "PY", "PZ"):
                f[key] = jets[key]
            f["is_signal_new"] = jets["is_signal"]
            f["truthPX"] = jets["truth"][:, 1]
            f["truthPY"] = jets["truth"][:, 2]
        elif layout == "pandas-table":
            g = f.create_group("table")
            g["table"] = np.zeros(n, dtype=[("index", "<i8"), ("values_block_0", "<f4", (4,))])
        else:
            raise ValueError(layout)
    return Path(path)


def _arrays(path, tree="Events"):
    with uproot.open(path) as f:
        t = f[tree]
        return t.arrays(library="ak"), {k: str(v) for k, v in t.typenames().items()}


# ---------------------------------------------------------------------------------------------
# top tagging
# ---------------------------------------------------------------------------------------------

EXPECTED_TOP_TYPES = {
    "event": "int64_t", "is_signal": "int32_t",
    "FatJet_pt": "float", "FatJet_eta": "float", "FatJet_phi": "float", "FatJet_mass": "float",
    "FatJet_tau1": "float", "FatJet_tau2": "float", "FatJet_tau3": "float",
    "truth_top_pt": "float", "nPart": "int32_t",
    "Part_E": "float[]", "Part_px": "float[]", "Part_py": "float[]", "Part_pz": "float[]",
}


@pytest.fixture(scope="module")
def top_jets():
    return make_top_jets()


@pytest.fixture(scope="module")
def converted_top(tmp_path_factory, top_jets):
    folder = tmp_path_factory.mktemp("top")
    src = write_reference_h5(folder / "train.h5", top_jets)
    out = convert.top_tagging_h5_to_root(src, folder / "train.root", chunk_rows=16)
    return out


def test_top_tagging_layout_is_the_generators(converted_top, top_jets):
    arrays, types = _arrays(converted_top)
    assert types == EXPECTED_TOP_TYPES
    n = len(top_jets["E"])
    assert len(arrays) == n
    assert arrays["event"].to_list() == list(range(n))  # continuous across 16-row chunks
    assert arrays["is_signal"].to_list() == top_jets["is_signal"].tolist()


def test_top_tagging_constituents_sorted_and_complete(converted_top, top_jets):
    arrays, _ = _arrays(converted_top)
    real = top_jets["E"] > 0
    assert ak.to_numpy(arrays["nPart"]).tolist() == real.sum(1).tolist()
    pt = np.sqrt(arrays["Part_px"] ** 2 + arrays["Part_py"] ** 2)
    assert ak.all(pt[:, :-1] >= pt[:, 1:])  # pT-descending in every jet, including the shuffled ones
    for j in (0, 4, 9, 17):  # same set of constituents as the input (order aside)
        want = np.sort(top_jets["E"][j][real[j]])
        np.testing.assert_allclose(np.sort(ak.to_numpy(arrays["Part_E"][j])), want, rtol=1e-6)


def test_top_tagging_fatjet_kinematics_and_truth(converted_top, top_jets):
    arrays, _ = _arrays(converted_top)
    E, px, py, pz = (top_jets[k].astype(np.float64).sum(1) for k in ("E", "PX", "PY", "PZ"))
    pt = np.hypot(px, py)
    np.testing.assert_allclose(ak.to_numpy(arrays["FatJet_pt"]), pt, rtol=1e-5)
    np.testing.assert_allclose(ak.to_numpy(arrays["FatJet_eta"]), np.arcsinh(pz / pt), atol=1e-5)
    np.testing.assert_allclose(ak.to_numpy(arrays["FatJet_phi"]), np.arctan2(py, px), atol=1e-5)
    mass = np.sqrt(np.maximum(E**2 - px**2 - py**2 - pz**2, 0))
    np.testing.assert_allclose(ak.to_numpy(arrays["FatJet_mass"]), mass, rtol=1e-3, atol=1e-2)
    assert ak.to_numpy(arrays["FatJet_mass"])[0] == pytest.approx(0.0, abs=1e-2)  # one massless constituent
    truth = ak.to_numpy(arrays["truth_top_pt"])
    sig = top_jets["is_signal"] == 1
    np.testing.assert_allclose(truth[sig], np.hypot(top_jets["truth"][sig, 1], top_jets["truth"][sig, 2]), rtol=1e-6)
    assert np.all(truth[~sig] == 0)


def test_top_tagging_taus_defined(converted_top):
    arrays, _ = _arrays(converted_top)
    taus = np.stack([ak.to_numpy(arrays[f"FatJet_tau{k}"]) for k in (1, 2, 3)])
    assert np.all(np.isfinite(taus)) and np.all(taus >= 0)
    assert taus[0, 0] == pytest.approx(0.0, abs=1e-6)  # one constituent: tau1 = 0
    assert taus[2, 2] == pytest.approx(0.0, abs=1e-6)  # three constituents: tau3 = 0
    assert np.mean(taus[0, 3:]) > 0.05  # real spread-out jets are not single-prong


def test_nsubjettiness_against_brute_force(top_jets):
    """tau1's exclusive-kT axis is the jet four-vector itself (E-scheme), so tau1 can be recomputed by hand."""
    parts, counts = convert._sorted_constituents(top_jets["E"], top_jets["PX"], top_jets["PY"], top_jets["PZ"])
    tau1, tau2, tau3 = nsubjettiness(parts["px"], parts["py"], parts["pz"], parts["E"], R0=0.8, N=3)
    for j in range(3, 12):
        E, px, py, pz = (ak.to_numpy(parts[k][j]).astype(np.float64) for k in ("E", "px", "py", "pz"))
        pt, phi = np.hypot(px, py), np.arctan2(py, px)
        y = 0.5 * np.log((E + pz) / (E - pz))
        J = [E.sum(), px.sum(), py.sum(), pz.sum()]
        Jy, Jphi = 0.5 * np.log((J[0] + J[3]) / (J[0] - J[3])), np.arctan2(J[2], J[1])
        dphi = (phi - Jphi + np.pi) % (2 * np.pi) - np.pi
        want = np.sum(pt * np.hypot(y - Jy, dphi)) / (pt.sum() * 0.8)
        assert tau1[j] == pytest.approx(want, rel=1e-6)
    assert np.all(tau2[3:] <= tau1[3:] + 1e-9) and np.all(tau3[3:] <= tau2[3:] + 1e-9)
    assert tau2[1] == 0 and tau3[2] == 0 and tau1[0] == 0


def test_two_prong_jet_has_small_tau21():
    """A jet made of two tight, well separated prongs: tau2/tau1 << 1 (the W-tagging variable)."""
    rng = np.random.default_rng(7)
    pts, ys, phis = [], [], []
    for y0, phi0 in ((0.0, 0.0), (0.5, 0.3)):
        pts += list(rng.uniform(5, 20, 15))
        ys += list(y0 + rng.normal(0, 0.01, 15))
        phis += list(phi0 + rng.normal(0, 0.01, 15))
    pt, y, phi = map(np.asarray, (pts, ys, phis))
    jag = lambda a: ak.Array([a])  # noqa: E731
    tau1, tau2, _ = nsubjettiness(jag(pt * np.cos(phi)), jag(pt * np.sin(phi)), jag(pt * np.sinh(y)),
                                             jag(pt * np.cosh(y)), R0=0.8, N=3)
    assert tau2[0] / tau1[0] < 0.1


def test_plain_layout_gives_identical_output(tmp_path, top_jets, converted_top):
    src = write_reference_h5(tmp_path / "plain.h5", top_jets, layout="plain")
    out = convert.top_tagging_h5_to_root(src, tmp_path / "plain.root")
    a, types = _arrays(out)
    b, _ = _arrays(converted_top)
    assert types == EXPECTED_TOP_TYPES
    for name in EXPECTED_TOP_TYPES:
        assert ak.all(a[name] == b[name]), name


def test_pandas_table_format_is_refused_with_a_fix(tmp_path, top_jets):
    src = write_reference_h5(tmp_path / "t.h5", top_jets, layout="pandas-table")
    with pytest.raises(DataError) as err:
        convert.top_tagging_h5_to_root(src, tmp_path / "t.root")
    assert "'table' format" in str(err.value) and "format='fixed'" in str(err.value)
    assert not (tmp_path / "t.root").exists()


def test_missing_label_names_closest_column(tmp_path, top_jets):
    import h5py

    src = write_reference_h5(tmp_path / "bad.h5", top_jets)
    with h5py.File(src, "a") as f:
        del f["table/block1_items"]
        f["table/block1_items"] = np.array([b"ttv", b"is_signal"])
    with pytest.raises(DataError) as err:
        convert.top_tagging_h5_to_root(src, tmp_path / "bad.root")
    assert "is_signal_new" in str(err.value) and "closest: is_signal" in str(err.value)


def test_not_hdf5_is_input_error(tmp_path):
    bad = tmp_path / "train.h5"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(InputFileError, match="not a readable HDF5 file"):
        convert.top_tagging_h5_to_root(bad, tmp_path / "train.root")


def test_failure_midway_leaves_no_output(tmp_path, top_jets, monkeypatch):
    src = write_reference_h5(tmp_path / "train.h5", top_jets)
    real_chunk, calls = convert.top_tagging_chunk, []

    def failing_chunk(columns, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk pulled out")
        return real_chunk(columns, **kw)

    monkeypatch.setattr(convert, "top_tagging_chunk", failing_chunk)
    with pytest.raises(RuntimeError):
        convert.top_tagging_h5_to_root(src, tmp_path / "train.root", chunk_rows=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.h5"]  # no output, no temp file


def _root_typename(array) -> str:
    """uproot's TTree typename for a NumPy array or a one-level jagged awkward array."""
    names = {"int64": "int64_t", "int32": "int32_t", "float32": "float", "float64": "double", "bool": "bool"}
    if isinstance(array, ak.Array) and array.ndim == 2:
        return names[str(ak.flatten(array).to_numpy().dtype)] + "[]"
    return names[str(np.asarray(array).dtype)]


def test_matches_generator_layout_when_available(converted_top):
    """Branch names and types equal those of the top-tagging generator's own chunk."""
    gen = pytest.importorskip("data_download.generators.top_tagging", reason="top-tagging generator not present")
    chunk = gen.generate_chunk(8, seed=5)
    expected = {"event": "int64_t"}
    for name, value in chunk.items():
        if isinstance(value, ak.Array) and value.fields:  # a record of jagged arrays: nX + X_field
            expected[f"n{name}"] = "int32_t"
            expected.update({f"{name}_{f}": _root_typename(value[f]) for f in value.fields})
        else:
            expected[name] = _root_typename(value)
            if isinstance(value, ak.Array) and value.ndim == 2:
                expected["n" + name.split("_")[0]] = "int32_t"
    _, types = _arrays(converted_top)
    assert types == expected


# ---------------------------------------------------------------------------------------------
# quark / gluon
# ---------------------------------------------------------------------------------------------


def make_qg(n=30, m=25, seed=11):
    rng = np.random.default_rng(seed)
    X = np.zeros((n, m, 4))
    for j in range(n):
        k = int(rng.integers(1, m))
        X[j, :k, 0] = rng.exponential(30, k) + 0.5
        X[j, :k, 1] = rng.normal(0, 0.2, k)
        X[j, :k, 2] = rng.normal(1.0, 0.2, k)
        X[j, :k, 3] = rng.choice([22, 211, -211, 130, 2212], k)
    y = (np.arange(n) % 3 == 0).astype(np.float64)
    return X, y


def test_quark_gluon_npz_to_root(tmp_path):
    X1, y1 = make_qg(seed=1)
    X2, y2 = make_qg(n=12, seed=2)
    np.savez(tmp_path / "QG_jets.npz", X=X1, y=y1)
    np.savez(tmp_path / "QG_jets_1.npz", X=X2, y=y2)
    out = convert.quark_gluon_npz_to_root([tmp_path / "QG_jets.npz", tmp_path / "QG_jets_1.npz"],
                                          tmp_path / "qg.root", chunk_rows=7)
    arrays, types = _arrays(out, tree="Jets")
    assert types == {"event": "int64_t", "is_quark": "int32_t", "jet_pt": "float", "jet_y": "float",
                     "jet_phi": "float", "jet_mass": "float", "nPart": "int32_t", "Part_pt": "float[]",
                     "Part_y": "float[]", "Part_phi": "float[]", "Part_pid": "int32_t[]"}
    X, y = np.concatenate([X1, X2]), np.concatenate([y1, y2])
    assert arrays["event"].to_list() == list(range(len(y)))
    assert arrays["is_quark"].to_list() == y.astype(int).tolist()
    assert ak.to_numpy(arrays["nPart"]).tolist() == (X[..., 0] > 0).sum(1).tolist()
    assert ak.all(arrays["Part_pt"][:, :-1] >= arrays["Part_pt"][:, 1:])
    pt, rap, phi = X[..., 0], X[..., 1], X[..., 2]
    px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
    pz, E = (pt * np.sinh(rap)).sum(1), (pt * np.cosh(rap)).sum(1)
    np.testing.assert_allclose(ak.to_numpy(arrays["jet_pt"]), np.hypot(px, py), rtol=1e-5)
    np.testing.assert_allclose(ak.to_numpy(arrays["jet_mass"]),
                               np.sqrt(np.maximum(E**2 - px**2 - py**2 - pz**2, 0)), rtol=1e-3, atol=1e-2)
    assert set(ak.flatten(arrays["Part_pid"]).to_list()) <= {22, 211, -211, 130, 2212}


def test_quark_gluon_bad_npz(tmp_path):
    np.savez(tmp_path / "QG_jets.npz", X=np.zeros((3, 4)), y=np.zeros(3))
    with pytest.raises(DataError, match="expected X of shape"):
        convert.quark_gluon_npz_to_root([tmp_path / "QG_jets.npz"], tmp_path / "qg.root")
    assert not (tmp_path / "qg.root").exists()


# ---------------------------------------------------------------------------------------------
# tar extraction and dispatch
# ---------------------------------------------------------------------------------------------


def _tar(path, members: dict):
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_untar_extracts_root_files(tmp_path):
    src = _tar(tmp_path / "JetClass_toy.tar", {"val_5M/HToBB_120.root": b"a", "val_5M/ZJetsToNuNu_120.root": b"bb"})
    main, outputs = convert.run_converter("untar", [src], tmp_path, src)
    assert main == tmp_path / "val_5M"
    assert [p.name for p in outputs] == ["HToBB_120.root", "ZJetsToNuNu_120.root"]
    assert (tmp_path / "val_5M" / "ZJetsToNuNu_120.root").read_bytes() == b"bb"
    assert not any(p.name.startswith(".extract") for p in tmp_path.iterdir())


def test_untar_refuses_path_traversal(tmp_path):
    src = _tar(tmp_path / "evil.tar", {"../escaped.root": b"x"})
    folder = tmp_path / "ds"
    folder.mkdir()
    with pytest.raises(InputFileError, match="cannot extract evil.tar"):
        convert.run_converter("untar", [src], folder, src)
    assert not (tmp_path / "escaped.root").exists()


def test_unknown_converter_suggests():
    with pytest.raises(DataError, match="did you mean untar"):
        convert.run_converter("untarr", [], ".", ".")


# ---------------------------------------------------------------------------------------------
# end to end: reference-layout files -> registry entry -> tasks/top_tagging.yaml
# ---------------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def place_reference_fixture(tmp_path, monkeypatch, *, n: int = 60, seed: int = 21) -> Path:
    """Write train/val/test.h5 in the reference layout where the shipped ``top_tagging`` entry
    expects them (under this test's $HEPML_DATA), and point the registry at a copy of the shipped
    one whose published md5s and sizes are replaced by the fixture files' own."""
    import hashlib

    import yaml

    import data_download.downloads as downloads

    folder = downloads.dataset_folder("top_tagging")
    folder.mkdir(parents=True)
    jets = make_top_jets(n=n, seed=seed)
    for name in ("train.h5", "val.h5", "test.h5"):
        write_reference_h5(folder / name, jets)
    registry = yaml.safe_load(downloads.REGISTRY_PATH.read_text())
    for entry in registry["datasets"]["top_tagging"]["files"]:
        data = (folder / entry["name"]).read_bytes()
        entry.update(md5=hashlib.md5(data).hexdigest(), size=len(data))
    patched = tmp_path / "registry.yaml"
    patched.write_text(yaml.safe_dump(registry))
    monkeypatch.setattr(downloads, "REGISTRY_PATH", patched)
    return folder


def test_reference_fixture_loads_through_top_tagging_task(tmp_path, monkeypatch):
    """Files in the reference HDF5 layout, placed where the real ``top_tagging`` registry entry
    expects them, are verified and converted by ``download`` (no network) and read by
    tasks/top_tagging.yaml with nothing changed but its ``files`` pointing at
    ``{download: top_tagging}``."""
    import yaml

    import data_download.downloads as downloads
    from data_download.downloads import dataset_path, download

    task_file = REPO / "tasks" / "top_tagging.yaml"
    if not task_file.exists():
        pytest.skip("tasks/top_tagging.yaml is not written yet")
    from hepml.data import load_dataset, task_from_dict

    folder = place_reference_fixture(tmp_path, monkeypatch)
    main = download("top_tagging", base_url="http://127.0.0.1:9", timeout=1)  # files present: no request
    assert {r["name"]: r["status"] for r in downloads.list_datasets()}["top_tagging"] == "verified"
    assert main == folder / "train.root" == dataset_path("top_tagging")

    doc = yaml.safe_load(task_file.read_text())
    ref = {"download": "top_tagging"}
    if "files" in doc:
        doc["files"] = [ref]
    for sample in (doc.get("samples") or {}).values():
        sample["files"] = [ref]
    data = load_dataset(task_from_dict(doc, base_dir=task_file.parent, source=str(task_file)))
    assert 0 < len(data.y) <= 180 and data.X.shape[0] == len(data.y)
    assert len(data.meta["files"]) == 3  # a task naming the dataset reads every split (train first)
    assert set(np.unique(data.y).tolist()) == {0, 1}  # both top and QCD jets made it through
    assert np.all(np.isfinite(data.X))
