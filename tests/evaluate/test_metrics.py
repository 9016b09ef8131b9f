"""Metrics against scikit-learn and scipy on the same inputs, and D_b / rejections by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from hepml.evaluate import metrics as m


@pytest.fixture
def scores():
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.integers(0, 2, n).astype(bool)
    s = rng.normal(size=n) + 1.2 * y
    s[:50] = np.round(s[:50], 1)  # some ties
    w = rng.uniform(0.2, 3.0, n)
    return y, s, w


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_matches_sklearn(scores, weighted):
    y, s, w = scores
    w = w if weighted else None
    fpr, tpr, thr = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    eb, es, cuts = m.roc_curve(y, s, w)
    np.testing.assert_allclose(eb, fpr[1:], atol=1e-12)
    np.testing.assert_allclose(es, tpr[1:], atol=1e-12)
    np.testing.assert_allclose(cuts, thr[1:])
    assert abs(m.roc_auc(y, s, w) - skm.roc_auc_score(y, s, sample_weight=w)) < 1e-12


def test_efficiency_at_background_and_rejection(scores):
    y, s, _ = scores
    eb, es, _ = m.roc_curve(y, s)
    value, err = m.signal_efficiency_at(y, s, background_efficiency=0.10)
    k = np.searchsorted(eb, 0.10)
    assert es[k - 1] <= value <= es[k]
    n_sig = int(y.sum())
    assert abs(err - np.sqrt(value * (1 - value) / n_sig)) < 1e-12
    rej, rerr = m.background_rejection_at(y, s, signal_efficiency=value)
    assert abs(rej - 10.0) < 0.2 and rerr > 0


def test_ks_matches_scipy_and_weighted_version_agrees_for_unit_weights():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=400), rng.normal(0.2, 1, size=500)
    d, p = m.ks_test(a, b)
    ref = stats.ks_2samp(a, b)
    assert d == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    dw, pw = m.ks_test(a, b, np.ones(400), np.ones(500))
    assert dw == pytest.approx(ref.statistic)
    assert pw == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, rel=0.05)
    same = m.ks_test(a, rng.normal(size=500))[1]
    assert same > 0.01 and p < same


def test_b_discriminant_by_hand():
    pb, pc, pl = np.array([0.7, 0.1]), np.array([0.2, 0.3]), np.array([0.1, 0.6])
    d = m.b_discriminant(pb, pc, pl, fc=0.1)
    np.testing.assert_allclose(d, np.log([(0.7 + 1e-10) / (0.1 * 0.2 + 0.9 * 0.1 + 1e-10), (0.1 + 1e-10) / (0.03 + 0.54 + 1e-10)]))
    dc = m.c_discriminant(pb, pc, pl, fb=0.2)
    np.testing.assert_allclose(dc, np.log([(0.2 + 1e-10) / (0.14 + 0.08 + 1e-10), (0.3 + 1e-10) / (0.02 + 0.48 + 1e-10)]))


def test_working_point_and_rejection_by_hand():
    # 10 b-jets with D = 0..9, 5 light jets with D = 0,2,4,6,8
    d = np.r_[np.arange(10.0), [0.0, 2, 4, 6, 8]]
    flav = np.r_[np.full(10, 5), np.full(5, 0)]
    cut = m.working_point(d, flav == 5, 0.70)
    assert cut == 3.0  # D >= 3 keeps 7 of 10 b-jets
    assert m.efficiency(d[flav == 5], cut) == 0.7
    rej, err = m.rejection(d[flav == 0], cut)
    assert rej == pytest.approx(5 / 3)  # 4, 6, 8 pass
    assert err == pytest.approx(np.sqrt(0.6 * 0.4 / 5) / 0.36)
    curve = m.rejection_curve(d, flav, signal=5, background=0, efficiencies=[0.7, 0.5])
    np.testing.assert_allclose(curve, [5 / 3, 5 / 2])


def test_fc_scan_trades_c_against_light_rejection():
    rng = np.random.default_rng(0)
    n = 6000
    flav = rng.choice([5, 4, 0], n, p=[0.3, 0.2, 0.5])
    logits = np.stack([rng.normal(size=n) + 2 * (flav == 5), rng.normal(size=n) + 1.5 * (flav == 4), rng.normal(size=n) + 1.5 * (flav == 0)], 1)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    scan = m.fc_scan(p[:, 0], p[:, 1], p[:, 2], flav, b=5, c=4, light=0, efficiency_b=0.7, fcs=[0.0, 0.5, 1.0])
    assert scan[2, 0] > scan[0, 0]  # more f_c: better c-rejection
    assert scan[2, 1] < scan[0, 1]  # ... at the price of light rejection


def test_multiclass_against_sklearn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 800)
    p = rng.dirichlet(np.ones(4), 800) * 0.5 + 0.5 * np.eye(4)[y]
    w = rng.uniform(0.5, 2, 800)
    assert m.log_loss(y, p, w) == pytest.approx(skm.log_loss(y, p, sample_weight=w))
    ovr = m.one_vs_rest_auc(y, p)
    for k in range(4):
        assert ovr[k] == pytest.approx(skm.roc_auc_score(y == k, p[:, k]))
    cm = m.confusion_matrix(y, p, 4, normalize=False)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(y, p.argmax(1), labels=range(4)))
    np.testing.assert_allclose(m.confusion_matrix(y, p, 4).sum(1), 1)


def test_bootstrap_and_permutation_importance():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1000, 3))
    y = (X[:, 0] > 0).astype(int)
    proba = lambda Z: np.column_stack([1 / (1 + np.exp(4 * Z[:, 0])), 1 - 1 / (1 + np.exp(4 * Z[:, 0]))])  # noqa: E731
    imp = m.permutation_importance(proba, X, y)
    assert imp[0] > 0.3 and abs(imp[1]) < 1e-12 and abs(imp[2]) < 1e-12
    sd = m.bootstrap(lambda a, b: m.roc_auc(a, b), y == 1, X[:, 0] + rng.normal(size=1000), n=50)
    assert 0.001 < sd < 0.05
    assert m.n_eff(np.ones(10)) == 10 and m.n_eff(np.r_[np.ones(5), np.zeros(5)]) == 5
