"""The course exercises: each one's numbers asserted (the worked backprop table exactly in the core,
torch and Keras), the registry, the command line, and that a broken lecture claim is caught.

Each exercise runs once per test session (``_results``), into a temporary folder.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import hepml.course as course
from hepml.course import _util
from hepml.course.cli import course_app
from hepml.errors import ConfigError

LECTURE_ORDER = ["backprop", "sigmoid_chain_rule", "linear_models", "nonlinearity", "tree_growing", "ensembles",
                 "overfitting", "keras_snippets", "particle_id"]
_CACHE: dict = {}


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("course")


@pytest.fixture
def results(out_dir):
    def get(name):
        if name not in _CACHE:
            _CACHE[name] = course.run(name, out_dir)
        return _CACHE[name]

    return get


def _assert_outputs(res, out_dir):
    """PNGs exist and are PNG, results.json round-trips, no temporary file is left behind."""
    folder = out_dir / res["name"]
    assert res["plots"], "every exercise draws at least one plot"
    for png in res["plots"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "results.json").read_text()) == json.loads(json.dumps(res))
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name]


# ----------------------------------------------------------------------------- registry and CLI
def test_registry_in_lecture_order():
    assert [name for name, _ in course.list_exercises()] == LECTURE_ORDER
    assert all(title for _, title in course.list_exercises())


def test_unknown_exercise_is_a_config_error_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown exercise 'backprob'.*did you mean 'backprop'"):
        course.run("backprob", tmp_path)


def test_cli_list_and_run(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(course_app, ["list"])
    assert listed.exit_code == 0
    assert [line.split()[1] for line in listed.output.splitlines()] == LECTURE_ORDER
    ran = runner.invoke(course_app, ["run", "sigmoid_chain_rule", "--out", str(tmp_path)])
    assert ran.exit_code == 0, ran.output
    assert "1 exercise(s) reproduced" in ran.output
    assert (tmp_path / "sigmoid_chain_rule" / "sigmoid_derivative.png").exists()
    bad = runner.invoke(course_app, ["run", "trees", "--out", str(tmp_path)])
    assert bad.exit_code != 0 and isinstance(bad.exception, ConfigError)


def test_a_broken_lecture_claim_is_caught(tmp_path, monkeypatch):
    """The exercises' checks can fail: a wrong chain-rule product must stop the exercise."""
    from hepml.course import sigmoid_chain_rule

    sigma = sigmoid_chain_rule.sigma
    monkeypatch.setattr(sigmoid_chain_rule, "chain_rule", lambda x: sigma(x) * (1 + sigma(x)))  # sign slip
    with pytest.raises(_util.CourseCheckError, match="chain rule differs"):
        course.run("sigmoid_chain_rule", tmp_path)
    assert not (tmp_path / "sigmoid_chain_rule" / "results.json").exists()


# ----------------------------------------------------------------------------- the exercises
def test_backprop_reproduces_the_slide_table_exactly(results, out_dir):
    res = results("backprop")
    table = {"y": 1.1, "Q": 0.81, "dQ/dy": -1.8, "dQ/dw": -1.8, "dQ/db": -1.8, "w_new": 0.28, "b_new": 1.18}
    assert res["slide"] == table
    assert set(res["rows"]) == {"by hand", "core", "torch", "keras"}
    for framework, row in res["rows"].items():
        for column, value in table.items():
            assert round(row[column], 2) == value, (framework, column, row[column])
            assert row[column] == pytest.approx(value, abs=1e-12, rel=0), (framework, column)
    assert res["max_spread_between_frameworks"] <= 1e-15
    assert "keras" in res["table"] and "0.28" in res["table"] and "1.18" in res["table"]
    _assert_outputs(res, out_dir)


def test_keras_global_dtype_is_restored_after_float64_work(results):
    results("backprop")
    import keras

    assert keras.config.floatx() == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_sigmoid_derivative_by_the_chain_rule(results, out_dir):
    res = results("sigmoid_chain_rule")
    dev = res["max_deviation_from_sigma_1_minus_sigma"]
    assert dev["chain rule"] < 1e-15 and dev["core autograd"] < 1e-15
    assert 0 < dev["finite difference"] < 1e-9  # O(h²) truncation: close, not exact
    assert res["sigma_prime_at_0"] == 0.25
    _assert_outputs(res, out_dir)


def test_linear_regression_and_classification(results, out_dir):
    res = results("linear_models")
    reg, cls = res["regression"], res["classification"]
    np.testing.assert_allclose(reg["theta_gradient_descent"], reg["theta_least_squares"], atol=1e-8)
    np.testing.assert_allclose(reg["theta_sklearn"], reg["theta_least_squares"], atol=1e-10)
    assert reg["Q_at_theta_hat"] < reg["Q_at_theta_true"]
    np.testing.assert_allclose(reg["theta_least_squares"], reg["theta_true"], atol=0.3)
    assert cls["sign_loss_perceptron"] == 0.0 and cls["sign_loss_logistic"] <= 0.01
    assert cls["logistic_upper_bound"] >= cls["sign_loss_logistic"]
    np.testing.assert_allclose(cls["theta_logistic"], cls["theta_logistic_sklearn"], atol=1e-4)
    assert len(res["plots"]) == 2
    _assert_outputs(res, out_dir)


def test_stacked_linear_layers_stay_linear(results, out_dir):
    res = results("nonlinearity")
    alg = res["algebra"]
    assert alg["max_diff_products"] < 1e-12 and alg["max_diff_network_vs_collapsed"] < 1e-12
    assert alg["rms_residual_best_linear_fit_to_tanh_network"] > 0.05
    acc = res["test_accuracy"]
    assert acc["linear layers (no g)"] < res["chance_accuracy"] + 0.05
    assert acc["linear layers (no g)"] <= acc["logistic regression"] + 0.03
    assert acc["tanh network"] > 0.97
    assert res["max_diff_trained_linear_net_vs_collapsed"] < 1e-10
    _assert_outputs(res, out_dir)


def test_tree_growing_by_depth_and_piecewise_regression(results, out_dir):
    res = results("tree_growing")
    rows = res["classification_by_depth"]
    assert [r["depth"] for r in rows] == [1, 2, 3, 4, 5, 6]
    train = [r["train_accuracy"] for r in rows]
    assert train == sorted(train) and train[-1] > train[0]
    assert all(r["same_splits_as_sklearn"] and r["leaves"] <= 2 ** r["depth"] for r in rows)
    reg = res["regression_by_depth"]
    assert [r["steps"] for r in reg] == [2**r["depth"] for r in reg]
    mse = [r["mse"] for r in reg]
    assert all(b < a for a, b in zip(mse, mse[1:])) and all(r["same_splits_as_sklearn"] for r in reg)
    depth3 = next(r for r in reg if r["depth"] == 3)["pieces"]
    edges = [p[1] for p in depth3[:-1]]
    assert edges == sorted(edges) and [p[2] for p in depth3] == sorted(p[2] for p in depth3)  # √x increases
    assert res["piecewise_f_depth3"].count("\n") == 8
    _assert_outputs(res, out_dir)


def test_tree_forest_boosting_core_and_libraries(results, out_dir):
    res = results("ensembles")
    acc = {(r["model"], r["side"]): r["test_accuracy"] for r in res["results"]}
    assert res["max_diff_core_vs_xgboost_proba"] < 1e-5
    assert acc["gradient boosting", "core"] == acc["gradient boosting", "xgboost"]
    for side in ("core", "scikit-learn"):
        assert acc["random forest", side] > acc["single tree", side]
    assert abs(acc["single tree", "core"] - acc["single tree", "scikit-learn"]) < 0.03
    assert abs(acc["random forest", "core"] - acc["random forest", "scikit-learn"]) < 0.03
    assert len(res["results"]) == 6
    _assert_outputs(res, out_dir)


def test_under_and_over_fitting(results, out_dir):
    res = results("overfitting")
    train = [r["train_mse_median"] for r in res["polynomial"]]
    val = [r["val_mse_median"] for r in res["polynomial"]]
    best = res["best_degree"]
    assert all(b <= a + 1e-12 for a, b in zip(train, train[1:]))
    assert 3 <= best <= 10 and val[best] == min(val)
    assert val[1] > 2 * val[best] and val[-1] > 2 * val[best]  # under- and over-fitting on both sides
    deepest = res["trees"][-1]
    assert deepest["train_mse_median"] == 0.0 and deepest["val_mse_median"] > 2 * res["noise_variance"]
    _assert_outputs(res, out_dir)


def test_keras_snippets_in_keras3_torch_and_core(results, out_dir):
    res = results("keras_snippets")
    answers = res["keras3_answers"]
    assert answers["SGD(decay=1e-7)"].startswith("accepted; warning")  # silently ignored otherwise
    assert answers["fit(nb_epoch=1)"].startswith("TypeError")
    assert answers["import keras.wrappers.scikit_learn"].startswith("ModuleNotFoundError")
    assert answers["Dense(output_dim=50)"].startswith("ValueError") and "output_dim" in answers["Dense(output_dim=50)"]
    assert set(res["changes"]) == set(res["snippets"]) == {"keras1", "keras2", "keras3"}
    for name, snippet in res["snippets"].items():
        diffs = snippet["max_abs_diff_predictions"]
        assert diffs["keras vs core, Keras rule"] < 1e-10, name
        assert diffs["torch vs core, torch rule"] < 1e-10, name
        losses = snippet["loss_history"]
        assert losses["keras"][-1] < losses["keras"][0]
        np.testing.assert_allclose(losses["keras"], losses["core, Keras rule"], rtol=0, atol=1e-10)
    # Adam's ε placement really differs between Keras and torch: visible, but small
    assert 1e-7 < res["snippets"]["keras1"]["max_abs_diff_predictions"]["keras vs torch"] < 1e-2
    _assert_outputs(res, out_dir)


def test_particle_id_kaon_vs_pion(results, out_dir):
    res = results("particle_id")
    by = {r["method"]: r for r in res["results"]}
    assert res["split_sizes"]["train"] > 5000 and set(res["class_counts"]) == {"pion", "kaon"}
    assert res["max_diff_core_vs_xgboost_proba"] < 1e-5
    assert by["RICH ΔlogL(K−π) cut"]["test_auc"] > 0.9
    for name in ("MLP 32-32 (core)", "gradient boosting (core)"):
        assert by[name]["auc_minus_dll_cut"] > 2 * by[name]["auc_minus_dll_cut_error"] > 0
    assert all(r["pion_rejection_at_90pc_kaon_eff"] > 10 for r in res["results"])
    assert (out_dir / "particle_id" / "particle_id.root").exists()
    _assert_outputs(res, out_dir)
