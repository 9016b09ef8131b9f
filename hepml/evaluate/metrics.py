"""Performance figures with physics names, weighted, with uncertainties.

- ROC: signal efficiency ε_S versus background efficiency ε_B (and rejection 1/ε_B), ROC AUC;
  ε_S at fixed ε_B (TMVA's 1 %, 10 %, 30 %) with binomial errors σ = sqrt(ε(1−ε)/N_eff),
  N_eff = (Σw)²/Σw² (Kish's effective sample size);
- overtraining: Kolmogorov–Smirnov probability between train and test score distributions;
- flavour tagging (puma / atlas-ftag-tools conventions): the discriminant
  D_b = ln[(p_b + ε) / (f_c p_c + (1 − f_c) p_light + ε)], working points at fixed b-efficiency,
  light- and c-rejection, and the f_c scan;
- multiclass: one-vs-rest ROC AUC per class, log loss, confusion matrix;
- permutation importance for any model.
"""

from __future__ import annotations

import numpy as np

EPS_DB = 1e-10


def _w(weights, n):
    return np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)


def n_eff(weights) -> float:
    """Kish's effective number of events (Σw)²/Σw²; equals N for unit weights."""
    w = np.asarray(weights, dtype=np.float64)
    s2 = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


def binomial_error(efficiency, weights) -> float:
    """σ(ε) = sqrt(ε (1 − ε) / N_eff) for an efficiency measured on ``weights``."""
    n = n_eff(weights)
    return float(np.sqrt(max(efficiency * (1 - efficiency), 0.0) / n)) if n > 0 else float("nan")


def roc_curve(is_signal, score, weights=None):
    """(ε_B, ε_S, thresholds) for cuts ``score >= threshold``, weighted, from the tightest cut down.

    Matches ``sklearn.metrics.roc_curve(is_signal, score, sample_weight=weights,
    drop_intermediate=False)`` (fpr = ε_B, tpr = ε_S), without the leading (0, 0, inf) point.
    """
    s = np.asarray(is_signal, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    w = _w(weights, len(s))
    order = np.argsort(-score, kind="mergesort")
    score, s, w = score[order], s[order], w[order]
    distinct = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # last index of each score value
    tp = np.cumsum(w * s)[distinct]
    fp = np.cumsum(w * ~s)[distinct]
    return fp / fp[-1], tp / tp[-1], score[distinct]


def roc_auc(is_signal, score, weights=None) -> float:
    """Area under ε_S(ε_B) by the trapezoid rule (the ROC integral)."""
    eb, es, _ = roc_curve(is_signal, score, weights)
    return float(np.trapezoid(np.r_[0.0, es], np.r_[0.0, eb]))


def signal_efficiency_at(is_signal, score, weights=None, *, background_efficiency: float) -> tuple[float, float]:
    """ε_S at the cut where ε_B first reaches ``background_efficiency`` (interpolated), with its error."""
    eb, es, _ = roc_curve(is_signal, score, weights)
    value = float(np.interp(background_efficiency, np.r_[0.0, eb], np.r_[0.0, es]))
    s = np.asarray(is_signal, bool)
    return value, binomial_error(value, _w(weights, len(s))[s])


def background_rejection_at(is_signal, score, weights=None, *, signal_efficiency: float) -> tuple[float, float]:
    """1/ε_B at the cut giving ``signal_efficiency`` (interpolated), with its propagated binomial error."""
    eb, es, _ = roc_curve(is_signal, score, weights)
    e_b = float(np.interp(signal_efficiency, np.r_[0.0, es], np.r_[0.0, eb]))
    s = np.asarray(is_signal, bool)
    if e_b <= 0:
        return float("inf"), float("nan")
    sigma = binomial_error(e_b, _w(weights, len(s))[~s])
    return 1.0 / e_b, sigma / e_b**2


def bootstrap(metric, *arrays, n: int = 100, seed: int = 1) -> float:
    """Standard deviation of ``metric(*arrays)`` over ``n`` seeded bootstrap resamples."""
    rng = np.random.default_rng(seed)
    m = len(arrays[0])
    values = []
    for _ in range(n):
        idx = rng.integers(0, m, m)
        values.append(metric(*(None if a is None else np.asarray(a)[idx] for a in arrays)))
    return float(np.std(values, ddof=1))


def ks_test(a, b, weights_a=None, weights_b=None) -> tuple[float, float]:
    """Kolmogorov–Smirnov statistic and probability that ``a`` and ``b`` come from one distribution.

    Unweighted: :func:`scipy.stats.ks_2samp` (exact where it applies). Weighted: D from the weighted
    empirical CDFs and the Kolmogorov distribution (scipy's ``kstwo``, as ``ks_2samp(method="asymp")``)
    with Kish's effective sizes.
    """
    from scipy import stats

    if weights_a is None and weights_b is None:
        res = stats.ks_2samp(a, b)
        return float(res.statistic), float(res.pvalue)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    wa, wb = _w(weights_a, len(a)), _w(weights_b, len(b))
    grid = np.sort(np.r_[a, b])
    cdf = lambda x, w: np.r_[0.0, np.cumsum(w[np.argsort(x)])][np.searchsorted(np.sort(x), grid, side="right")] / w.sum()  # noqa: E731
    d = float(np.max(np.abs(cdf(a, wa) - cdf(b, wb))))
    na, nb = n_eff(wa), n_eff(wb)
    return d, float(stats.kstwo.sf(d, max(1, int(round(na * nb / (na + nb))))))


# -- flavour tagging ----------------------------------------------------------------------------------


def b_discriminant(p_b, p_c, p_light, *, fc: float, eps: float = EPS_DB):
    """D_b = ln[(p_b + ε) / (f_c p_c + (1 − f_c) p_light + ε)] (ATLAS flavour-tagging convention)."""
    return np.log((np.asarray(p_b) + eps) / (fc * np.asarray(p_c) + (1 - fc) * np.asarray(p_light) + eps))


def c_discriminant(p_b, p_c, p_light, *, fb: float, eps: float = EPS_DB):
    """D_c = ln[(p_c + ε) / (f_b p_b + (1 − f_b) p_light + ε)], the charm-tagging counterpart."""
    return np.log((np.asarray(p_c) + eps) / (fb * np.asarray(p_b) + (1 - fb) * np.asarray(p_light) + eps))


def working_point(discriminant, is_b, efficiency: float, weights=None) -> float:
    """The cut on ``discriminant`` that keeps ``efficiency`` of the (weighted) b-jets (``D >= cut``)."""
    d = np.asarray(discriminant)[np.asarray(is_b, bool)]
    w = _w(None if weights is None else np.asarray(weights)[np.asarray(is_b, bool)], len(d))
    order = np.argsort(-d, kind="mergesort")
    cum = np.cumsum(w[order]) / w.sum()
    k = int(np.searchsorted(cum, efficiency, side="left"))
    return float(d[order][min(k, len(d) - 1)])


def efficiency(discriminant, cut: float, weights=None) -> float:
    """Weighted fraction passing the cut ``discriminant >= cut``."""
    d = np.asarray(discriminant)
    w = _w(weights, len(d))
    return float(np.sum(w * (d >= cut)) / np.sum(w))


def rejection(discriminant, cut: float, weights=None) -> tuple[float, float]:
    """1/ε of a background flavour at ``cut`` with its binomial error."""
    e = efficiency(discriminant, cut, weights)
    if e <= 0:
        return float("inf"), float("nan")
    return 1.0 / e, binomial_error(e, _w(weights, len(np.asarray(discriminant)))) / e**2


def rejection_curve(discriminant, flavour, *, signal: int, background: int, efficiencies, weights=None):
    """Background rejection at each signal efficiency (cuts from :func:`working_point`)."""
    flavour = np.asarray(flavour)
    w = _w(weights, len(flavour))
    cuts = [working_point(discriminant, flavour == signal, e, w) for e in efficiencies]
    sel = flavour == background
    return np.array([rejection(np.asarray(discriminant)[sel], c, w[sel])[0] for c in cuts])


def fc_scan(p_b, p_c, p_light, flavour, *, b: int, c: int, light: int, efficiency_b: float, fcs, weights=None):
    """(c-rejection, light-rejection) at fixed b-efficiency for each f_c in ``fcs``."""
    flavour = np.asarray(flavour)
    w = _w(weights, len(flavour))
    out = []
    for fc in fcs:
        d = b_discriminant(p_b, p_c, p_light, fc=fc)
        cut = working_point(d, flavour == b, efficiency_b, w)
        out.append((rejection(d[flavour == c], cut, w[flavour == c])[0], rejection(d[flavour == light], cut, w[flavour == light])[0]))
    return np.array(out)


# -- multiclass ----------------------------------------------------------------------------------------


def log_loss(y, proba, weights=None) -> float:
    """Weighted multiclass log loss −Σ w log p_y / Σ w (probabilities clipped at 1e-15)."""
    y = np.asarray(y)
    p = np.clip(np.asarray(proba, np.float64), 1e-15, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    w = _w(weights, len(y))
    return float(-np.sum(w * np.log(p[np.arange(len(y)), y])) / np.sum(w))


def one_vs_rest_auc(y, proba, weights=None) -> list[float]:
    """ROC AUC of each class against all others, scored by its own probability."""
    y = np.asarray(y)
    return [roc_auc(y == k, np.asarray(proba)[:, k], weights) for k in range(np.asarray(proba).shape[1])]


def confusion_matrix(y, proba, n_classes: int, weights=None, *, normalize: bool = True) -> np.ndarray:
    """C[i, j] = (weighted) fraction of true class i predicted as j (argmax); rows sum to 1 if normalised."""
    y = np.asarray(y)
    pred = np.argmax(proba, axis=1)
    w = _w(weights, len(y))
    cm = np.zeros((n_classes, n_classes))
    np.add.at(cm, (y, pred), w)
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1e-300)
    return cm


# -- variable ranking ----------------------------------------------------------------------------------


def permutation_importance(predict_proba, X, y, weights=None, *, metric=None, n_repeats: int = 3, seed: int = 1) -> np.ndarray:
    """Mean increase of the log loss when each feature column is shuffled (framework-agnostic).

    ``predict_proba(X) -> (n, C)``; ``metric(y, proba, weights)`` defaults to :func:`log_loss`.
    """
    metric = metric or log_loss
    rng = np.random.default_rng(seed)
    base = metric(y, predict_proba(X), weights)
    out = np.zeros(X.shape[1])
    for j in range(X.shape[1]):
        deltas = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[:, j] = Xp[rng.permutation(len(X)), j]
            deltas.append(metric(y, predict_proba(Xp), weights) - base)
        out[j] = float(np.mean(deltas))
    return out
