"""Top-quark pair versus QCD multijet events at 13 TeV (Pythia8 + FastJet), NanoAOD-like, one entry per event.

Physics choices and their sources
---------------------------------
* Generator: Pythia 8.3 (``pythia8mc`` 8.317, Bierlich et al., SciPost Phys. Codebases 8 (2022))
  with its default Monash 2013 tune (Skands, Carrazza, Rojo, EPJC 74 (2014) 3024), pp at
  √s = 13 TeV. Signal: ``Top:gg2ttbar`` + ``Top:qqbar2ttbar`` (all top decay modes). Background:
  ``HardQCD:all`` (all 2 → 2 QCD processes, heavy flavour included) with pT-hat > 100 GeV.
* Multiple parton interactions (the underlying event) are switched off, and there is no
  pile-up: with them on, Pythia needs ≈ 9 ms per ttbar event on one core here instead of
  ≈ 2 ms, and they add only a few GeV per R = 0.4 jet (small against the 30 GeV threshold). The
  boosted top-tagging reference sample makes the same choice.
* Particle level: final-state particles except neutrinos are "visible". Jets: anti-kT, R = 0.4
  (Cacciari, Salam, Soyez, JHEP 0804:063; FastJet, EPJC 72 (2012) 1896), E-scheme, from the
  visible particles with |η| < 2.5 (the tracker acceptance) minus the isolated leptons; stored
  jets have pT > 30 GeV and |η| < 2.5, sorted by pT.
* ``Jet_hadronFlavour``: 5 if a weakly decaying B hadron is ghost-associated to the jet, else 4
  for a C hadron, else 0 (CMS NanoAOD definition, CMS JINST 13 (2018) P05011).
* ``Jet_btagProxy``: y/(1+y), y = −log10 of the jet probability of the jet's tracks (ALEPH/CMS
  "Jet Probability", CMS JINST 8 (2013) P04013). Tracks: charged constituents with impact
  parameters from Pythia's production vertices (all decays on) and the resolution model
  documented in :mod:`data_download.generators._pythia` (σ(d0) = 10 µm ⊕ 60 µm·GeV/(pT√sinθ)).
* Leptons: final-state electrons and muons with pT > 10 GeV, |η| < 2.5 and relative isolation
  Σ pT(ΔR < 0.3) / pT < 0.15 ("prompt-ish": leptons from W and τ decays, not from b decays).
* MET: minus the vector pT sum of the visible final-state particles with |η| < 4.9 (calorimeter
  acceptance); neutrinos and particles beyond 4.9 make it.
* Preselection, the same for both processes: at least 4 jets and HT = Σ Jet_pt > 300 GeV (HT
  over the stored jets, so a task can recompute it). Measured efficiencies: ≈ 40 % for ttbar,
  ≈ 8 % for QCD. The QCD pT-hat cut trades speed for fidelity: in a reference run with
  pT-hat > 70 GeV (20 000 events), 90 % of the QCD events passing the preselection had
  pT-hat > 100 GeV, so the QCD HT spectrum just above 300 GeV is ~10 % low; harder cuts give
  a classifier an unphysical handle on HT (pT-hat > 150 GeV would keep only 48 %).
* Mixing: each event is ttbar with probability ½ (seeded), so the file is ≈ 50/50 in a random
  order; ``is_ttbar`` is the truth label. HT is not stored: it is a derived feature.

The file depends only on (seed, number of events): each chunk runs its own Pythia instances
seeded from the chunk seed, and all smearing uses NumPy generators from the same seed.
"""

from __future__ import annotations

import numpy as np

from data_download.generators import _pythia as P

TREE = "Events"
CHUNK = 500

ECM = 13000.0
QCD_PTHAT_MIN = 100.0
JET_R, JET_PT_MIN, JET_ETA_MAX = 0.4, 30.0, 2.5
N_JETS_MIN, HT_MIN = 4, 300.0

TTBAR_SETTINGS = (f"Beams:eCM = {ECM}", "Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "PartonLevel:MPI = off")
QCD_SETTINGS = (f"Beams:eCM = {ECM}", "HardQCD:all = on", f"PhaseSpace:pTHatMin = {QCD_PTHAT_MIN}",
                "PartonLevel:MPI = off")

BRANCH_DOCS = {
    "is_ttbar": "truth label: 1 for a ttbar event, 0 for QCD multijet",
    "Jet_pt": "anti-kT R=0.4 particle-level jet transverse momentum [GeV], pT>30, sorted by pT",
    "Jet_eta": "jet pseudorapidity, |eta|<2.5",
    "Jet_phi": "jet azimuth [rad]",
    "Jet_mass": "jet invariant mass [GeV]",
    "Jet_nConstituents": "number of visible particles clustered into the jet",
    "Jet_hadronFlavour": "5 (B hadron ghost-associated), 4 (C hadron), 0 (light), as in NanoAOD",
    "Jet_btagProxy": "b-tag-like score in [0,1): y/(1+y), y = -log10(jet probability of its tracks)",
    "Muon_pt": "isolated muon transverse momentum [GeV], pT>10, |eta|<2.5",
    "Muon_eta": "muon pseudorapidity",
    "Muon_phi": "muon azimuth [rad]",
    "Muon_charge": "muon charge (+1/-1)",
    "Electron_pt": "isolated electron transverse momentum [GeV], pT>10, |eta|<2.5",
    "Electron_eta": "electron pseudorapidity",
    "Electron_phi": "electron azimuth [rad]",
    "Electron_charge": "electron charge (+1/-1)",
    "MET_pt": "missing transverse momentum [GeV] (visible particles, |eta|<4.9)",
    "MET_phi": "azimuth of the missing transverse momentum [rad]",
}


def _jagged(values, event, n_events, dtype):
    return P.per_event(np.asarray(values).astype(dtype), event, n_events)


def reconstruct(batch: P.Batch, rng: np.random.Generator) -> dict:
    """Particle-level NanoAOD-like objects of every event of ``batch``; only preselected events are kept."""
    n = batch.n_events
    weak_b, weak_c = P.weak_heavy_hadrons(batch)
    leptons = P.isolated_leptons(batch)
    inputs = np.setdiff1d(P.final_visible(batch, JET_ETA_MAX), leptons, assume_unique=True)
    jets = P.cluster(batch, inputs, radius=JET_R, pt_min=JET_PT_MIN, ghosts=(weak_b, weak_c))
    jets = jets.select(np.abs(jets.eta) < JET_ETA_MAX)
    n_jets = np.bincount(jets.event, minlength=n)
    ht = np.bincount(jets.event, weights=jets.pt, minlength=n)
    passed = (n_jets >= N_JETS_MIN) & (ht > HT_MIN)
    jets = jets.select(passed[jets.event])  # tracks only for the events that are kept
    tracks = P.build_tracks(batch, jets, rng)
    btag = P.btag_proxy(tracks, len(jets))
    met, met_phi = P.missing_pt(batch)
    charge = batch.charge

    out = {}
    for name, values, dtype in (("pt", jets.pt, np.float32), ("eta", jets.eta, np.float32),
                                ("phi", jets.phi, np.float32), ("mass", jets.mass, np.float32),
                                ("nConstituents", jets.n_constituents, np.int32),
                                ("hadronFlavour", jets.hadron_flavour, np.int32),
                                ("btagProxy", btag, np.float32)):
        out[f"Jet_{name}"] = _jagged(values, jets.event, n, dtype)[passed]
    lep_pid = np.abs(batch.pid[leptons])
    lep_event = batch.event[leptons]
    px, py, pz = batch.px[leptons], batch.py[leptons], batch.pz[leptons]
    lep_pt, lep_eta, lep_phi = np.hypot(px, py), P.pseudorapidity(px, py, pz), np.arctan2(py, px)
    for label, code in (("Muon", 13), ("Electron", 11)):
        pick = np.flatnonzero(lep_pid == code)
        pick = pick[np.lexsort((-lep_pt[pick], lep_event[pick]))]  # by event, then pT descending
        ev = lep_event[pick]
        out[f"{label}_pt"] = _jagged(lep_pt[pick], ev, n, np.float32)[passed]
        out[f"{label}_eta"] = _jagged(lep_eta[pick], ev, n, np.float32)[passed]
        out[f"{label}_phi"] = _jagged(lep_phi[pick], ev, n, np.float32)[passed]
        out[f"{label}_charge"] = _jagged(charge[leptons][pick], ev, n, np.int32)[passed]
    out["MET_pt"] = met[passed].astype(np.float32)
    out["MET_phi"] = met_phi[passed].astype(np.float32)
    return out


def generate_chunk(n: int, seed: int) -> dict:
    """``n`` preselected events, each ttbar with probability ½, in a seeded random order."""
    is_ttbar, mixed = P.mixed_sample(n, seed, reconstruct, signal=TTBAR_SETTINGS, background=QCD_SETTINGS, efficiencies=(0.40, 0.08))
    return {"is_ttbar": is_ttbar.astype(np.int32), **mixed}
