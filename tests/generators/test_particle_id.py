"""The particle-ID generator: determinism, schema, and the physics it claims, asserted with numbers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from data_download.generators import particle_id as pid

C4F10 = pid.RADIATORS["c4f10"]


@pytest.fixture(scope="module")
def tracks():
    """30 000 tracks with the default (balanced) species mix."""
    return pid.generate_chunk(30_000, 6)


def test_same_seed_same_arrays_other_seed_differs():
    a, b, c = pid.generate_chunk(3000, 11), pid.generate_chunk(3000, 11), pid.generate_chunk(3000, 12)
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("TrackP", "RichDLLk", "EcalE", "label"):
        assert not np.array_equal(a[key], c[key]), key


def test_schema(tracks):
    assert pid.TREE == "Tracks" and pid.CHUNK >= 10_000
    assert pid.CLASSES == {0: "ghost", 1: "electron", 2: "muon", 3: "pion", 4: "kaon", 5: "proton"}
    features = [key for key in tracks if key != "label"]
    assert 30 <= len(features) <= 50
    assert set(pid.BRANCH_DOCS) == set(tracks)
    for key in features:
        assert tracks[key].dtype == np.float32, key
        assert np.all(np.isfinite(tracks[key])), key
    assert tracks["label"].dtype == np.int32
    assert set(np.unique(tracks["label"])) == set(range(6))
    np.testing.assert_allclose(tracks["TrackPt"], tracks["TrackP"] / np.cosh(tracks["TrackEta"]), rtol=1e-5)
    assert tracks["TrackP"].min() >= pid.DEFAULTS.p_min
    assert 2.0 <= tracks["TrackEta"].min() and tracks["TrackEta"].max() <= 5.0
    for flag in ("RichUsedR1Gas", "RichAboveKaThres", "InAccEcal", "MuonIsMuon", "MuonIsLooseMuon"):
        assert set(np.unique(tracks[flag])) == {0.0, 1.0}, flag
    # isMuon implies isMuonLoose
    assert np.all(tracks["MuonIsLooseMuon"][tracks["MuonIsMuon"] == 1] == 1)


def test_species_fractions_are_parameters():
    counts = np.bincount(pid.generate_chunk(12_000, 1)["label"], minlength=6) / 12_000
    np.testing.assert_allclose(counts, 1 / 6, atol=0.015)
    only_kaons = dataclasses.replace(pid.DEFAULTS, fractions=(0, 0, 0, 0, 1, 0))
    assert set(pid.generate_chunk(500, 1, params=only_kaons)["label"]) == {4}
    with pytest.raises(ValueError, match="fractions"):
        pid.generate_chunk(10, 1, params=dataclasses.replace(pid.DEFAULTS, fractions=(1, 2, 3)))


def test_cherenkov_formulae():
    m_k, m_pi = pid.MASSES["kaon"], pid.MASSES["pion"]
    # p_th = m / sqrt(n^2 - 1): kaons in C4F10 at 9.33 GeV, pions at 2.64 GeV
    assert pid.threshold_momentum(m_k, C4F10.n) == pytest.approx(0.493677 / math.sqrt(1.0014**2 - 1), rel=1e-12)
    assert pid.threshold_momentum(m_k, C4F10.n) == pytest.approx(9.33, abs=0.01)
    assert pid.threshold_momentum(m_pi, C4F10.n) == pytest.approx(2.64, abs=0.01)
    assert pid.threshold_momentum(m_k, pid.RADIATORS["aerogel"].n) == pytest.approx(2.00, abs=0.01)
    assert pid.threshold_momentum(m_k, pid.RADIATORS["cf4"].n) == pytest.approx(15.6, abs=0.05)
    p_th = pid.threshold_momentum(m_k, C4F10.n)
    below, above = pid.cherenkov_angle(np.array([0.999 * p_th, 1.001 * p_th]), m_k, C4F10.n)
    assert np.isnan(below) and 0.0 < above < 0.003
    # β → 1: the angle saturates at arccos(1/n) (53 mrad in C4F10, 32 in CF4, 242 in aerogel)
    for rad, mrad in ((C4F10, 52.9), (pid.RADIATORS["cf4"], 31.6), (pid.RADIATORS["aerogel"], 241.9)):
        theta = pid.cherenkov_angle(np.array([1e5]), m_pi, rad.n)[0]
        assert theta == pytest.approx(math.acos(1 / rad.n), abs=1e-7)
        assert theta * 1e3 == pytest.approx(mrad, abs=0.1)
        assert rad.theta_max == pytest.approx(math.acos(1 / rad.n))
    # angle grows monotonically with momentum above threshold
    theta = pid.cherenkov_angle(np.linspace(10, 200, 50), m_k, C4F10.n)
    assert np.all(np.diff(theta) > 0)


def test_photon_yield_follows_sin2_theta():
    p = np.array([5.0, 9.0, 9.5, 12.0, 30.0, 1e5])
    m_k = pid.MASSES["kaon"]
    n_exp = pid.photon_yield(p, m_k, C4F10.n, C4F10.saturated_yield)
    theta = np.nan_to_num(pid.cherenkov_angle(p, m_k, C4F10.n))
    np.testing.assert_allclose(n_exp, C4F10.saturated_yield * np.sin(theta) ** 2 / np.sin(C4F10.theta_max) ** 2,
                               rtol=1e-6, atol=1e-9)
    assert n_exp[0] == 0.0 and n_exp[1] == 0.0 and n_exp[2] > 0.0
    assert n_exp[-1] == pytest.approx(C4F10.saturated_yield, rel=1e-6)


def test_kaon_threshold_in_c4f10_where_the_formula_puts_it():
    """Fit N_photons = N_sat (1 - p_th²/p²) to generated kaons and recover p_th = m_K / sqrt(n² - 1)."""
    kaons_only = dataclasses.replace(pid.DEFAULTS, fractions=(0, 0, 0, 0, 1, 0), rich_misassociation=0.0)
    k = pid.generate_chunk(30_000, 5, params=kaons_only)
    used = k["RichUsedR1Gas"] == 1
    p, photons = k["TrackP"][used].astype(np.float64), k["RichNPhotonsR1Gas"][used]
    expected_th = pid.threshold_momentum(pid.MASSES["kaon"], C4F10.n)
    below = p < 0.97 * expected_th
    assert below.sum() > 1000
    assert photons[below].mean() == pytest.approx(C4F10.background, abs=0.1)  # background only
    above = (p > 12.0) & (p < 80.0)
    design = np.column_stack([np.ones(above.sum()), 1.0 / p[above] ** 2])
    (n_sat, slope), *_ = np.linalg.lstsq(design, photons[above] - C4F10.background, rcond=None)
    assert n_sat == pytest.approx(C4F10.saturated_yield, rel=0.03)
    assert math.sqrt(-slope / n_sat) == pytest.approx(expected_th, rel=0.03)
    # the RichAboveKaThres flag switches exactly at p_th for tracks using C4F10
    np.testing.assert_array_equal(k["RichAboveKaThres"][used] == 1, p > expected_th)


def test_rich_dll_separates_kaons_from_pions(tracks):
    t = tracks
    window = (t["RichUsedR1Gas"] == 1) & (t["TrackP"] > 12) & (t["TrackP"] < 50)
    dllk = {c: np.median(t["RichDLLk"][window & (t["label"] == c)]) for c in (3, 4)}
    assert dllk[4] > 5.0 and dllk[3] < -5.0
    # protons below their C4F10 threshold (17.7 GeV) look "below threshold" rather than pion-like
    slow_protons = (t["label"] == 5) & (t["RichUsedR1Gas"] == 1) & (t["TrackP"] < 15) & (t["TrackP"] > 5)
    assert np.median(t["RichDLLbt"][slow_protons]) > 0.0


def test_muons_reach_the_stations_pions_mostly_do_not(tracks):
    t = tracks
    acc, p, is_muon = t["InAccMuon"] == 1, t["TrackP"], t["MuonIsMuon"]
    muons, pions = acc & (t["label"] == 2), acc & (t["label"] == 3)
    assert is_muon[muons & (p > 6)].mean() > 0.95
    assert is_muon[muons & (p < 3)].sum() == 0  # absorbed before M2/M3
    pion_rate = is_muon[pions & (p > 6)].mean()
    assert 0.0 < pion_rate < 0.03  # decays in flight and punch-through only
    # decays in flight ∝ m/(p cτ): the misidentification falls with momentum
    assert is_muon[pions & (p > 3) & (p < 10)].mean() > 2 * is_muon[pions & (p > 30)].mean()
    # kaons decay more (cτ 3.7 m vs 7.8 m) than pions
    assert is_muon[acc & (t["label"] == 4) & (p > 3) & (p < 10)].mean() > is_muon[pions & (p > 3) & (p < 10)].mean()
    assert np.median(t["MuonLLbeMuon"][muons & (is_muon == 1)]) > np.median(t["MuonLLbeMuon"][pions])


def test_calorimeter_e_over_p(tracks):
    t = tracks
    ecal = t["InAccEcal"] == 1
    eop = {c: np.median(t["CaloEoverP"][ecal & (t["label"] == c)]) for c in range(1, 6)}
    assert eop[1] == pytest.approx(1.0, abs=0.04)  # electrons: E ≈ p
    assert all(eop[c] < 0.4 for c in (3, 4, 5))  # hadrons: a fraction of p in 1.1 λ_I
    assert eop[2] < 0.05  # muons: a MIP, ~0.3 GeV
    assert np.median(t["EcalPIDe"][ecal & (t["label"] == 1)]) > 5.0
    assert np.median(t["EcalPIDe"][ecal & (t["label"] == 3)]) < -5.0
    # muons are MIPs in the HCAL too, hadrons leave most of their energy there
    hcal = t["InAccHcal"] == 1
    assert np.median(t["HcalE"][hcal & (t["label"] == 2)]) == pytest.approx(1.6, rel=0.15)
    assert np.median(t["HcalE"][hcal & (t["label"] == 3)] / t["TrackP"][hcal & (t["label"] == 3)]) > 0.5
    out = ~ecal
    assert np.all(t["EcalE"][out] == 0) and np.all(t["EcalPIDe"][out] == 0)


def test_ghosts_have_poor_tracks(tracks):
    t = tracks
    ghost, real = t["label"] == 0, t["label"] > 0
    assert np.median(t["TrackGhostProbability"][ghost]) > 0.4 > 0.2 > np.median(t["TrackGhostProbability"][real])
    assert np.median(t["TrackChi2PerDof"][ghost]) > 1.2 * np.median(t["TrackChi2PerDof"][real])
    assert t["TrackNTHits"][ghost].mean() < t["TrackNTHits"][real].mean() - 1


def test_dedx_bethe_shape():
    # minimum ionising near βγ ≈ 3-4, 1/β² rise for slow protons, Fermi plateau only a few % higher
    assert pid.dedx_mip_units(np.array([0.5]), pid.MASSES["pion"])[0] == pytest.approx(1.0, abs=0.03)
    assert pid.dedx_mip_units(np.array([1.0]), pid.MASSES["proton"])[0] > 1.4
    plateau = pid.dedx_mip_units(np.array([50.0]), pid.MASSES["electron"])[0]
    assert 1.0 < plateau < 1.15


def test_classes_separable_but_not_trivially():
    """A small gradient-boosted classifier: log loss far below ln 6 (guessing) yet not near 0."""
    xgb = pytest.importorskip("xgboost")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.preprocessing import StandardScaler

    from threadpoolctl import threadpool_limits

    train, test = pid.generate_chunk(8000, 101), pid.generate_chunk(4000, 202)
    keys = [key for key in train if key != "label"]
    x, y = np.column_stack([train[k] for k in keys]), train["label"]
    x_test, y_test = np.column_stack([test[k] for k in keys]), test["label"]
    with threadpool_limits(1):  # BLAS threads fighting over 2 busy cores cost 20x
        bdt = xgb.XGBClassifier(n_estimators=80, learning_rate=0.15, max_depth=4, tree_method="hist",
                                n_jobs=1, random_state=0).fit(x, y)
        loss = log_loss(y_test, bdt.predict_proba(x_test))
        scaler = StandardScaler().fit(x)
        linear = LogisticRegression(max_iter=300).fit(scaler.transform(x), y)
        linear_loss = log_loss(y_test, linear.predict_proba(scaler.transform(x_test)))
    assert 0.12 < loss < 0.6 < math.log(6)
    assert linear_loss > loss  # the classes have non-linear structure a BDT finds
