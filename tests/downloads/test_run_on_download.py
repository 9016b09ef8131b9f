"""`--data NAME`: a preset made for generated jets runs unchanged on a downloaded public dataset."""

from __future__ import annotations

import json

import pytest

from hepml.cli import main
from hepml.data import load_task, task_from_dict
from hepml.data.task_config import DownloadRef, GeneratedRef, with_download
from hepml.errors import ConfigError

from .test_convert import place_reference_fixture

NO_NETWORK = "http://127.0.0.1:9"


def test_with_download_replaces_the_files_only():
    cfg = load_task("top_tagging")
    assert isinstance(cfg.files[0], GeneratedRef)
    new = with_download(cfg, "top_tagging")
    assert new.files == [DownloadRef(download="top_tagging")]
    assert new.features == cfg.features and new.label == cfg.label and new._base_dir == cfg._base_dir
    assert isinstance(cfg.files[0], GeneratedRef)  # the original is untouched


def test_with_download_refuses_sample_labelled_tasks_and_unknown_names():
    cfg = task_from_dict({"name": "t", "tree": "Events", "features": ["x"],
                          "samples": {"a": {"files": ["a.root"]}, "b": {"files": ["b.root"]}}})
    with pytest.raises(ConfigError, match="labels examples by sample"):
        with_download(cfg, "top_tagging")
    with pytest.raises(ConfigError, match="unknown dataset 'top_taging' for --data; did you mean 'top_tagging'"):
        with_download(load_task("top_tagging"), "top_taging")


def test_compare_without_the_download_says_how_to_get_it(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["compare", "top_tagging-quick", "--data", "top_tagging", "--models", "bdt", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "dataset top_tagging is not downloaded" in err and "hepml data download top_tagging" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_quick_preset_runs_unchanged_on_the_reference_layout(tmp_path, monkeypatch, capsys):
    """Reference-layout files (converted on download) go through the top_tagging-quick preset."""
    from data_download.downloads import download

    place_reference_fixture(tmp_path, monkeypatch, n=80, seed=5)
    download("top_tagging", base_url=NO_NETWORK, timeout=1)  # present and verified: no request
    out = tmp_path / "report"
    code = main(["compare", "top_tagging-quick", "--data", "top_tagging", "--models", "bdt",
                 "--set", "model.n_estimators=5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] + summary["n_test"] <= 240  # the 3 x 80 fixture jets, not 20,000 generated
    assert set(summary["entries"]) == {"core bdt", "xgboost bdt"}
    assert 0.0 <= summary["entries"]["xgboost bdt"]["auc_test"] <= 1.0
