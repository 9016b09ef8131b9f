"""Every bad input gets one clear line naming the problem and the fix, a non-zero exit, and no output."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from hepml.cli import main
from hepml.errors import ConfigError, DataError, ExpressionError, InputFileError, MissingKeyError
from hepml.data import load_dataset

from ..conftest import jet_events, write_root


@pytest.fixture
def jets(tmp_path):
    write_root(tmp_path / "jets.root", jet_events(200, seed=3))
    return tmp_path


def _write(tmp_path, body, name="task.yaml"):
    p = tmp_path / name
    p.write_text(body if isinstance(body, str) else yaml.safe_dump({"name": "t", **body}, sort_keys=False))
    return p


GOOD = {
    "files": ["jets.root"],
    "label": {"branch": "MET_pt > 30", "classes": {"low": 0, "high": 1}},
    "features": [{"name": "HT", "expr": "sum(Jet_pt)"}],
}


def _cli_fails(capsys, tmp_path, task, pattern):
    """Run `hepml dataset TASK --out` and check: exit 2, one line on stderr matching, nothing written."""
    out = tmp_path / "out" / "ds.npz"
    rc = main(["dataset", str(task), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert pattern in err, err
    assert ";" in err  # the fix follows the problem
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
    return err


def test_good_task_writes_output(jets, capsys):
    out = jets / "out" / "ds.npz"
    assert main(["dataset", str(_write(jets, GOOD)), "--out", str(out)]) == 0
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["ds.npz"]


def test_missing_file(jets, capsys):
    _cli_fails(capsys, jets, _write(jets, {**GOOD, "files": ["nope.root"]}), "file not found")


def test_glob_without_match(jets, capsys):
    _cli_fails(capsys, jets, _write(jets, {**GOOD, "files": ["nope_*.root"]}), "no file matches 'nope_*.root'")


def test_not_a_root_file(jets, capsys):
    (jets / "fake.root").write_text("this is not ROOT")
    _cli_fails(capsys, jets, _write(jets, {**GOOD, "files": ["fake.root"]}), "is not a readable ROOT file")


def test_wrong_tree_lists_closest(jets, capsys):
    err = _cli_fails(capsys, jets, _write(jets, {**GOOD, "tree": "Event"}), "tree 'Event' not found")
    assert "closest: Events" in err


def test_wrong_branch_lists_closest(jets, capsys):
    body = {**GOOD, "features": ["Jet_ptt"]}
    err = _cli_fails(capsys, jets, _write(jets, body), "branch 'Jet_ptt'")
    assert "closest: Jet_pt" in err


def test_expression_error_names_expression(jets, capsys):
    body = {**GOOD, "features": [{"name": "bad", "expr": "sum(Jet_pt"}]}
    _cli_fails(capsys, jets, _write(jets, body), "'sum(Jet_pt'")


def test_per_object_feature_in_event_mode(jets, capsys):
    body = {**GOOD, "features": ["Jet_pt"]}
    err = _cli_fails(capsys, jets, _write(jets, body), "feature 'Jet_pt' is per-object")
    assert "nth(x, 0)" in err


def test_empty_selection(jets, capsys):
    body = {**GOOD, "selection": "MET_pt < 0"}
    err = _cli_fails(capsys, jets, _write(jets, body), "selection 'MET_pt < 0' kept 0 of 200 entries")
    assert "loosen" in err


def test_class_without_examples(jets, capsys):
    body = {**GOOD, "selection": "MET_pt < 30"}
    _cli_fails(capsys, jets, _write(jets, body), "class 'high' has no examples")


def test_nan_fail_drop_fill(jets, capsys):
    body = {**GOOD, "features": [{"name": "lead", "expr": "max(Jet_pt)"}]}  # NaN for events without jets
    n_empty = int((np.asarray(__import__("awkward").num(jet_events(200, seed=3)["Jet"].pt)) == 0).sum())
    assert n_empty > 0
    err = _cli_fails(capsys, jets, _write(jets, body), f"feature 'lead' has {n_empty} NaN/inf values")
    assert "nan: drop" in err
    dropped = load_dataset(_write(jets, {**body, "nan": "drop"}))
    assert len(dropped) == 200 - n_empty and dropped.meta["dropped_nan"] == n_empty
    filled = load_dataset(_write(jets, {**body, "nan": "fill", "nan_fill": -1}))
    assert len(filled) == 200 and (filled.X[:, 0] == -1).sum() == n_empty


def test_malformed_yaml_names_line(jets, capsys):
    text = "name: t\nfiles: [jets.root]\nlabel:\n  branch: x\n   classes: {a: 1}\n"
    err = _cli_fails(capsys, jets, _write(jets, text), "malformed YAML")
    assert "task.yaml:5" in err


def test_unknown_key_suggests_and_names_line(jets, capsys):
    text = yaml.safe_dump({"name": "t", **GOOD}, sort_keys=False).replace("label:", "lables:")
    err = _cli_fails(capsys, jets, _write(jets, text), "unknown key 'lables'")
    assert "did you mean 'label'?" in err and "task.yaml:" in err


def test_nested_unknown_key(jets):
    body = {**GOOD, "objects": {"j": {"fields": ["Jet_pt"], "max": 2, "sortby": "Jet_pt"}}}
    with pytest.raises(ConfigError, match=r"unknown key 'sortby' in objects.j.*did you mean 'sort_by'"):
        load_dataset(_write(jets, body))


def test_wrong_type_and_missing_field(jets):
    with pytest.raises(ConfigError, match=r"task.yaml:\d+: objects.j.max: .*received 'two'"):
        load_dataset(_write(jets, {**GOOD, "objects": {"j": {"fields": ["Jet_pt"], "max": "two"}}}))
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        body = dict(GOOD)
        (jets / "noname.yaml").write_text(yaml.safe_dump(body))
        load_dataset(jets / "noname.yaml")


def test_conflicting_options_name_both(jets):
    with pytest.raises(ConfigError, match="'label' conflicts with 'samples'"):
        body = {k: v for k, v in GOOD.items() if k != "files"}
        load_dataset(_write(jets, {**body, "samples": {"a": {"files": ["jets.root"]}, "b": {"files": ["jets.root"]}}}))
    with pytest.raises(ConfigError, match="give either 'files'.*or 'samples'.*not both"):
        load_dataset(_write(jets, {**GOOD, "samples": {"a": {"files": ["jets.root"]}, "b": {"files": ["jets.root"]}}}))


def test_duplicate_key(jets):
    with pytest.raises(ConfigError, match="key 'tree' appears twice"):
        load_dataset(_write(jets, "name: t\ntree: A\ntree: B\n"))


def test_unknown_task_name_suggests():
    with pytest.raises(ConfigError, match="unknown task 'dimuon_charg'.*did you mean dimuon_charge"):
        load_dataset("dimuon_charg")


def test_error_classes_are_hepml_errors(jets):
    with pytest.raises(InputFileError):
        load_dataset(_write(jets, {**GOOD, "files": ["nope.root"]}))
    with pytest.raises(MissingKeyError):
        load_dataset(_write(jets, {**GOOD, "tree": "nope"}))
    with pytest.raises(ExpressionError):
        load_dataset(_write(jets, {**GOOD, "features": ["Jet_pt"]}))
    with pytest.raises(DataError):
        load_dataset(_write(jets, {**GOOD, "selection": "MET_pt < 0"}))


def test_debug_flag_shows_traceback(jets):
    with pytest.raises(InputFileError):
        main(["--debug", "dataset", str(_write(jets, {**GOOD, "files": ["nope.root"]}))])
