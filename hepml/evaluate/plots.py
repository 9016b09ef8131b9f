"""The comparison plots (matplotlib, mplhep styling), each written atomically as a PNG.

Every function takes plain arrays/dicts and a path, draws one figure with axis labels (units where
they exist) and a legend naming framework and model, and returns the path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_path

_STYLE_SET = False


def _plt():
    global _STYLE_SET
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not _STYLE_SET:
        try:
            import mplhep as hep

            hep.style.use("ROOT")
        except Exception:  # styling is cosmetic; never fail a report for it
            pass
        plt.rcParams.update({"figure.dpi": 90, "legend.fontsize": 11, "axes.labelsize": 14, "axes.titlesize": 14, "figure.figsize": (7.5, 6)})
        _STYLE_SET = True
    return plt


def _save(fig, path) -> Path:
    plt = _plt()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return path


def roc_curves(curves: dict, path, *, title: str = "") -> Path:
    """TMVA's canvas: background rejection (1 − ε_B) versus signal efficiency ε_S, all methods."""
    plt = _plt()
    fig, ax = plt.subplots()
    for label, (eb, es) in curves.items():
        ax.plot(es, 1 - eb, label=label, lw=1.8)
    ax.plot([0, 1], [1, 0], ls=":", color="grey", label="random")
    ax.set(xlabel=r"Signal efficiency $\varepsilon_S$", ylabel=r"Background rejection $1-\varepsilon_B$", xlim=(0, 1), ylim=(0, 1.02), title=title)
    ax.legend(loc="lower left")
    return _save(fig, path)


def rejection_curves(curves: dict, path, *, title: str = "") -> Path:
    """1/ε_B on a log axis versus ε_S (the top-tagging convention)."""
    plt = _plt()
    fig, ax = plt.subplots()
    for label, (eb, es) in curves.items():
        ok = eb > 0
        ax.plot(es[ok], 1 / eb[ok], label=label, lw=1.8)
    ax.set_yscale("log")
    ax.set(xlabel=r"Signal efficiency $\varepsilon_S$", ylabel=r"Background rejection $1/\varepsilon_B$", xlim=(0, 1), title=title)
    ax.legend(loc="upper right")
    return _save(fig, path)


def roc_band(grid, mean, low, high, path, *, label: str, folds: int) -> Path:
    """k-fold ROC: mean ε_S(ε_B) with the band spanned by the folds."""
    plt = _plt()
    fig, ax = plt.subplots()
    ax.plot(mean, 1 - np.asarray(grid), label=f"{label} (mean of {folds} folds)")
    ax.fill_betweenx(1 - np.asarray(grid), low, high, alpha=0.3, label="spread over folds")
    ax.set(xlabel=r"Signal efficiency $\varepsilon_S$", ylabel=r"Background rejection $1-\varepsilon_B$", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return _save(fig, path)


def score_distributions(per_class: dict, path, *, label: str, ks: dict, bins: int = 40) -> Path:
    """Classifier output per class, train (points) vs test (filled), with the KS probabilities."""
    plt = _plt()
    fig, ax = plt.subplots()
    lo = min(min(np.min(v["train"]), np.min(v["test"])) for v in per_class.values())
    hi = max(max(np.max(v["train"]), np.max(v["test"])) for v in per_class.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    for i, (cname, v) in enumerate(per_class.items()):
        colour = f"C{i}"
        ax.hist(v["test"], bins=edges, weights=v.get("w_test"), density=True, alpha=0.35, color=colour, label=f"{cname} (test)")
        h, _ = np.histogram(v["train"], bins=edges, weights=v.get("w_train"), density=True)
        ax.plot(centres, h, "o", ms=3.5, color=colour, label=f"{cname} (train), KS p = {ks[cname]:.3f}")
    ax.set(xlabel=f"{label} output", ylabel="Normalised entries", title=label)
    ax.legend(loc="upper center")
    return _save(fig, path)


def correlation_matrix(corr, names, path, *, title: str) -> Path:
    """Linear correlation coefficients of the input features (in %), as TMVA draws them."""
    plt = _plt()
    n = len(names)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * n + 3), max(5, 0.45 * n + 2)))
    im = ax.imshow(100 * np.asarray(corr), cmap="RdBu_r", vmin=-100, vmax=100)
    ax.set_xticks(range(n), names, rotation=90, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{100 * corr[i][j]:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, label="correlation [%]")
    ax.set_title(title)
    return _save(fig, path)


def feature_distributions(X, y, names, class_names, path, *, weights=None, max_features: int = 16) -> Path:
    """Input features per class (normalised histograms), up to ``max_features`` panels."""
    plt = _plt()
    k = min(len(names), max_features)
    cols = 4
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= k:
            ax.axis("off")
            continue
        col = X[:, j]
        lo, hi = np.percentile(col, [0.5, 99.5])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, 31)
        for c, cname in enumerate(class_names):
            sel = y == c
            ax.hist(np.clip(col[sel], lo, hi), bins=edges, weights=None if weights is None else weights[sel], density=True, histtype="step", lw=1.5, label=cname)
        ax.set_xlabel(names[j], fontsize=10)
        ax.tick_params(labelsize=8)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def training_curves(histories: dict, path, *, xlabel: str = "Epoch") -> Path:
    """Loss per epoch for every framework × model on one plot: the visual proof of equivalence."""
    plt = _plt()
    fig, ax = plt.subplots()
    for i, (label, hist) in enumerate(histories.items()):
        if not hist:
            continue
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h["loss"] for h in hist], "-", color=f"C{i}", label=f"{label} train")
        if "val_loss" in hist[0]:
            ax.plot(ep, [h["val_loss"] for h in hist], "--", color=f"C{i}", label=f"{label} validation")
    ax.set(xlabel=xlabel, ylabel="Loss (weighted cross-entropy)")
    ax.legend(fontsize=9)
    return _save(fig, path)


def importance(values: dict, names, path, *, title: str, xlabel: str) -> Path:
    """Horizontal bars of a variable ranking (largest on top)."""
    plt = _plt()
    order = np.argsort(values)
    fig, ax = plt.subplots(figsize=(7, max(3, 0.3 * len(names) + 1)))
    ax.barh(np.asarray(names)[order], np.asarray(values)[order])
    ax.set(xlabel=xlabel, title=title)
    ax.tick_params(axis="y", labelsize=9)
    return _save(fig, path)


def rejection_vs_efficiency(effs, curves: dict, path, *, background: str, reference: str) -> Path:
    """puma-style: background rejection vs b-efficiency (log y) with a ratio panel to ``reference``."""
    plt = _plt()
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}, figsize=(7.5, 7))
    for label, rej in curves.items():
        ax.plot(effs, rej, label=label)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.asarray(rej) / np.asarray(curves[reference])
        rax.plot(effs, ratio)
    ax.set_yscale("log")
    ax.set(ylabel=f"{background}-jet rejection")
    ax.legend()
    rax.axhline(1, color="grey", ls=":")
    rax.set(xlabel=r"$b$-jet efficiency", ylabel=f"ratio to\n{reference}")
    return _save(fig, path)


def fc_scan(fcs, scans: dict, path, *, efficiency_b: float) -> Path:
    """c- versus light-rejection at fixed b-efficiency as f_c varies, one curve per model."""
    plt = _plt()
    fig, ax = plt.subplots()
    for label, scan in scans.items():
        scan = np.asarray(scan)
        ax.plot(scan[:, 1], scan[:, 0], "-o", ms=3, label=label)
    ax.set(xlabel="light-jet rejection", ylabel="c-jet rejection", title=rf"$f_c$ scan {fcs[0]:g}…{fcs[-1]:g} at $\varepsilon_b$ = {efficiency_b:.0%}")
    ax.set_xscale("log")
    ax.legend()
    return _save(fig, path)


def efficiency_vs(edges, curves: dict, path, *, xlabel: str, ylabel: str) -> Path:
    """Efficiency (with binomial error bars) in bins of a variable, one curve per model/flavour."""
    plt = _plt()
    fig, ax = plt.subplots()
    centres = 0.5 * (np.asarray(edges[1:]) + np.asarray(edges[:-1]))
    for label, (eff, err) in curves.items():
        ax.errorbar(centres, eff, yerr=err, xerr=np.diff(edges) / 2, fmt="o", ms=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.05))
    ax.legend(fontsize=9)
    return _save(fig, path)


def confusion(cm, class_names, path, *, title: str) -> Path:
    """Row-normalised confusion matrix (true class → predicted class)."""
    plt = _plt()
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.1 * n + 3, 1.1 * n + 2))
    im = ax.imshow(cm, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i][j]:.2f}", ha="center", va="center", color="w" if cm[i][j] < 0.6 else "k", fontsize=9)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(im, ax=ax, label="fraction of true class")
    return _save(fig, path)
