"""The TopLandscape Parquet repackaging of the top-tagging reference jets -> the same ROOT layout.

The fixture jets are written twice, once in the Zenodo HDF5 layout and once as the Particle
Transformer authors' Parquet tables; both converters must then give the same ROOT file.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from data_download.downloads import convert, dataset_files, download, list_datasets
from hepml.errors import DataError, InputFileError

from .test_convert import make_top_jets, write_reference_h5

REPO = Path(__file__).resolve().parents[2]
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: any request would be refused, none must be made


def write_landscape_parquet(path, jets: dict, row_group_size: int = 16) -> Path:
    """``jets`` as TopLandscape stores them: jagged real constituents, ``label``, extra jet columns."""
    real = jets["E"] > 0
    counts = real.sum(axis=1)
    jag = lambda a: ak.unflatten(a[real], counts)  # noqa: E731
    table = ak.zip({
        "label": jets["is_signal"].astype(np.int64),
        "jet_nparticles": counts.astype(np.int64),
        "part_px": jag(jets["PX"]), "part_py": jag(jets["PY"]),
        "part_pz": jag(jets["PZ"]), "part_energy": jag(jets["E"]),
    }, depth_limit=1)
    ak.to_parquet(table, path, row_group_size=row_group_size)
    return Path(path)


def landscape_tar(path, splits: dict) -> Path:
    """A tar archive ``TopLandscape/<split>_file.parquet`` for each ``splits`` entry (name -> jets)."""
    with tarfile.open(path, "w") as tf:
        for split, jets in splits.items():
            buf = write_landscape_parquet(Path(path).with_name(f"{split}_tmp.parquet"), jets)
            data = buf.read_bytes()
            buf.unlink()
            info = tarfile.TarInfo(f"TopLandscape/{split}_file.parquet")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return Path(path)


def _read(path):
    with uproot.open(path) as f:
        return f["Events"].arrays(library="ak")


def test_parquet_and_hdf5_give_the_same_root_file(tmp_path):
    jets = make_top_jets(n=40, seed=5)
    from_h5 = convert.top_tagging_h5_to_root(write_reference_h5(tmp_path / "train.h5", jets), tmp_path / "a.root")
    from_pq = convert.top_landscape_parquet_to_root(
        write_landscape_parquet(tmp_path / "train_file.parquet", jets, row_group_size=16), tmp_path / "b.root",
        chunk_rows=7)
    a, b = _read(from_h5), _read(from_pq)
    assert len(b) == 40 and b.fields == a.fields
    assert b["event"].to_list() == list(range(40))  # continuous across 3 row groups cut into 7-jet chunks
    for field in a.fields:
        if field != "truth_top_pt":
            assert ak.all(a[field] == b[field]), field
    assert ak.all(b["truth_top_pt"] == 0)  # the Parquet tables carry no truth top
    assert ak.any(a["truth_top_pt"] > 0)


def test_archive_converts_every_split_train_first(tmp_path):
    tar = landscape_tar(tmp_path / "TopLandscape.tar", {
        "test": make_top_jets(n=8, seed=1), "train": make_top_jets(n=12, seed=2), "val": make_top_jets(n=6, seed=3)})
    main, outputs = convert.run_converter("top_landscape_parquet", [tar], tmp_path, tar)
    folder = tmp_path / "TopLandscape"
    assert outputs == [folder / "train_file.root", folder / "val_file.root", folder / "test_file.root"]
    assert main == outputs[0]
    assert [len(_read(p)) for p in outputs] == [12, 6, 8]


def test_archive_without_parquet_is_refused(tmp_path):
    tar = tmp_path / "TopLandscape.tar"
    with tarfile.open(tar, "w") as tf:
        info = tarfile.TarInfo("TopLandscape/README")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(DataError, match="no Parquet files inside TopLandscape.tar"):
        convert.run_converter("top_landscape_parquet", [tar], tmp_path, tar)


def test_missing_column_names_the_closest(tmp_path):
    jets = make_top_jets(n=5, seed=4)
    path = write_landscape_parquet(tmp_path / "train_file.parquet", jets)
    table = ak.from_parquet(path)
    ak.to_parquet(ak.zip({"label": table["label"], "part_px": table["part_px"], "part_py": table["part_py"],
                          "part_pz": table["part_pz"], "part_energies": table["part_energy"]}, depth_limit=1), path)
    with pytest.raises(DataError, match=r"part_energy missing \(closest: part_energies"):
        convert.top_landscape_parquet_to_root(path, tmp_path / "out.root")
    assert not (tmp_path / "out.root").exists()


def test_not_parquet_is_input_error(tmp_path):
    bad = tmp_path / "train_file.parquet"
    bad.write_bytes(b"<html>not found</html>")
    with pytest.raises(InputFileError, match="is not a readable Parquet file"):
        convert.top_landscape_parquet_to_root(bad, tmp_path / "out.root")
    assert list(tmp_path.iterdir()) == [bad]


def test_verified_archive_loads_through_top_tagging_task(tmp_path):
    """A TopLandscape-layout archive checked against its md5 (as the shipped entry's is) is
    converted by ``download`` and read by tasks/top_tagging.yaml with only ``files`` changed."""
    import yaml

    from hepml.data import load_dataset, task_from_dict

    dest = tmp_path / "data"
    folder = dest / "toy_landscape"
    folder.mkdir(parents=True)
    tar = landscape_tar(folder / "TopLandscape.tar", {"train": make_top_jets(n=30, seed=6),
                                                     "val": make_top_jets(n=10, seed=7)})
    digest = hashlib.md5(tar.read_bytes()).hexdigest()
    reg = tmp_path / "registry.yaml"
    reg.write_text(f"""
datasets:
  toy_landscape:
    title: toy TopLandscape
    description: fixture
    licence: CC-BY-4.0
    citation: nobody
    convert: top_landscape_parquet
    main: TopLandscape.tar
    files:
      - {{name: TopLandscape.tar, urls: ["https://example.invalid/TopLandscape.tar"], md5: {digest}}}
""")
    main = download("toy_landscape", dest=dest, registry=reg, base_url=NO_NETWORK, timeout=1)  # present: no request
    assert main == folder / "TopLandscape" / "train_file.root"
    (row,) = list_datasets(registry=reg, dest=dest)
    assert row["status"] == "verified"
    files = dataset_files("toy_landscape", dest=dest, registry=reg)
    assert [p.name for p in files] == ["train_file.root", "val_file.root"]

    task_file = REPO / "tasks" / "top_tagging.yaml"
    doc = yaml.safe_load(task_file.read_text())
    doc["files"] = [str(p) for p in files]
    data = load_dataset(task_from_dict(doc, base_dir=task_file.parent, source=str(task_file)))
    assert 0 < len(data.y) <= 40 and set(np.unique(data.y).tolist()) == {0, 1}
    assert np.all(np.isfinite(data.X))


def test_shipped_entry_is_the_published_archive():
    from data_download.downloads import load_registry

    spec = load_registry()["top_tagging_parquet"]
    (f,) = spec.files
    assert f.md5 == "4fca2e47afbf321b0f201da6b804c404"  # jet-universe/particle_transformer get_datasets.py
    assert f.urls == ("https://hqu.web.cern.ch/datasets/TopLandscape/TopLandscape.tar",)
    assert spec.convert == "top_landscape_parquet" and "2603256" in spec.citation
