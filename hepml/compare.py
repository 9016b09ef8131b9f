"""``hepml compare``: every framework × model on one task, evaluated side by side, in one report.

The dataset is read once; every framework × model is trained by the shared trainer (same initial
weights, same batches) and evaluated on the same test split. The report holds TMVA's evaluation
(ROC overlay, ε_S at ε_B = 1/10/30 % for test and train, output distributions train vs test with KS
probabilities, variable ranking, correlation matrices, training curves, timing, k-fold), puma's
flavour-tagging plots when the classes are b/c/light, per-class figures for other multiclass tasks,
and the agreement between frameworks (max |Δ score| on the test set). Outputs are written to a
temporary folder renamed into place at the end, so a failed comparison leaves nothing behind.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import ConfigError, FrameworkError
from .evaluate import metrics as M

BACKGROUND_EFFICIENCIES = (0.01, 0.10, 0.30)
SIGNAL_EFFICIENCIES = (0.30, 0.50)  # 1/ε_B quoted at these ε_S (the top-tagging landscape's working points)
WORKING_POINTS = (0.60, 0.70, 0.77, 0.85)
#: f_c default: GN2's published value. Modern taggers separate c from b well, which moves the
#: optimum to larger f_c than DL1r's 0.018; the f_c scan in the report shows the whole trade-off.
DEFAULT_FC = 0.1
FLAVOUR_ALIASES = {"b": ("b", "bjet", "b-jet"), "c": ("c", "cjet", "c-jet"), "light": ("light", "l", "udsg", "lightjet")}


@dataclass
class Entry:
    """One trained framework × model."""

    framework: str
    model: str
    kind: str
    result: object
    folds: list = field(default_factory=list)  # (eb, es, auc) per k-fold fold

    @property
    def label(self) -> str:
        return f"{self.framework} {self.model}"

    @property
    def key(self) -> str:
        return f"{self.framework}_{self.model}"


def flavour_classes(class_names) -> Optional[dict]:
    """{'b': i, 'c': j, 'light': k} when the task's classes are b/c/light jets, else None."""
    found = {}
    for i, name in enumerate(class_names):
        low = name.lower()
        for flav, aliases in FLAVOUR_ALIASES.items():
            if low in aliases:
                found[flav] = i
    return found if len(found) == 3 and len(class_names) == 3 else None


def _find_variable(ds, patterns) -> Optional[tuple[str, np.ndarray]]:
    """A spectator or flat feature whose name matches one of ``patterns`` (regex, case-insensitive)."""
    for pat in patterns:
        rx = re.compile(pat, re.I)
        for name, values in ds.spectators.items():
            if rx.search(name):
                return name, np.asarray(values, dtype=np.float64)
        for j, name in enumerate(ds.feature_names):
            if rx.search(name):
                return name, ds.X[:, j].astype(np.float64)
    return None


def _binned_efficiency(values, passed, weights, edges):
    eff, err = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (values >= lo) & (values < hi)
        w = weights[sel]
        if w.sum() <= 0:
            eff.append(np.nan)
            err.append(np.nan)
            continue
        e = float(np.sum(w * passed[sel]) / w.sum())
        eff.append(e)
        err.append(M.binomial_error(e, w))
    return np.array(eff), np.array(err)


def load_preset(name) -> dict:
    """A run preset from ``configs/runs/NAME.yaml`` (or a path): task, frameworks, models, options."""
    from .config import load_yaml

    p = Path(str(name))
    if p.suffix not in (".yaml", ".yml"):
        p = Path(__file__).resolve().parents[1] / "configs" / "runs" / f"{name}.yaml"
    doc = load_yaml(p)
    allowed = {"task", "frameworks", "models", "kfold", "device", "fc", "reference", "overrides", "max_entries", "events", "description"}
    unknown = set(doc.data) - allowed
    if unknown:
        key = sorted(unknown)[0]
        from .data.root_io import closest

        close = closest(key, sorted(allowed))
        raise ConfigError(f"{p}:{doc.line_of((key,))}: unknown key {key!r} in run preset", f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}")
    if "task" not in doc.data:
        raise ConfigError(f"{p}: run preset has no 'task'", "add 'task: NAME'")
    return doc.data


def preset_exists(name) -> bool:
    return (Path(__file__).resolve().parents[1] / "configs" / "runs" / f"{name}.yaml").exists()


def compare(
    task,
    *,
    frameworks=("core", "torch", "keras", "xgboost"),
    models=("mlp", "bdt"),
    kfold: Optional[int] = None,
    device: str = "auto",
    out=None,
    fc: float = DEFAULT_FC,
    reference: Optional[str] = None,
    overrides: Optional[dict] = None,
    max_entries: Optional[int] = None,
    events: Optional[int] = None,
    data: Optional[str] = None,
    progress: bool = False,
    permutation_examples: int = 2000,
) -> dict:
    """Train and evaluate every supported framework × model on ``task``; returns the summary dict.

    ``overrides`` maps a model name to model-file overrides (``{"mlp": {"train": {"epochs": 3}}}``);
    ``reference`` is the label ('torch mlp') that ratio panels divide by (default: the first entry);
    ``events`` resizes the task's generated samples (the quick and full presets of one task);
    ``data`` names a registry dataset read instead of the task's files (then ``events`` is moot).
    """
    from .data import load_dataset, load_task, make_split
    from .frameworks.base import adapter_class
    from .models import load_model_file
    from .train import train

    # -- validate everything before reading or writing ----------------------------------------------
    cfg = load_task(task)
    if data is not None:
        from .data.task_config import with_download

        cfg = with_download(cfg, data)
    elif events is not None:
        from .data.task_config import with_generated_events

        cfg = with_generated_events(cfg, events)
    classes = {f: adapter_class(f) for f in frameworks}
    specs = {m: load_model_file(m, (overrides or {}).get(m)).model for m in models}
    combos = [(m, cls.name) for m in models for cls in classes.values() if specs[m].kind in cls.kinds]
    if not combos:
        raise FrameworkError(
            f"no framework among {list(frameworks)} builds any model among {list(models)}",
            "e.g. --models mlp,bdt with --frameworks core,torch,keras,xgboost",
        )
    if kfold is not None and kfold < 2:
        raise ConfigError(f"--kfold must be at least 2, received {kfold}", "use e.g. --kfold 3")
    out = Path(out) if out is not None else Path("runs") / f"compare-{cfg.name}"
    if out.exists() and not (out / "summary.json").exists():
        raise ConfigError(f"output folder {out} exists and is not a hepml comparison", "choose another --out")
    ds = load_dataset(cfg, max_entries=max_entries)

    # -- train -----------------------------------------------------------------------------------------
    entries: list[Entry] = []
    for m, fw in combos:
        over = (overrides or {}).get(m)
        res = train(cfg, fw, m, overrides=over, device=device, dataset=ds, progress=progress)
        entries.append(Entry(fw, Path(str(m)).stem, specs[m].kind, res))
    if kfold:
        for fold in range(kfold):
            split = make_split(ds.y, validation=cfg.split.validation, seed=cfg.split.seed, kfold=kfold, fold=fold, event=ds.event)
            ds_fold = replace(ds, split=split)
            for e, (m, fw) in zip(entries, combos):
                r = train(cfg, fw, m, overrides=(overrides or {}).get(m), device=device, dataset=ds_fold)
                y, w = ds.y[split.test], ds.weights[split.test]
                eb, es, _ = M.roc_curve(y == 0, r.test_proba[:, 0], w)
                e.folds.append((eb, es, M.roc_auc(y == 0, r.test_proba[:, 0], w)))

    from .atomic import atomic_dir

    with atomic_dir(out) as tmp:
        summary = _evaluate(cfg, ds, entries, tmp, fc=fc, reference=reference, kfold=kfold, permutation_examples=permutation_examples)
    summary["out"] = str(out)
    return summary


def _evaluate(cfg, ds, entries, out: Path, *, fc, reference, kfold, permutation_examples) -> dict:
    from . import predictions
    from .evaluate import plots
    from .evaluate.report import Report
    from .provenance import git_commit, machine, versions

    test, train_ = ds.split.test, ds.split.train
    yt, wt, ytr, wtr = ds.y[test], ds.weights[test], ds.y[train_], ds.weights[train_]
    n_classes = ds.n_classes
    flav = flavour_classes(ds.class_names)
    report = Report(f"hepml compare — {cfg.name}")
    summary: dict = {"task": cfg.name, "class_names": ds.class_names, "n_train": len(train_), "n_test": len(test), "entries": {}}
    intro = report.section("Run")
    intro.text(
        f"Task {cfg.name!r} ({cfg.description}); {len(ds):,} examples, classes {', '.join(ds.class_names)}; "
        f"train {len(train_):,} / validation {len(ds.split.val):,} / test {len(test):,}. "
        + ("Signal = first class." if n_classes == 2 else "")
    )

    # -- performance ------------------------------------------------------------------------------------
    perf_rows, curves = [], {}
    for e in entries:
        pt, ptr = e.result.test_proba, e.result.train_proba
        row: dict = {"method": e.label}
        s = summary["entries"].setdefault(e.label, {"framework": e.framework, "model": e.model, "device": e.result.device})
        if n_classes == 2:
            for part, y, w, p in (("test", yt, wt, pt), ("train", ytr, wtr, ptr)):
                auc = M.roc_auc(y == 0, p[:, 0], w)
                auc_err = M.bootstrap(lambda a, b, c: M.roc_auc(a, b, c), y == 0, p[:, 0], w, n=30)
                row[f"AUC {part}"] = f"{auc:.4f} ± {auc_err:.4f}"
                s[f"auc_{part}"], s[f"auc_{part}_err"] = auc, auc_err
                for eb in BACKGROUND_EFFICIENCIES:
                    v, err = M.signal_efficiency_at(y == 0, p[:, 0], w, background_efficiency=eb)
                    row[f"εS@εB={eb:.0%} {part}"] = f"{v:.3f} ± {err:.3f}"
                    s[f"eff_s_at_{int(eb * 100)}pct_{part}"] = v
                for es in SIGNAL_EFFICIENCIES:
                    rej, err = M.background_rejection_at(y == 0, p[:, 0], w, signal_efficiency=es)
                    finite = bool(np.isfinite(rej))  # no background passes: reported as None (JSON has no inf)
                    row[f"1/εB@εS={es:.0%} {part}"] = f"{rej:.1f} ± {err:.1f}" if finite else "no background left"
                    s[f"bkg_rejection_at_{int(es * 100)}pct_{part}"] = float(rej) if finite else None
                    s[f"bkg_rejection_at_{int(es * 100)}pct_{part}_err"] = float(err) if finite else None
            eb_c, es_c, _ = M.roc_curve(yt == 0, pt[:, 0], wt)
            curves[e.label] = (eb_c, es_c)
        else:
            s["log_loss_test"] = M.log_loss(yt, pt, wt)
            s["log_loss_train"] = M.log_loss(ytr, ptr, wtr)
            s["ovr_auc_test"] = dict(zip(ds.class_names, M.one_vs_rest_auc(yt, pt, wt)))
            row["log loss test"], row["log loss train"] = s["log_loss_test"], s["log_loss_train"]
            for cname, auc in s["ovr_auc_test"].items():
                row[f"AUC {cname} vs rest"] = auc
        s["accuracy_test"] = float(np.sum(wt * (pt.argmax(1) == yt)) / np.sum(wt))
        perf_rows.append(row)
    sec = report.section("Performance on the test set (and the train set, to check overtraining)")
    sec.table(perf_rows)
    if n_classes == 2:
        sec.image(plots.roc_curves(curves, out / "roc.png", title=cfg.name), "ROC curves of every method")
        sec.image(plots.rejection_curves(curves, out / "rejection.png", title=cfg.name), "Background rejection 1/εB (log)")

    # -- overtraining: output distributions with KS -------------------------------------------------------
    sec = report.section("Classifier output, train vs test (Kolmogorov–Smirnov probability)")
    ks_rows = []
    for e in entries:
        score_t, score_tr = e.result.test_proba[:, 0], e.result.train_proba[:, 0]
        per_class, ks = {}, {}
        for c, cname in enumerate(ds.class_names):
            a, b = score_tr[ytr == c], score_t[yt == c]
            ks[cname] = M.ks_test(a, b, wtr[ytr == c], wt[yt == c])[1]
            per_class[cname] = {"train": a, "test": b, "w_train": wtr[ytr == c], "w_test": wt[yt == c]}
        summary["entries"][e.label]["ks_probability"] = ks
        ks_rows.append({"method": e.label, **{f"KS p ({c})": v for c, v in ks.items()}})
        sec.image(plots.score_distributions(per_class, out / f"output_{e.key}.png", label=f"{e.label} p({ds.class_names[0]})", ks=ks), f"{e.label}: output distributions")
    sec.table(ks_rows)

    # -- agreement between frameworks ---------------------------------------------------------------------
    sec = report.section("Agreement between frameworks (same model, same initial weights, same batches)")
    agree_rows = []
    by_model: dict = {}
    for e in entries:
        by_model.setdefault(e.model, []).append(e)
    for model, group in by_model.items():
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                a, b = group[i], group[j]
                d = float(np.max(np.abs(a.result.test_proba - b.result.test_proba)))
                row = {"model": model, "pair": f"{a.framework} vs {b.framework}", "max |Δ score| (test)": d}
                if n_classes == 2:
                    row["Δ AUC"] = summary["entries"][a.label]["auc_test"] - summary["entries"][b.label]["auc_test"]
                agree_rows.append(row)
    summary["agreement"] = agree_rows
    if agree_rows:
        sec.table(agree_rows)
    else:
        sec.text("Only one framework per model was run: nothing to compare.")
    nets = {e.label: e.result.history for e in entries if e.kind != "bdt"}
    trees = {e.label: e.result.history for e in entries if e.kind == "bdt"}
    if nets:
        sec.image(plots.training_curves(nets, out / "training_curves.png"), "Loss per epoch for every framework: the curves of one model lie on top of each other")
    if trees:
        sec.image(plots.training_curves(trees, out / "boosting_curves.png", xlabel="Boosting round"), "Loss per boosting round of the BDTs")

    # -- variable ranking ---------------------------------------------------------------------------------
    sec = report.section("Variable ranking")
    rng = np.random.default_rng(1)
    sub = test if len(test) <= permutation_examples else np.sort(rng.choice(test, permutation_examples, replace=False))
    ranking = {}
    for e in entries:
        if e.result.record.get("input") != "flat":
            continue
        fn = _flat_predictor(e.result)
        imp = M.permutation_importance(fn, ds.X[sub].astype(np.float64), ds.y[sub], ds.weights[sub], n_repeats=1)
        ranking[e.label] = dict(zip(ds.feature_names, imp.tolist()))
        sec.image(plots.importance(imp, ds.feature_names, out / f"importance_{e.key}.png", title=e.label, xlabel="increase of log loss when shuffled"), f"{e.label}: permutation importance")
        gain = getattr(e.result.adapter, "importance", None)
        if callable(gain):
            gc = gain()
            for kind in ("gain", "cover"):
                vals = np.array([gc.get(kind, {}).get(j, 0.0) for j in range(ds.n_features)])
                sec.image(plots.importance(vals, ds.feature_names, out / f"{kind}_{e.key}.png", title=f"{e.label} {kind}", xlabel=f"mean {kind} per split"), f"{e.label}: {kind}")
    summary["permutation_importance"] = ranking
    if not ranking:
        sec.text("No method reads flat features; set models are ranked by their performance only.")

    # -- inputs ----------------------------------------------------------------------------------------------
    sec = report.section("Input features per class and their correlations")
    Xtr = ds.X[train_].astype(np.float64)
    if ds.n_features:
        sec.image(plots.feature_distributions(Xtr, ytr, ds.feature_names, ds.class_names, out / "features.png", weights=wtr), "Input features per class (training split)")
        for c, cname in enumerate(ds.class_names[:6]):
            Xc = Xtr[ytr == c]
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.nan_to_num(np.corrcoef(Xc, rowvar=False)) if len(Xc) > 1 else np.eye(ds.n_features)
            corr = np.atleast_2d(corr)
            sec.image(plots.correlation_matrix(corr, ds.feature_names, out / f"correlation_{predictions.column_name(cname)}.png", title=f"correlations, {cname}"), f"Correlation matrix, {cname}")

    # -- flavour tagging / multiclass --------------------------------------------------------------------------
    if flav is not None:
        summary["flavour"] = _flavour_section(report, ds, entries, out, flav=flav, fc=fc, reference=reference)
    elif n_classes > 2:
        summary["multiclass"] = _multiclass_section(report, ds, entries, out)

    # -- k-fold --------------------------------------------------------------------------------------------
    if kfold:
        sec = report.section(f"{kfold}-fold cross-validation (folds by event number modulo {kfold})")
        grid = np.linspace(0, 1, 201)
        rows = []
        for e in entries:
            es_grid = np.array([np.interp(grid, np.r_[0, eb], np.r_[0, es]) for eb, es, _ in e.folds])
            aucs = [a for _, _, a in e.folds]
            rows.append({"method": e.label, **{f"AUC fold {i}": a for i, a in enumerate(aucs)}, "mean": float(np.mean(aucs)), "std": float(np.std(aucs, ddof=1))})
            sec.image(plots.roc_band(grid, es_grid.mean(0), es_grid.min(0), es_grid.max(0), out / f"kfold_roc_{e.key}.png", label=e.label, folds=kfold), f"{e.label}: ROC over folds")
        sec.table(rows)
        summary["kfold"] = rows

    # -- timing and the run record ------------------------------------------------------------------------------
    sec = report.section("Timing and devices")
    trows = []
    for e in entries:
        t = e.result.timings
        trows.append({
            "method": e.label, "device": e.result.device, "train [s]": t["train_seconds"], "predict [s]": t["predict_seconds"],
            "train examples/s": t["train_examples_per_second"] or float("nan"), "predict examples/s": t["predict_examples_per_second"] or float("nan"),
            "epochs": e.result.record.get("epochs_run"),
        })
        summary["entries"][e.label]["timings"] = t
    sec.table(trows)
    record = {"versions": versions(), "git_commit": git_commit(), "machine": machine(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    summary["run"] = record
    report.section("Run record").code(json.dumps({**record, "task": cfg.model_dump(mode="json", by_alias=True)}, indent=1, default=str))

    # -- files ------------------------------------------------------------------------------------------------------
    predictions.write_predictions(out, ds.test, {e.key: e.result.test_proba for e in entries})
    report.write(out / "report.html")
    from .atomic import write_text

    write_text(out / "summary.json", json.dumps(_finite(summary), indent=1, default=_json, allow_nan=False))
    return summary


def _finite(o):
    """``o`` with every NaN/±inf float (an infinite rejection: no background left) as None, so
    summary.json is strict JSON that any reader accepts."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    return o


def _json(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _flat_predictor(result):
    """predict_proba on raw flat features, through the run's standardiser (for permutation importance)."""
    from .frameworks.base import Batch

    st = result.standardizer
    dtype = np.float64 if result.adapter.train.dtype == "float64" else np.float32

    def fn(X):
        Z = (X - st.mean_) / st.std_ if st is not None else X
        n = len(Z)
        return result.adapter.predict_proba(Batch(X=Z.astype(dtype), set=None, mask=None, y=np.zeros(n, np.int64), w=np.ones(n, dtype)))

    return fn


def _flavour_section(report, ds, entries, out, *, flav, fc, reference) -> dict:
    from .evaluate import plots

    b, c, light = flav["b"], flav["c"], flav["light"]
    test = ds.split.test
    y, w = ds.y[test], ds.weights[test]
    sec = report.section(f"Flavour tagging (D_b with f_c = {fc:g})")
    sec.text(
        "D_b = ln[(p_b + ε) / (f_c p_c + (1 − f_c) p_light + ε)], ε = 1e-10. "
        f"Default f_c = {DEFAULT_FC} as GN2 (DL1r used 0.018); the f_c scan below shows the c/light trade-off."
    )
    effs = np.linspace(0.5, 0.95, 46)
    light_curves, c_curves, wp_rows, scans, out_summary = {}, {}, [], {}, {}
    fcs = np.round(np.linspace(0.0, 0.5, 26), 3)
    for e in entries:
        p = e.result.test_proba
        d = M.b_discriminant(p[:, b], p[:, c], p[:, light], fc=fc)
        light_curves[e.label] = M.rejection_curve(d, y, signal=b, background=light, efficiencies=effs, weights=w)
        c_curves[e.label] = M.rejection_curve(d, y, signal=b, background=c, efficiencies=effs, weights=w)
        res = {}
        for wp in WORKING_POINTS:
            cut = M.working_point(d, y == b, wp, w)
            lr, lre = M.rejection(d[y == light], cut, w[y == light])
            cr, cre = M.rejection(d[y == c], cut, w[y == c])
            wp_rows.append({"method": e.label, "b-eff WP": f"{wp:.0%}", "cut D_b >": cut, "light rejection": f"{lr:.1f} ± {lre:.1f}", "c rejection": f"{cr:.2f} ± {cre:.2f}"})
            res[f"{int(wp * 100)}"] = {"cut": cut, "light_rejection": lr, "light_rejection_err": lre, "c_rejection": cr, "c_rejection_err": cre}
        scans[e.label] = M.fc_scan(p[:, b], p[:, c], p[:, light], y, b=b, c=c, light=light, efficiency_b=0.70, fcs=fcs, weights=w)
        out_summary[e.label] = {"working_points": res, "fc_scan": {"fc": fcs.tolist(), "c_rejection": scans[e.label][:, 0].tolist(), "light_rejection": scans[e.label][:, 1].tolist()}}
    ref = reference if reference in light_curves else next(iter(light_curves))
    sec.table(wp_rows)
    sec.image(plots.rejection_vs_efficiency(effs, light_curves, out / "light_rejection.png", background="light", reference=ref), "Light-jet rejection vs b-efficiency")
    sec.image(plots.rejection_vs_efficiency(effs, c_curves, out / "c_rejection.png", background="c", reference=ref), "c-jet rejection vs b-efficiency")
    sec.image(plots.fc_scan(fcs, scans, out / "fc_scan.png", efficiency_b=0.70), "f_c scan at 70 % b-efficiency")
    for var, patterns, unit in (("pT", [r"(^|_)pt$", r"pt"], " [GeV]"), ("eta", [r"(^|_)eta$", r"eta"], "")):
        found = _find_variable(ds.test, patterns)
        if found is None:
            continue
        name, values = found
        edges = np.unique(np.percentile(values, np.linspace(0, 100, 11)))
        curves = {}
        for e in entries:
            p = e.result.test_proba
            d = M.b_discriminant(p[:, b], p[:, c], p[:, light], fc=fc)
            cut = M.working_point(d, y == b, 0.70, w)
            for flav_name, k in (("b", b), ("c", c), ("light", light)):
                sel = y == k
                curves[f"{e.label} {flav_name}"] = _binned_efficiency(values[sel], d[sel] >= cut, w[sel], edges)
        sec.image(plots.efficiency_vs(edges, curves, out / f"efficiency_vs_{var}.png", xlabel=f"{name}{unit}", ylabel="efficiency at the 70 % b-WP"), f"Efficiency vs {name} at the 70 % working point")
    _multiclass_section(report, ds, entries, out)
    return out_summary


def _multiclass_section(report, ds, entries, out) -> dict:
    from .evaluate import plots

    test = ds.split.test
    y, w = ds.y[test], ds.weights[test]
    sec = report.section("Per class: one-vs-rest ROC, confusion matrix, efficiency vs momentum")
    summary = {}
    for e in entries:
        p = e.result.test_proba
        curves = {f"{cname} vs rest": M.roc_curve(y == k, p[:, k], w)[:2] for k, cname in enumerate(ds.class_names)}
        sec.image(plots.roc_curves(curves, out / f"ovr_roc_{e.key}.png", title=e.label), f"{e.label}: one-vs-rest ROC per class")
        cm = M.confusion_matrix(y, p, ds.n_classes, w)
        sec.image(plots.confusion(cm, ds.class_names, out / f"confusion_{e.key}.png", title=e.label), f"{e.label}: confusion matrix")
        summary[e.label] = {"confusion": cm.tolist()}
    found = _find_variable(ds.test, [r"^trackp$", r"(^|_)p$", r"momentum", r"^p$"])
    if found is not None:
        name, values = found
        edges = np.unique(np.percentile(values, np.linspace(0, 100, 11)))
        rows = []
        for e in entries:
            p = e.result.test_proba
            curves = {}
            for k, cname in enumerate(ds.class_names):
                # working point: the cut on p_k keeping 90 % of class k
                cut = M.working_point(p[:, k], y == k, 0.90, w)
                passed = p[:, k] >= cut
                curves[f"{cname} eff"] = _binned_efficiency(values[y == k], passed[y == k], w[y == k], edges)
                for j, other in enumerate(ds.class_names):
                    if j != k:
                        mis = float(np.sum(w[y == j] * passed[y == j]) / np.sum(w[y == j]))
                        rows.append({"method": e.label, "as": cname, "true": other, "misID at 90 % eff": mis})
            sec.image(plots.efficiency_vs(edges, curves, out / f"efficiency_vs_p_{e.key}.png", xlabel=f"{name} [GeV]", ylabel="efficiency at 90 % working point"), f"{e.label}: efficiency vs momentum")
        sec.table(rows, caption="misidentification rates (e.g. K → π: 'as' pion, 'true' kaon)")
        summary["misid"] = rows
        pair = _kaon_pion(ds.class_names)
        if pair is not None:
            summary["kaon_pion"] = _kaon_pion_vs_momentum(sec, entries, y, w, values, edges, pair, out, name)
    return summary


def _kaon_pion(class_names) -> Optional[tuple[int, int]]:
    """Indices of the kaon and pion classes when a task has both (named kaon/K and pion/pi)."""
    find = lambda names: next((i for i, c in enumerate(class_names) if str(c).lower() in names), None)  # noqa: E731
    k, pi = find({"kaon", "k", "k+", "k-"}), find({"pion", "pi", "π", "pi+", "pi-"})
    return None if k is None or pi is None else (k, pi)


def _kaon_pion_vs_momentum(sec, entries, y, w, p_track, edges, pair, out: Path, name: str) -> dict:
    """K efficiency and π → K misidentification (and the reverse) in momentum bins.

    The K (π) selection is the cut on p_K (p_π) that keeps 90 % of kaons (pions) over the whole
    test set, as an LHCb-style ProbNN cut; the curves show how it behaves with momentum, where
    the RICH thresholds make the separation change.
    """
    from .evaluate import plots

    k, pi = pair
    result = {}
    for e in entries:
        prob = e.result.test_proba
        curves, rec = {}, {"momentum_edges": np.asarray(edges).tolist()}
        for tag, cls, other in (("K", k, pi), ("pi", pi, k)):
            cut = M.working_point(prob[:, cls], y == cls, 0.90, w)
            passed = prob[:, cls] >= cut
            eff, eff_err = _binned_efficiency(p_track[y == cls], passed[y == cls], w[y == cls], edges)
            mis, mis_err = _binned_efficiency(p_track[y == other], passed[y == other], w[y == other], edges)
            other_tag = "pi" if tag == "K" else "K"
            curves[f"{tag} → {tag} (efficiency)"] = (eff, eff_err)
            curves[f"{other_tag} → {tag} (misID)"] = (mis, mis_err)
            rec[f"{tag}_efficiency"], rec[f"{tag}_efficiency_err"] = eff.tolist(), eff_err.tolist()
            rec[f"{other_tag}_as_{tag}"], rec[f"{other_tag}_as_{tag}_err"] = mis.tolist(), mis_err.tolist()
        sec.image(plots.efficiency_vs(edges, curves, out / f"kaon_pion_vs_p_{e.key}.png", xlabel=f"{name} [GeV]",
                                      ylabel="fraction selected (90 % working points)"),
                  f"{e.label}: K/π efficiency and misidentification vs momentum")
        result[e.label] = rec
    return result


def print_summary_table(summary: dict) -> None:
    """The terminal table of a comparison."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"hepml compare — {summary['task']} (test {summary['n_test']:,} examples)")
    binary = len(summary["class_names"]) == 2
    flavour = summary.get("flavour", {})
    cols = ["method", "device"] + (["AUC test", "AUC train", "εS@εB=1%", "εS@εB=10%"] if binary else ["log loss", "accuracy"])
    cols += ["light rej. @70% b", "c rej. @70% b"] if flavour else []
    cols += ["train s"]
    for col in cols:
        table.add_column(col, justify="right" if col not in ("method", "device") else "left")
    for label, s in summary["entries"].items():
        if binary:
            vals = [f"{s['auc_test']:.4f}±{s['auc_test_err']:.4f}", f"{s['auc_train']:.4f}", f"{s['eff_s_at_1pct_test']:.3f}", f"{s['eff_s_at_10pct_test']:.3f}"]
        else:
            vals = [f"{s['log_loss_test']:.4f}", f"{s['accuracy_test']:.4f}"]
        if flavour:
            wp = flavour[label]["working_points"]["70"]
            vals += [f"{wp['light_rejection']:.1f}", f"{wp['c_rejection']:.2f}"]
        table.add_row(label, s["device"], *vals, f"{s['timings']['train_seconds']:.1f}")
    console = Console()
    console.print(table)
    for row in summary.get("agreement", []):
        console.print(f"  {row['model']}: {row['pair']}: max |Δ score| = {row['max |Δ score| (test)']:.2e}")
    console.print(f"report: {summary['out']}/report.html")
