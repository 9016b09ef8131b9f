"""The command line: inspect on the real CMS file, fast start-up, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from hepml.cli import main


def test_inspect_shared_cms_file(cms_file, capsys):
    assert main(["inspect", str(cms_file)]) == 0
    out = capsys.readouterr().out
    assert "tree 'Events': 50,000 entries" in out
    for name, kind in [("nMuon", "flat"), ("Muon_pt", "jagged"), ("Muon_charge", "jagged")]:
        line = next(l for l in out.splitlines() if f" {name} " in l)
        assert kind in line


def test_inspect_filter_and_missing_tree(cms_file, capsys):
    assert main(["inspect", str(cms_file), "--filter", "Muon_p*"]) == 0
    out = capsys.readouterr().out
    assert "Muon_pt" in out and "Muon_phi" in out and "Muon_eta" not in out
    assert main(["inspect", str(cms_file), "--tree", "Event"]) == 2
    assert "closest: Events" in capsys.readouterr().err


def test_inspect_nested_and_fixed_size_kinds(tmp_path, capsys):
    import awkward as ak
    import numpy as np
    import uproot

    with uproot.recreate(tmp_path / "k.root") as f:
        f.mktree("T", {"fixed": ("float32", (3,)), "jag": "var * float32", "flat": "int32"})
        f["T"].extend({"fixed": np.zeros((2, 3), np.float32), "jag": ak.Array([[1.0], []]), "flat": np.array([1, 2], np.int32)})
    assert main(["inspect", str(tmp_path / "k.root")]) == 0
    out = capsys.readouterr().out
    assert "array[3]" in out and "jagged" in out and "flat" in out


def test_inspect_missing_and_non_root(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "none.root")]) == 2
    assert capsys.readouterr().err.startswith("error: file not found")
    (tmp_path / "x.root").write_bytes(b"\x00garbage")
    assert main(["inspect", str(tmp_path / "x.root")]) == 2
    assert "not a readable ROOT file" in capsys.readouterr().err


def test_tasks_lists_dimuon(capsys):
    assert main(["tasks"]) == 0
    assert "dimuon_charge" in capsys.readouterr().out


def test_help_imports_no_heavy_module():
    """`hepml --help` stays fast because no framework (nor numpy/uproot) is imported at start-up."""
    code = (
        "import sys; from hepml.cli import main; rc = main(['--help']);"
        "heavy = [m for m in ('numpy', 'uproot', 'awkward', 'torch', 'tensorflow', 'keras', 'xgboost', 'pandas', 'matplotlib') if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout
    assert "inspect" in res.stdout and "data" in res.stdout


def test_unknown_command_is_usage_error(capsys):
    assert main(["bogus"]) == 2
