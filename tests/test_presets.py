"""Every shipped task file, model file and run preset validates, and names things that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from hepml.compare import load_preset
from hepml.data import available_tasks, load_task
from hepml.frameworks.base import ALIASES, FRAMEWORKS
from hepml.models import available_models, load_model_file

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "configs" / "runs").glob("*.yaml"))


def test_shipped_tasks_and_models_are_found():
    assert {"dimuon_charge", "ttbar_vs_qcd", "jet_flavour", "particle_id", "top_tagging"} <= set(available_tasks())
    assert {"mlp", "deepsets", "transformer", "bdt", "mlp_constituents"} <= set(available_models())


@pytest.mark.parametrize("name", sorted(available_tasks()))
def test_task_validates(name):
    cfg = load_task(name)
    assert cfg.name == name and (cfg.features or cfg.objects)


@pytest.mark.parametrize("name", sorted(available_models()))
def test_model_file_validates(name):
    mf = load_model_file(name)
    assert mf.model.kind in ("mlp", "deepsets", "transformer", "bdt")


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_run_preset_validates(path):
    preset = load_preset(path.stem)
    load_task(preset["task"])
    for fw in preset.get("frameworks", []):
        assert fw in FRAMEWORKS or fw in ALIASES
    for model in preset["models"]:
        load_model_file(model, (preset.get("overrides") or {}).get(model))
    assert set(preset.get("overrides") or {}) <= set(preset["models"])


def test_every_physics_task_has_quick_and_full_presets():
    stems = {p.stem for p in PRESETS}
    for task in ("ttbar_vs_qcd", "jet_flavour", "particle_id", "top_tagging"):
        assert {f"{task}-quick", f"{task}-full"} <= stems
    assert "demo" in stems
