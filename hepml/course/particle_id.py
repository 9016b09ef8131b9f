"""Exercise 9 — a HEP classification from the backup slides: particle identification (π, K, μ
particle), "RICH / tracking / calorimeter / muon-detector features".

Kaon versus pion tracks at an LHCb-like spectrometer, from the ``particle_id`` generator (a
parametric detector response: RICH Cherenkov angles and photon yields turned into
ΔlogL(h − π), track kinematics and quality). The whole hepml chain runs: the generator writes
a ROOT file, a task (the same YAML keys as ``tasks/*.yaml``) reads it with uproot into a
Dataset with a stratified train/validation/test split, a Standardizer is fitted on the training
split, and four classifiers are compared on the test split with the cut on the RICH's own
ΔlogL(K − π) — what an analysis would use without machine learning — as the reference:

- logistic regression and an MLP (NumPy core), gradient boosting (core and XGBoost, which
  must agree tree for tree).

Figures of merit are the ROC AUC (and its gain over the ΔlogL cut, with a bootstrap error on the
same test tracks) and the pion rejection 1/ε_π at 90 % kaon efficiency. The RICH likelihood is
already a strong discriminant: the nonlinear models add the momentum dependence and the other
ΔlogL's on top of it, while the linear logistic regression, which can only weigh ΔlogL(K − π)
linearly against the rest, gains little.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._util import check, figure

SEED = 9
N_TRACKS = 30_000  # all species; kaons and pions are about a third of them
FEATURES = ["TrackP", "TrackPt", "TrackEta", "TrackChi2PerDof", "TrackGhostProbability",
            "RichUsedAero", "RichUsedR1Gas", "RichUsedR2Gas", "RichAboveKaThres",
            "RichDLLe", "RichDLLmu", "RichDLLk", "RichDLLp", "RichDLLbt"]
DLL_CUT = "RICH ΔlogL(K−π) cut"
BOOST = {"n_estimators": 100, "max_depth": 4, "learning_rate": 0.3, "reg_lambda": 1.0, "base_score": 0.5}


def task_dict(root_file: str) -> dict:
    """The task, as it would be written in ``tasks/kaon_vs_pion.yaml`` (other species are dropped)."""
    return {
        "name": "course_kaon_vs_pion",
        "description": "Kaon (signal) vs pion tracks from the particle_id generator.",
        "tree": "Tracks",
        "files": [root_file],
        "label": {"branch": "label", "classes": {"pion": 3, "kaon": 4}},
        "features": list(FEATURES),
        "split": {"validation": 0.2, "test": 0.2, "seed": SEED},
    }


def make_dataset(out_dir):
    """Generate the ROOT file (seeded, so always the same tracks) and load the task from it."""
    from data_download.generators import generate

    from ..data import load_dataset, task_from_dict

    root = generate("particle_id", events=N_TRACKS, seed=SEED, out=Path(out_dir) / "particle_id.root")
    return load_dataset(task_from_dict(task_dict(root.name), base_dir=out_dir, source="particle_id exercise"))


def run(out_dir) -> dict:
    """Build the dataset, train four classifiers, compare them with the ΔlogL(K − π) cut, plot."""
    from xgboost import XGBClassifier

    from ..core.gradient_boosting import GradientBoostingClassifier
    from ..core.logistic_regression import LogisticRegression
    from ..core.mlp import MLP
    from ..data import Standardizer
    from ..evaluate.metrics import background_rejection_at, bootstrap, roc_auc, roc_curve

    out_dir = Path(out_dir)
    ds = make_dataset(out_dir)
    kaon = ds.class_names.index("kaon")
    scaler = Standardizer().fit(ds.train)
    train, val, test = (scaler.transform(part) for part in (ds.train, ds.val, ds.test))
    models = {
        "logistic regression (core)": LogisticRegression(C=1.0, solver="newton"),
        "MLP 32-32 (core)": MLP(hidden_sizes=(32, 32), epochs=15, batch_size=128, learning_rate=3e-3, seed=SEED),
        "gradient boosting (core)": GradientBoostingClassifier(**BOOST, tree_method="exact", seed=SEED),
        "gradient boosting (XGBoost)": XGBClassifier(**BOOST, tree_method="exact", n_jobs=1, random_state=SEED),
    }
    scores = {DLL_CUT: ds.test.X[:, FEATURES.index("RichDLLk")].astype(np.float64)}
    val_auc = {}
    for name, model in models.items():
        model.fit(train.X, train.y)
        scores[name] = np.asarray(model.predict_proba(test.X))[:, kaon].astype(np.float64)
        val_auc[name] = roc_auc(val.y == kaon, np.asarray(model.predict_proba(val.X))[:, kaon])
    is_kaon = test.y == kaon
    reference = scores[DLL_CUT]
    auc_gain = lambda k, a, b: roc_auc(k, a) - roc_auc(k, b)  # noqa: E731
    table = []
    for name, s in scores.items():
        rejection, error = background_rejection_at(is_kaon, s, signal_efficiency=0.9)
        gain = 0.0 if name == DLL_CUT else auc_gain(is_kaon, s, reference)
        table.append({"method": name, "test_auc": roc_auc(is_kaon, s), "pion_rejection_at_90pc_kaon_eff": rejection,
                      "rejection_error": error, "auc_minus_dll_cut": gain,
                      "auc_minus_dll_cut_error": 0.0 if name == DLL_CUT
                      else bootstrap(auc_gain, is_kaon, s, reference)})
    auc = {r["method"]: r["test_auc"] for r in table}
    gain = {r["method"]: (r["auc_minus_dll_cut"], r["auc_minus_dll_cut_error"]) for r in table}
    gb_diff = float(np.abs(scores["gradient boosting (core)"] - scores["gradient boosting (XGBoost)"]).max())
    check(gb_diff < 1e-5, f"core gradient boosting and XGBoost differ by {gb_diff}")
    check(auc[DLL_CUT] > 0.9, f"the RICH alone should separate K from π: {auc}")
    for name in models:
        check(auc[name] > 0.95 and abs(val_auc[name] - auc[name]) < 0.02, f"{name}: validation {val_auc} vs test {auc}")
    for name in ("gradient boosting (core)", "MLP 32-32 (core)"):  # nonlinear models use the RICH and more
        check(gain[name][0] > 2 * gain[name][1], f"{name} does not improve on the ΔlogL cut: {gain[name]}")

    roc_path = out_dir / "kaon_pion_rejection.png"
    with figure(roc_path, size=(9, 7)) as (fig, ax):
        for name, s in scores.items():
            eb, es, _ = roc_curve(is_kaon, s)
            keep = eb > 0
            ls = ":" if name == DLL_CUT else ("--" if "XGBoost" in name else "-")
            ax.semilogy(es[keep], 1 / eb[keep], lw=2, ls=ls, label=f"{name}: AUC {auc[name]:.3f}")
        ax.axvline(0.9, color="grey", ls="--")
        ax.set(xlabel=r"kaon efficiency $\varepsilon_K$", ylabel=r"pion rejection $1/\varepsilon_\pi$", xlim=(0.5, 1.0))
        ax.legend(fontsize=13, loc="lower left")
    dll_path = out_dir / "rich_dllk.png"
    dll = ds.test.X[:, FEATURES.index("RichDLLk")]
    with figure(dll_path, size=(9, 6.5)) as (fig, ax):
        bins = np.linspace(-60, 60, 61)
        ax.hist(dll[is_kaon], bins=bins, histtype="step", lw=2, density=True, label="kaons")
        ax.hist(dll[~is_kaon], bins=bins, histtype="step", lw=2, density=True, label="pions")
        ax.set(xlabel=r"RICH $\Delta\log\mathcal{L}(K-\pi)$", ylabel="tracks (normalised)")
        ax.legend(fontsize=14)
    text = "\n".join(f"{r['method']:<28} AUC {r['test_auc']:.4f} (vs cut {r['auc_minus_dll_cut']:+.4f} ± "
                     f"{r['auc_minus_dll_cut_error']:.4f})  1/eps_pi at eps_K = 0.9: "
                     f"{r['pion_rejection_at_90pc_kaon_eff']:.1f} ± {r['rejection_error']:.1f}" for r in table)
    return {"n_tracks_generated": N_TRACKS, "split_sizes": ds.split.sizes(), "class_counts": ds.class_counts(),
            "features": FEATURES, "table": text, "results": table, "validation_auc": val_auc,
            "max_diff_core_vs_xgboost_proba": gb_diff, "plots": [str(roc_path), str(dll_path)]}
