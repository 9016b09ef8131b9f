"""Pythia8 + FastJet generators: small-N runs of each, through the framework's ``generate`` and
directly through ``generate_chunk``: layout, determinism, and physics sanity with numbers."""

from __future__ import annotations

import numpy as np
import pytest

ak = pytest.importorskip("awkward")
uproot = pytest.importorskip("uproot")
pytest.importorskip("pythia8mc")
fastjet = pytest.importorskip("fastjet")

from data_download.generators import _pythia as P  # noqa: E402
from data_download.generators import generate, jet_flavour, top_tagging, ttbar_vs_qcd  # noqa: E402


def _read(path, tree):
    return uproot.open(path)[tree].arrays()


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        assert ak.to_list(a[key]) == ak.to_list(b[key]), key


def _differ(a: dict, b: dict, key: str) -> bool:
    return ak.to_list(a[key]) != ak.to_list(b[key])


# ---------------------------------------------------------------------------------------------
# shared helpers (no event generation)
# ---------------------------------------------------------------------------------------------

def test_heavy_flavour_content_follows_pdg_numbering():
    codes = np.array([511, -521, 5122, 531, 541, 421, -4122, 431, 553, 443, 211, 5, 2101, 22, 10511])
    has_b, has_c = P.heavy_flavour_content(codes)
    assert has_b.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    # B_c (541) counts as a B hadron only; onia (553, 443), quarks and diquarks are not open flavour
    assert has_c.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]


def test_pythia_seed_is_in_range_and_differs_between_streams():
    seeds = {P.pythia_seed(s, stream) for s in (0, 1, 900_000_000) for stream in (1, 2)}
    assert len(seeds) == 6
    assert all(1 <= s <= P.MAX_PYTHIA_SEED for s in seeds)
    assert P.pythia_seed(7, 1) == P.pythia_seed(7, 1)


def _one_event_batch(vertex_x_mm: np.ndarray):
    """One event: a 100 GeV jet axis along +x and n charged pions from vertices at (x, 0, 0)."""
    n = len(vertex_x_mm)
    zeros = np.zeros(n)
    batch = P.Batch(
        offsets=np.array([0, n]), pid=np.full(n, 211), status=np.ones(n, int),
        mother1=np.full(n, -1), daughter1=np.full(n, -1), daughter2=np.full(n, -1),
        px=np.full(n, 10.0), py=np.full(n, 1.0), pz=zeros.copy(), e=np.full(n, np.sqrt(101.0 + 0.0195)),
        x=vertex_x_mm, y=zeros.copy(), z=zeros.copy(), charge=np.ones(n), pt_hat=np.array([100.0]),
    )
    jets = P.Jets(event=np.array([0]), px=np.array([100.0]), py=np.array([0.0]), pz=np.array([0.0]),
                  e=np.array([101.0]), n_constituents=np.array([n], np.int32),
                  hadron_flavour=np.array([5], np.int32), const_jet=np.zeros(n, np.int64),
                  const_row=np.arange(n))
    return batch, jets


def test_impact_parameter_is_signed_by_the_jet_direction():
    # tracks from a vertex 0.5 mm in front of the primary vertex along the jet: d0 ≈ +50 µm
    batch, jets = _one_event_batch(np.full(200, 0.5))
    tracks = P.build_tracks(batch, jets, np.random.default_rng(1))
    assert 150 < len(tracks.d0) <= 200  # 94 % reconstruction efficiency at η = 0
    assert np.mean(tracks.d0 > 0) > 0.95
    assert np.median(tracks.d0) == pytest.approx(0.5 * 1 / np.sqrt(101), rel=0.1)
    assert np.all(np.diff(np.abs(tracks.d0sig)) <= 0)  # sorted by |d0sig|, largest first
    # the same tracks from behind the primary vertex get a negative (lifetime-unlike) sign
    behind = P.build_tracks(*_one_event_batch(np.full(200, -0.5)), np.random.default_rng(1))
    assert np.mean(behind.d0 < 0) > 0.95


def test_jet_probability_is_one_for_prompt_and_small_for_displaced_tracks():
    def tracks(sig, jet):
        sig, jet = np.asarray(sig, float), np.asarray(jet)
        z = np.zeros(len(sig))
        return P.Tracks(jet=jet, px=z + 1, py=z, pz=z, charge=np.ones(len(sig), np.int32), d0=sig * 0.01,
                        z0=z, d0sig=sig, z0sig=z, sigma_d0=z + 0.01, sigma_z0=z + 0.03, vx=z, vy=z, vz=z)

    jp = P.jet_probability(tracks([0.0, -4.0, 8.0, 6.0, 1.0, 1.0], [0, 1, 2, 2, 3, 3]), 5)
    assert jp[0] == pytest.approx(1.0)  # a track at S = 0 is perfectly compatible with the PV
    assert jp[1] == 1.0 and jp[4] == 1.0  # negative tracks only / no track at all
    assert jp[2] < 1e-10
    # two tracks at S = 1: Π = erfc(1/√2)² and JP = Π (1 − ln Π)
    pi = 0.31731050786291415 ** 2
    assert jp[3] == pytest.approx(pi * (1 - np.log(pi)), rel=1e-9)
    score = P.btag_proxy(tracks([0.0, 8.0, 6.0], [0, 1, 1]), 2)
    assert score[0] == pytest.approx(0.0, abs=1e-12) and 0.9 < score[1] < 1.0


# ---------------------------------------------------------------------------------------------
# ttbar vs QCD
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ttbar_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ttbar") / "ttbar_vs_qcd.root"
    generate("ttbar_vs_qcd", events=40, seed=3, out=path)
    return _read(path, ttbar_vs_qcd.TREE)


def test_ttbar_vs_qcd_file_has_the_nanoaod_layout(ttbar_file):
    ev = ttbar_file
    assert ev["event"].tolist() == list(range(40))
    for name in ("is_ttbar", "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_nConstituents",
                 "Jet_hadronFlavour", "Jet_btagProxy", "nMuon", "Muon_pt", "Muon_eta", "Muon_phi",
                 "Muon_charge", "nElectron", "Electron_pt", "Electron_charge", "MET_pt", "MET_phi"):
        assert name in ev.fields, name
    assert "HT" not in ev.fields
    assert str(ak.type(ev["Jet_hadronFlavour"])).endswith("int32")
    assert 5 <= int(ak.sum(ev["is_ttbar"])) <= 35  # ≈ 50/50, seeded
    # preselection: >= 4 jets with pT > 30 GeV, |eta| < 2.5, HT > 300 GeV, jets sorted by pT
    assert ak.all(ev["nJet"] >= 4)
    assert ak.all(ak.sum(ev["Jet_pt"], axis=1) > 300)
    assert ak.all(ev["Jet_pt"] > 30) and ak.all(abs(ev["Jet_eta"]) < 2.5)
    assert ak.all(ev["Jet_pt"][:, :-1] >= ev["Jet_pt"][:, 1:])
    assert set(ak.flatten(ev["Jet_hadronFlavour"]).tolist()) <= {0, 4, 5}
    assert ak.all((ev["Jet_btagProxy"] >= 0) & (ev["Jet_btagProxy"] < 1))
    for lepton in ("Muon", "Electron"):
        assert ak.all(ev[f"{lepton}_pt"] > 10) and ak.all(abs(ev[f"{lepton}_eta"]) < 2.5)
        assert set(ak.flatten(ev[f"{lepton}_charge"]).tolist()) <= {-1, 1}
    assert ak.all(ev["MET_pt"] >= 0)


def test_ttbar_events_have_b_jets_leptons_and_met_qcd_does_not(ttbar_file):
    ev = ttbar_file
    tt = ev["is_ttbar"] == 1
    n_b = ak.sum(ev["Jet_hadronFlavour"] == 5, axis=1)
    assert ak.mean(n_b[tt]) > 1.0  # two b quarks from t -> Wb (within acceptance, most of the time)
    assert ak.mean(n_b[~tt]) < 0.5
    assert ak.mean(ev["MET_pt"][tt]) > 1.5 * ak.mean(ev["MET_pt"][~tt])  # neutrinos from W decays
    flavour, score = ak.flatten(ev["Jet_hadronFlavour"]), ak.flatten(ev["Jet_btagProxy"])
    assert ak.mean(score[flavour == 5]) > ak.mean(score[flavour == 0]) + 0.3


def test_ttbar_vs_qcd_chunk_is_reproducible():
    a = ttbar_vs_qcd.generate_chunk(12, 101)
    _assert_same(a, ttbar_vs_qcd.generate_chunk(12, 101))
    b = ttbar_vs_qcd.generate_chunk(12, 102)
    assert _differ(a, b, "Jet_pt") and _differ(a, b, "MET_pt")


# ---------------------------------------------------------------------------------------------
# jet flavour
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flavour_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("flavour") / "jet_flavour.root"
    generate("jet_flavour", events=600, seed=5, out=path)
    return _read(path, jet_flavour.TREE)


def test_jet_flavour_file_has_one_entry_per_jet_with_tagging_features(flavour_file):
    jets = flavour_file
    assert len(jets) == 600
    for name in ("hadronFlavour", "is_ttbar", "jet_pt", "jet_eta", "jet_phi", "jet_mass", "jet_nConstituents",
                 "trk1_d0sig", "trk2_d0sig", "trk3_d0sig", "trk1_z0sig", "trk3_z0sig", "sv_mass",
                 "sv_flightDistance", "sv_flightDistanceSig", "sv_nTracks", "softMuon_pt", "softMuon_ptRel",
                 "softElectron_pt", "nTrack", "Track_pt", "Track_eta", "Track_phi", "Track_deta", "Track_dphi",
                 "Track_d0", "Track_z0", "Track_d0sig", "Track_z0sig", "Track_charge"):
        assert name in jets.fields, name
    assert ak.all(jets["jet_pt"] > 20) and ak.all(abs(jets["jet_eta"]) < 2.5)
    flavour = jets["hadronFlavour"]
    assert set(np.unique(flavour).tolist()) == {0, 4, 5}
    assert 0.1 < np.mean(flavour == 5) < 0.35 and 0.3 < np.mean(jets["is_ttbar"]) < 0.7
    # per-track branches sorted by |d0sig|, the trk1..3 branches are their first entries
    abs_sig = abs(jets["Track_d0sig"])
    assert ak.all(abs_sig[:, :-1] >= abs_sig[:, 1:])
    first = ak.fill_none(ak.firsts(jets["Track_d0sig"]), 0.0)
    np.testing.assert_allclose(ak.to_numpy(jets["trk1_d0sig"]), ak.to_numpy(first))
    assert ak.all(jets["Track_pt"] > 1.0) and ak.all(abs(jets["Track_d0"]) < 1.0)
    assert ak.all((jets["sv_nTracks"] == 0) | (jets["sv_nTracks"] >= 2))


def test_b_jets_have_displaced_tracks_and_vertices_light_jets_do_not(flavour_file):
    jets = flavour_file
    flavour = ak.to_numpy(jets["hadronFlavour"])
    mean_abs_sig = ak.to_numpy(ak.fill_none(ak.mean(abs(jets["Track_d0sig"]), axis=1), 0.0))
    with_tracks = ak.to_numpy(jets["nTrack"]) > 0
    b = mean_abs_sig[(flavour == 5) & with_tracks].mean()
    light = mean_abs_sig[(flavour == 0) & with_tracks].mean()
    assert 0.6 < light < 1.6  # resolution only: ≈ 0.8 for a Gaussian, a little more with tails
    assert b > 2.5 * light
    has_sv = ak.to_numpy(jets["sv_nTracks"]) > 0
    assert has_sv[flavour == 5].mean() > 0.35 and has_sv[flavour == 0].mean() < 0.05
    sv_mass = ak.to_numpy(jets["sv_mass"])
    assert np.median(sv_mass[(flavour == 5) & has_sv]) > 1.0  # B hadron decay products: GeV scale
    muon = ak.to_numpy(jets["softMuon_pt"]) > 0
    assert muon[flavour == 5].mean() > muon[flavour == 0].mean()


def test_jet_flavour_chunk_is_reproducible():
    a = jet_flavour.generate_chunk(40, 7)
    _assert_same(a, jet_flavour.generate_chunk(40, 7))
    assert _differ(a, jet_flavour.generate_chunk(40, 8), "jet_pt")


# ---------------------------------------------------------------------------------------------
# boosted top tagging
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def top_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("top") / "top_tagging.root"
    generate("top_tagging", events=80, seed=21, out=path)
    return _read(path, top_tagging.TREE)


def _min_pair_mass_of_three_subjets(jets):
    """CMS top tagger's m_min: smallest pairwise mass of the 3 exclusive-kT subjets (the W candidate)."""
    cons = ak.values_astype(ak.zip({"px": jets["Part_px"], "py": jets["Part_py"], "pz": jets["Part_pz"],
                                    "E": jets["Part_E"]}), np.float64)
    with P.quiet_fastjet():
        sub = fastjet.ClusterSequence(cons, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0)).exclusive_jets_up_to(3)
    a, b = ak.unzip(ak.combinations(sub, 2))
    mass = P.invariant_mass(a.px + b.px, a.py + b.py, a.pz + b.pz, a.E + b.E)
    return ak.to_numpy(ak.fill_none(ak.min(mass, axis=1), 0.0))


def test_top_tagging_file_layout(top_file):
    jets = top_file
    for name in ("is_signal", "FatJet_pt", "FatJet_eta", "FatJet_phi", "FatJet_mass", "FatJet_tau1",
                 "FatJet_tau2", "FatJet_tau3", "nPart", "Part_E", "Part_px", "Part_py", "Part_pz", "truth_top_pt"):
        assert name in jets.fields, name
    assert str(ak.type(jets["FatJet_tau2"])).endswith("float32")
    assert ak.all((jets["FatJet_pt"] > 550) & (jets["FatJet_pt"] < 650)) and ak.all(abs(jets["FatJet_eta"]) < 2)
    assert ak.all(jets["nPart"] <= 200) and ak.all(jets["nPart"] > 3)
    part_pt = np.hypot(jets["Part_px"], jets["Part_py"])
    assert ak.all(part_pt[:, :-1] >= part_pt[:, 1:] - 1e-3)  # sorted by pT
    signal = jets["is_signal"] == 1
    assert 15 <= int(ak.sum(signal)) <= 65
    assert ak.all(jets["truth_top_pt"][signal] > 400) and ak.all(jets["truth_top_pt"][~signal] == 0)
    for n in (1, 2, 3):  # normalised: 0 <= tau_N, and below ~1 for constituents within R0 of the axes
        assert ak.all((jets[f"FatJet_tau{n}"] >= 0) & (jets[f"FatJet_tau{n}"] < 1.5))
    # without axis minimisation tau_N need not fall with N jet by jet, but it does on average
    assert ak.mean(jets["FatJet_tau3"]) < ak.mean(jets["FatJet_tau2"]) < ak.mean(jets["FatJet_tau1"])


def test_top_jets_peak_at_the_top_mass_with_a_w_subjet_pair(top_file):
    jets = top_file
    signal = ak.to_numpy(jets["is_signal"]) == 1
    mass = ak.to_numpy(jets["FatJet_mass"])
    counts, edges = np.histogram(mass[signal], bins=np.arange(100, 260, 15))
    peak = edges[np.argmax(counts)] + 7.5
    assert 155 < peak < 195 and 160 < np.median(mass[signal]) < 190  # m_top = 172.5 GeV in Pythia
    assert np.median(mass[~signal]) < 120
    m_w = _min_pair_mass_of_three_subjets(jets)
    in_window = signal & (mass > 140) & (mass < 200)
    assert 65 < np.median(m_w[in_window]) < 92  # m_W = 80.4 GeV
    assert np.median(m_w[~signal]) < 50
    tau32 = ak.to_numpy(jets["FatJet_tau3"] / jets["FatJet_tau2"])
    assert np.median(tau32[signal]) < np.median(tau32[~signal]) - 0.15  # three-prong tops


def test_nsubjettiness_matches_fastjet_contrib_and_accepts_padded_input(top_file):
    jets = top_file[:25]
    parts = [ak.values_astype(jets[f"Part_{c}"], np.float64) for c in ("px", "py", "pz", "E")]
    ours = top_tagging.nsubjettiness(*parts, R0=0.8, N=3)
    cons = ak.unflatten(ak.zip(dict(zip(("px", "py", "pz", "E"), parts))), 1, axis=0)
    contrib = fastjet.ClusterSequence(cons, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.8)).njettiness(
        njets=[1, 2, 3], axes_definition="KT_Axes", measure_definition="NormalizedMeasure", R0=0.8)
    contrib = ak.to_numpy(contrib[:, 0, :])
    for n in range(3):
        np.testing.assert_allclose(ours[n], contrib[:, n], rtol=1e-5, atol=1e-9)
    # the reference HDF5 layout: zero-padded (n_jets, 200) arrays give the same values
    padded = [ak.to_numpy(ak.fill_none(ak.pad_none(p, 200, clip=True), 0.0)) for p in parts]
    for n, tau in enumerate(top_tagging.nsubjettiness(*padded)):
        np.testing.assert_allclose(tau, ours[n], rtol=1e-9)
    with pytest.raises(ValueError, match="N=0"):
        top_tagging.nsubjettiness(*parts, N=0)


def test_top_tagging_chunk_is_reproducible_and_smearing_is_optional():
    a = top_tagging.generate_chunk(8, 9)
    _assert_same(a, top_tagging.generate_chunk(8, 9))
    assert _differ(a, top_tagging.generate_chunk(8, 10), "FatJet_pt")
    smeared = top_tagging.generate_chunk(8, 9, smear=True)
    assert _differ(a, smeared, "Part_E")
    assert np.all((smeared["FatJet_pt"] > 550) & (smeared["FatJet_pt"] < 650))
