"""The generator framework: chunking, seeding, workers, NanoAOD-like ROOT output, errors, CLI."""

from __future__ import annotations

import textwrap

import awkward as ak
import numpy as np
import pytest
import uproot

import data_download.generators as gens
from data_download.generators import GENERATORS, MAX_SEED, OutputFileError, chunk_plan, describe, generate
from data_download.generators import particle_id
from hepml.errors import ConfigError, FrameworkError, HepmlError

TOY_JAGGED = '''
"""Toy generator with jets: flat MET plus jagged Jet_* branches.

Second paragraph, not part of the description.
"""
import awkward as ak
import numpy as np

TREE = "Events"
CHUNK = 4
BRANCH_DOCS = {"MET": "missing ET, GeV"}


def generate_chunk(n, seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 4, n)
    pt = rng.exponential(30.0, counts.sum()).astype(np.float32)
    eta = rng.uniform(-2.5, 2.5, counts.sum()).astype(np.float32)
    return {
        "event": np.full(n, -7),  # the framework numbers events itself
        "MET": rng.exponential(40.0, n),
        "nJet": counts.astype(np.int32),  # agrees with the jagged lengths, replaced by uproot's counter
        "Jet_pt": ak.unflatten(pt, counts),
        "Jet_eta": ak.unflatten(eta, counts),
    }
'''

TOY_FAILING = '''
"""Toy generator whose third chunk fails."""
import numpy as np

TREE = "Events"
CHUNK = 5


def generate_chunk(n, seed):
    if n < 5:
        raise RuntimeError("toy generator failed on purpose")
    return {"x": np.zeros(n)}
'''

TOY_MISSING_DEP = '''
"""Toy generator that needs a package nobody has."""
import hepml_package_that_does_not_exist  # noqa: F401

TREE = "Events"
CHUNK = 10


def generate_chunk(n, seed):
    raise AssertionError("never reached")
'''

TOY_PID = '''
"""Toy generator that records which process made each chunk."""
import os

import numpy as np

TREE = "Events"
CHUNK = 2


def generate_chunk(n, seed):
    return {"pid": np.full(n, os.getpid(), dtype=np.int64)}
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """Register toy generator modules (written to an importable folder) under test names."""
    src = tmp_path / "toy_src"
    src.mkdir()

    def add(name, code):
        module = f"hepml_toy_{name}_{abs(hash(str(tmp_path))) % 10**8}"
        (src / f"{module}.py").write_text(textwrap.dedent(code))
        monkeypatch.setitem(GENERATORS, name, module)
        return name

    monkeypatch.syspath_prepend(str(src))  # spawned workers inherit sys.path
    return add


def read(path, tree):
    return uproot.open(path)[tree].arrays(library="np")


def test_unknown_name_lists_valid_names_and_suggests(tmp_path):
    with pytest.raises(ConfigError) as err:
        generate("particle_idd", events=10, seed=1, out=tmp_path / "x.root")
    message = str(err.value)
    assert "'particle_idd'" in message and "did you mean 'particle_id'" in message
    for name in ("ttbar_vs_qcd", "jet_flavour", "top_tagging", "particle_id"):
        assert name in message
    assert "\n" not in message
    assert not (tmp_path / "x.root").exists()


@pytest.mark.parametrize("kwargs, key", [
    ({"events": 0}, "events=0"), ({"events": -3}, "events=-3"), ({"events": True}, "events=True"),
    ({"events": 10, "seed": -1}, "seed=-1"), ({"events": 10, "workers": 0}, "workers=0"),
])
def test_bad_counts_are_config_errors(tmp_path, kwargs, key):
    kwargs = {"seed": 1, **kwargs}
    with pytest.raises(ConfigError, match=key):
        generate("particle_id", out=tmp_path / "x.root", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_chunk_plan_sizes_and_seeds():
    plan = chunk_plan(2500, 1000, seed=7)
    assert [(o, s) for o, s, _ in plan] == [(0, 1000), (1000, 1000), (2000, 500)]
    seeds = [s for _, _, s in plan]
    assert all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in seeds)
    assert len(set(seeds)) == 3
    # chunk i's seed depends on (seed, i) only: a longer run starts with the same chunks
    assert [s for _, _, s in chunk_plan(5000, 1000, seed=7)][:3] == seeds
    assert [s for _, _, s in chunk_plan(2500, 1000, seed=8)] != seeds


def test_same_content_whatever_the_worker_count(tmp_path, monkeypatch):
    monkeypatch.setattr(particle_id, "CHUNK", 700)  # 2000 tracks -> chunks of 700, 700, 600
    one = generate("particle_id", events=2000, seed=3, out=tmp_path / "w1.root", workers=1)
    two = generate("particle_id", events=2000, seed=3, out=tmp_path / "w2.root", workers=2)
    a, b = read(one, "Tracks"), read(two, "Tracks")
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(a["event"], np.arange(2000))
    assert a["event"].dtype == np.int64
    # chunk 1 is exactly generate_chunk(700, seed of chunk 1)
    _, _, seed1 = chunk_plan(2000, 700, 3)[1]
    direct = particle_id.generate_chunk(700, seed1)
    np.testing.assert_array_equal(a["TrackP"][700:1400], direct["TrackP"])


def test_workers_run_chunks_in_other_processes(tmp_path, toy):
    import os

    name = toy("pid", TOY_PID)
    serial = read(generate(name, events=8, seed=1, out=tmp_path / "s.root", workers=1), "Events")
    parallel = read(generate(name, events=8, seed=1, out=tmp_path / "p.root", workers=2), "Events")
    assert set(serial["pid"]) == {os.getpid()}
    assert os.getpid() not in set(parallel["pid"])
    np.testing.assert_array_equal(parallel["event"], np.arange(8))


def test_seed_changes_content(tmp_path):
    a = read(generate("particle_id", events=300, seed=1, out=tmp_path / "a.root"), "Tracks")
    b = read(generate("particle_id", events=300, seed=1, out=tmp_path / "b.root"), "Tracks")
    c = read(generate("particle_id", events=300, seed=2, out=tmp_path / "c.root"), "Tracks")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["TrackP"], c["TrackP"])


def test_jagged_branches_get_nanoaod_counters(tmp_path, toy):
    name = toy("jagged", TOY_JAGGED)
    out = generate(name, events=10, seed=4, out=tmp_path / "jets.root")  # chunks 4, 4, 2
    tree = uproot.open(out)["Events"]
    assert type(tree).__name__.startswith("Model_TTree")
    assert set(tree.keys()) == {"event", "MET", "nJet", "Jet_pt", "Jet_eta"}
    assert tree.typenames()["nJet"].startswith("int32")
    arrays = tree.arrays(library="ak")
    np.testing.assert_array_equal(ak.to_numpy(arrays["event"]), np.arange(10))
    np.testing.assert_array_equal(ak.to_numpy(arrays["nJet"]), ak.to_numpy(ak.num(arrays["Jet_pt"])))
    assert int(ak.sum(arrays["nJet"])) > 0
    # content equals the chunks written one after the other
    module = gens.load(name)
    parts = [module.generate_chunk(size, seed) for _, size, seed in chunk_plan(10, 4, 4)]
    expected = ak.concatenate([part["Jet_pt"] for part in parts])
    assert ak.all(ak.flatten(arrays["Jet_pt"]) == ak.flatten(expected))
    assert describe(name) == "Toy generator with jets: flat MET plus jagged Jet_* branches."


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_generator_leaves_no_file(tmp_path, toy, workers):
    name = toy("failing", TOY_FAILING)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(RuntimeError, match="failed on purpose"):
        generate(name, events=12, seed=1, out=out_dir / "bad.root", workers=workers)
    assert list(out_dir.iterdir()) == []  # neither the target nor a temporary file


def test_missing_optional_dependency_is_framework_error(tmp_path, toy):
    name = toy("needsdep", TOY_MISSING_DEP)
    with pytest.raises(FrameworkError, match="hepml_package_that_does_not_exist"):
        generate(name, events=5, seed=1, out=tmp_path / "x.root")


def test_unwritable_output_is_one_line_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(OutputFileError) as err:
        generate("particle_id", events=5, seed=1, out=blocker / "x.root")
    assert isinstance(err.value, HepmlError)
    assert "not_a_folder" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(OutputFileError, match="is a folder"):
        generate("particle_id", events=5, seed=1, out=tmp_path)


def test_overwrites_existing_file_atomically(tmp_path):
    out = tmp_path / "pid.root"
    out.write_text("old content")
    generate("particle_id", events=50, seed=1, out=out)
    assert uproot.open(out)["Tracks"].num_entries == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pid.root"]


def test_describe_gives_first_paragraph():
    text = describe("particle_id")
    assert text.startswith("Charged-particle identification") and "\n" not in text


def test_cli_generates_particle_id(tmp_path, capsys):
    from hepml.cli import main

    out = tmp_path / "pid.root"
    code = main(["data", "generate", "particle_id", "--events", "2000", "--seed", "3", "--out", str(out)])
    assert code == 0
    tree = uproot.open(out)["Tracks"]
    assert tree.num_entries == 2000
    assert {"event", "label", "TrackP", "RichDLLk", "MuonIsMuon"} <= set(tree.keys())
    assert "2000/2000" in capsys.readouterr().err  # the progress bar went to stderr


def test_cli_bad_name_is_one_line_error(tmp_path, capsys):
    from hepml.cli import main

    out = tmp_path / "x.root"
    code = main(["data", "generate", "partcle_id", "--events", "10", "--out", str(out)])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown generator 'partcle_id'") and "particle_id" in err
    assert len(err.splitlines()) == 1
    assert not out.exists()
