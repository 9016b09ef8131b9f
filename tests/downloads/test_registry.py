"""The shipped registry's content, registry validation, and local status / dataset_path (no network)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from data_download.downloads import dataset_folder, dataset_path, download, list_datasets, load_registry
from data_download.downloads.convert import CONVERTERS
from data_download.downloads.fetch import part_path
from hepml.errors import ConfigError, DownloadError

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {"top_tagging", "cms_ttbar_nanoaod", "quark_gluon", "jetclass_val"}
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: any request would be refused, none must be made


# ---------------------------------------------------------------------------------------------
# the shipped registry
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_registry_has_the_four_datasets_with_citations(registry):
    assert REQUIRED <= set(registry)
    for spec in registry.values():
        assert spec.title and spec.description and spec.licence and spec.checksum_source, spec.name
        assert re.search(r"doi:10\.\d{4,}/|arXiv:\d{4}\.\d{4,5}|CERN Open Data", spec.citation), spec.name
        assert spec.homepage.startswith("https://"), spec.name
        assert spec.convert is None or spec.convert in CONVERTERS
        for f in spec.files:
            assert f.urls and all(u.startswith("https://") for u in f.urls), f.name
            assert f.checksums or f.checksum_note, f"{spec.name}/{f.name} has neither checksum nor note"


def test_checksums_are_well_formed_and_sourced(registry):
    lengths = {"md5": 32, "sha256": 64, "adler32": 8}
    for spec in registry.values():
        for f in spec.files:
            for kind, value in f.checksums.items():
                assert re.fullmatch(rf"[0-9a-f]{{{lengths[kind]}}}", value), (spec.name, f.name, kind)
            if f.checksums:  # a stored checksum must say where it was copied from
                assert any(w in spec.checksum_source for w in ("from", "From")), spec.name


def test_published_values_are_pinned(registry):
    """Values copied from the authors' own sources (EnergyFlow's qg_jets.json; particle_transformer's
    get_datasets.py); a later edit of the YAML that changes them fails here."""
    qg = {f.name: f for f in registry["quark_gluon"].files}
    assert len(qg) == 20 and set(qg) == {"QG_jets.npz"} | {f"QG_jets_{i}.npz" for i in range(1, 20)}
    assert qg["QG_jets.npz"].sha256 == "3f27a02eab06e8b83ccc9d25638021e6e24c9361341730961f9d560dee12c257"
    assert qg["QG_jets_19.npz"].md5 == "6753508e34014cc69714a01fca20ec38"
    assert registry["jetclass_val"].files[0].md5 == "7235ccb577ed85023ea3ab4d5e6160cf"
    assert registry["cms_ttbar_nanoaod"].files[0].entries == ("Events", 1233000)
    assert registry["top_tagging"].convert == "top_tagging_h5" and registry["top_tagging"].main == "train.h5"
    top = {f.name: f for f in registry["top_tagging"].files}  # Star9daisy/hep-ml-lab + a second script
    assert (top["train.h5"].md5, top["train.h5"].size) == ("45663819f47c13724f67eb0fd80bfa5c", 1038496555)
    assert (top["val.h5"].md5, top["val.h5"].size) == ("dca4b7248027618f041f9baa86d360fc", 347378076)
    assert (top["test.h5"].md5, top["test.h5"].size) == ("13163479dee30a5fe546e4536cc3d04d", 347849376)
    (tt,) = registry["cms_ttbar_outreach"].files  # the portal's record 12354 metadata
    assert (tt.adler32, tt.size, tt.entries) == ("99ffd168", 3528995041, ("Events", 6423106))


def test_verified_and_unverifiable_entries(registry):
    """Every entry but the NanoAODv9 file is checked by a published checksum; that one says so."""
    for name, spec in registry.items():
        if name == "cms_ttbar_nanoaod":
            assert spec.checksum_kinds == "not published"
            assert all("not confirmed" in f.checksum_note for f in spec.files)
        else:
            assert all(f.checksums and not f.checksum_note for f in spec.files), name
    assert any("cms" in name and spec.checksum_kinds == "adler32" for name, spec in registry.items())


def test_docs_cover_every_entry(registry):
    text = (REPO / "docs" / "datasets.md").read_text()
    for name, spec in registry.items():
        assert f"`{name}`" in text, f"docs/datasets.md does not describe {name}"
    for needle in ("2603256", "3164691", "6619768", "TTToSemiLeptonic", "hepml data download"):
        assert needle in text


# ---------------------------------------------------------------------------------------------
# validation of a registry file
# ---------------------------------------------------------------------------------------------

GOOD = """
datasets:
  toy:
    title: toy
    description: toy
    licence: CC0-1.0
    citation: nobody
    files:
      - {name: a.root, urls: ["https://example.invalid/a.root"], md5: 0123456789abcdef0123456789abcdef}
"""


def _reg(tmp_path, text):
    p = tmp_path / "registry.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("old, new, message", [
    ("    licence: CC0-1.0", "    licnce: CC0-1.0", "registry toy: unknown key 'licnce'; did you mean 'licence'?"),
    ("md5: 0123456789abcdef0123456789abcdef", "md5: 0123", "registry toy.files[0]: md5 83 was read as a number"),
    ("md5: 0123456789abcdef0123456789abcdef", "md5: abc", "registry toy.files[0]: md5 'abc' is not 32 hex digits"),
    ("md5: 0123456789abcdef0123456789abcdef", "size: 10", "registry toy.files[0]: no checksum and no checksum_note"),
    ("    citation: nobody", "    citation: nobody\n    main: b.root", "main file 'b.root' is not one of ['a.root']"),
    ("    citation: nobody", "    citation: nobody\n    convert: untarr", "unknown converter 'untarr'; did you mean 'untar'?"),
    ('urls: ["https://example.invalid/a.root"]', "urls: [ftp.example]", "urls must be a list of http(s) URLs"),
    ("    citation: nobody\n", "", "registry toy: 'citation' is missing"),
])
def test_malformed_registry_entries_are_named(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        load_registry(_reg(tmp_path, GOOD.replace(old, new)))
    assert message in str(err.value)


def test_unknown_name_lists_known_closest_first(registry):
    with pytest.raises(ConfigError) as err:
        download("top_taging")
    msg = str(err.value)
    assert msg.startswith("unknown dataset 'top_taging'; known (closest first): top_tagging, ")
    assert all(name in msg for name in REQUIRED) and "hepml data list" in msg
    with pytest.raises(ConfigError, match=r"known \(closest first\): quark_gluon"):
        dataset_path("quarkgluon")


# ---------------------------------------------------------------------------------------------
# local status, dataset_path, the cache folder
# ---------------------------------------------------------------------------------------------

DATA = b"pretend ROOT bytes\n" * 100
TWO_FILES = f"""
datasets:
  toy:
    title: toy
    description: two files, one with a published md5, one without
    licence: CC0-1.0
    citation: nobody
    main: a.root
    files:
      - {{name: a.root, urls: ["https://example.invalid/a.root"], md5: {hashlib.md5(DATA).hexdigest()}, size: {len(DATA)}}}
      - {{name: b.root, urls: ["https://example.invalid/b.root"], checksum_note: none published}}
"""


def test_cache_folder_is_under_hepml_data(tmp_path, monkeypatch, registry):
    monkeypatch.setenv("HEPML_DATA", str(tmp_path / "cache"))
    assert dataset_folder("top_tagging") == tmp_path / "cache" / "downloads" / "top_tagging"
    assert dataset_folder("top_tagging", dest=tmp_path / "elsewhere") == tmp_path / "elsewhere" / "top_tagging"
    rows = {r["name"]: r for r in list_datasets()}
    assert set(rows) >= REQUIRED
    row = rows["top_tagging"]
    assert row["status"] == "missing" and row["licence"] == "CC-BY-4.0"
    assert row["size"] == 1038496555 + 347378076 + 347849376  # the three published file sizes
    assert row["path"] == str(tmp_path / "cache" / "downloads" / "top_tagging" / "train.root")
    assert {"name", "size", "licence", "status", "path", "description", "citation"} <= set(row)


def test_status_missing_partial_unverified_verified(tmp_path):
    reg = _reg(tmp_path, TWO_FILES)
    dest = tmp_path / "data"
    folder = dest / "toy"

    def status():
        (row,) = list_datasets(registry=reg, dest=dest)
        return row["status"]

    assert status() == "missing"
    with pytest.raises(DownloadError) as err:
        dataset_path("toy", registry=reg, dest=dest)
    assert str(err.value) == "dataset toy is not downloaded; run `hepml data download toy`"

    folder.mkdir(parents=True)
    part_path(folder / "a.root").write_bytes(DATA[:10])
    assert status() == "partial"
    with pytest.raises(DownloadError, match="only partly downloaded.*run `hepml data download toy`"):
        dataset_path("toy", registry=reg, dest=dest)

    part_path(folder / "a.root").unlink()
    (folder / "a.root").write_bytes(DATA)  # placed by hand: present, not yet checked
    (folder / "b.root").write_bytes(DATA)
    assert status() == "downloaded, not verified"
    assert dataset_path("toy", registry=reg, dest=dest) == folder / "a.root"  # verifies a.root on the way

    # download() checks what is there against the registry and fetches nothing
    assert download("toy", registry=reg, dest=dest, base_url=NO_NETWORK, timeout=1) == folder / "a.root"
    assert status() == "downloaded, not verified"  # b.root has no published checksum: never "verified"


def test_all_checksums_published_gives_verified(tmp_path):
    one = TWO_FILES.split("      - {name: b.root")[0].replace("two files", "one file")
    reg = _reg(tmp_path, one)
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "a.root").write_bytes(DATA)
    download("toy", registry=reg, dest=tmp_path / "data", base_url=NO_NETWORK, timeout=1)
    (row,) = list_datasets(registry=reg, dest=tmp_path / "data")
    assert row["status"] == "verified" and row["size"] == len(DATA) and row["checksum"] == "md5"


def test_hand_placed_corrupt_file_is_caught(tmp_path):
    reg = _reg(tmp_path, TWO_FILES)
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "a.root").write_bytes(DATA[:-1] + b"X")
    (folder / "b.root").write_bytes(DATA)
    with pytest.raises(DownloadError, match=r"checksum mismatch for toy/a.root: md5 expected"):
        dataset_path("toy", registry=reg, dest=tmp_path / "data")
