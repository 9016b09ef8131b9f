"""Boosted top tagging: hadronic top jets vs QCD jets at 14 TeV, one entry per jet with its constituents (Pythia8, FastJet).

The recipe of the public top-tagging reference dataset (Kasieczka, Plehn et al., "The Machine
Learning Landscape of Top Taggers", SciPost Phys. 7 (2019) 014; data on Zenodo), at particle
level.

Physics choices and their sources
---------------------------------
* Pythia 8.3 with its default tune (Monash 2013), pp at √s = 14 TeV, no multiple parton
  interactions, no pile-up — as in the reference. Signal: ttbar (``Top:gg2ttbar``,
  ``Top:qqbar2ttbar``) with both W bosons forced to quarks (hadronic tops). Background: QCD
  dijets (``HardQCD:all``). Both with 500 < pT-hat < 700 GeV, which puts most leading jets in
  the 550–650 GeV window.
* The reference passes the events through Delphes with the ATLAS card; we stay at particle level:
  visible final-state particles (no neutrinos) with |η| < 4.9. ``generate_chunk(..., smear=True)``
  optionally smears each particle's energy and momentum with the ATLAS design resolutions
  (ATLAS, JINST 3 (2008) S08003): charged particles σ(pT)/pT = 0.05 %·pT/GeV ⊕ 1 % (tracker),
  photons σ(E)/E = 10 %/√E ⊕ 0.7 % (EM calorimeter), neutral hadrons σ(E)/E = 50 %/√E ⊕ 3 %
  (hadronic calorimeter). The file written by the hepml CLI is unsmeared.
* Jets: anti-kT, R = 0.8 (FastJet). Only the leading jet of each event is considered; it is kept
  when 550 < pT < 650 GeV and |η| < 2. A top jet must also be matched: a top quark and its
  three decay quarks (b and the two from the W, taken before showering) all within ΔR < 0.8 of
  the jet axis — as in the reference. ``truth_top_pt`` is that top's pT (0 for QCD). About
  24 % of the ttbar events and 41 % of the QCD events give an accepted jet.
* Constituents: the jet's particles sorted by pT, at most 200, as (E, px, py, pz) — the
  reference's format, there zero-padded to 200; here jagged with the counter ``nPart``.
* N-subjettiness τ1, τ2, τ3 (Thaler, Van Tilburg, JHEP 1103:015 (2011)), normalised measure
  with β = 1, R0 = 0.8, exclusive-kT axes: see :func:`nsubjettiness`, which the converter of the
  real reference dataset reuses.

The file depends only on (seed, number of jets); the sample is ≈ 50/50 top/QCD in a seeded
random order, ``is_signal`` being the label.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from data_download.generators import _pythia as P

TREE = "Events"
CHUNK = 500

ECM = 14000.0
PTHAT_MIN, PTHAT_MAX = 500.0, 700.0
JET_R, JET_PT_MIN, JET_PT_MAX, JET_ETA_MAX = 0.8, 550.0, 650.0, 2.0
MATCH_DR = 0.8
MAX_CONSTITUENTS = 200
PARTICLE_ETA_MAX = 4.9

_COMMON = (f"Beams:eCM = {ECM}", f"PhaseSpace:pTHatMin = {PTHAT_MIN}", f"PhaseSpace:pTHatMax = {PTHAT_MAX}",
           "PartonLevel:MPI = off")
TOP_SETTINGS = (*_COMMON, "Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off",
                "24:onIfAny = 1 2 3 4 5")
QCD_SETTINGS = (*_COMMON, "HardQCD:all = on")

# ATLAS design resolutions (JINST 3 (2008) S08003), used only with smear=True
TRACK_PT_TERM, TRACK_CONST = 0.0005, 0.01
EM_STOCHASTIC, EM_CONST = 0.10, 0.007
HAD_STOCHASTIC, HAD_CONST = 0.50, 0.03

BRANCH_DOCS = {
    "is_signal": "truth label: 1 for a matched hadronic top jet, 0 for a QCD jet",
    "FatJet_pt": "leading anti-kT R=0.8 jet transverse momentum [GeV], 550-650",
    "FatJet_eta": "jet pseudorapidity, |eta|<2",
    "FatJet_phi": "jet azimuth [rad]",
    "FatJet_mass": "jet invariant mass [GeV]",
    "FatJet_tau1": "N-subjettiness tau_1 (normalised, beta=1, R0=0.8, exclusive-kT axes)",
    "FatJet_tau2": "N-subjettiness tau_2",
    "FatJet_tau3": "N-subjettiness tau_3",
    "Part_E": "constituent energy [GeV], constituents sorted by pT descending, at most 200",
    "Part_px": "constituent px [GeV]",
    "Part_py": "constituent py [GeV]",
    "Part_pz": "constituent pz [GeV]",
    "truth_top_pt": "pT of the top quark matched to the jet [GeV]; 0 for QCD",
}


def nsubjettiness(px, py, pz, E, R0: float = 0.8, N: int = 3, *, beta: float = 1.0) -> list[np.ndarray]:
    """N-subjettiness τ_1 ... τ_N of jets given their constituents.

    τ_N = Σ_k pT,k · min_j ΔR_jk^β / Σ_k pT,k R0^β (Thaler, Van Tilburg, JHEP 1103:015), with
    ΔR in rapidity–azimuth and the N axes from exclusive kT clustering of the constituents
    (E-scheme, R = 1000) — FastJet contrib's ``KT_Axes`` with ``NormalizedMeasure(β, R0)``.

    Parameters
    ----------
    px, py, pz, E : array-like of shape (n_jets, var)
        Constituent four-momenta in GeV, Awkward arrays or anything ``ak.Array`` accepts; a
        zero-padded ``(n_jets, 200)`` NumPy array works too: entries with E <= 0 are dropped.
    R0 : float
        Characteristic jet radius of the normalisation.
    N : int
        Largest N; τ_1 ... τ_N are returned.

    Returns
    -------
    list of N ndarray of shape (n_jets,)
        ``[tau_1, ..., tau_N]``; τ_N = 0 for jets with at most N constituents, and every τ is 0
        for a jet without constituents.

    Examples
    --------
    Constituents of type ``n_jets * var * float32`` give three ``(n_jets,)`` float64 arrays::

        tau1, tau2, tau3 = nsubjettiness(jets.Part_px, jets.Part_py, jets.Part_pz, jets.Part_E)
        tau32 = tau3 / np.where(tau2 > 0, tau2, 1.0)   # small for three-prong top jets
    """
    import fastjet

    if int(N) < 1:
        raise ValueError(f"N must be >= 1; received N={N!r}")
    columns = {}
    for key, values in (("px", px), ("py", py), ("pz", pz), ("E", E)):
        values = ak.from_regular(ak.Array(values), axis=1)  # zero-padded (n, 200) -> var
        if values.ndim != 2:
            raise ValueError(f"constituent arrays must have shape (n_jets, var); received {key} of type {values.type}")
        columns[key] = ak.values_astype(values, np.float64)
    cons = ak.zip(columns)
    cons = ak.to_packed(cons[cons.E > 0])
    pt = np.hypot(cons.px, cons.py)
    y = P.rapidity(cons.px, cons.py, cons.pz, cons.E)
    phi = np.arctan2(cons.py, cons.px)
    norm = ak.to_numpy(ak.sum(pt, axis=1)) * R0 ** beta
    layout = cons.layout
    inputs = ak.Array(ak.contents.ListOffsetArray(
        ak.index.Index64(np.asarray(layout.offsets, dtype=np.int64)), layout.content))
    with P.quiet_fastjet():
        sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.kt_algorithm, 1000.0))
        taus = []
        for n_axes in range(1, int(N) + 1):
            axes = sequence.exclusive_jets_up_to(n_axes)
            ay = P.rapidity(axes.px, axes.py, axes.pz, axes.E)
            aphi = np.arctan2(axes.py, axes.px)
            pairs = ak.cartesian({"y": y, "a": ay}, axis=1, nested=True)
            phis = ak.cartesian({"p": phi, "a": aphi}, axis=1, nested=True)
            dr2 = (pairs.y - pairs.a) ** 2 + P.delta_phi(phis.p, phis.a) ** 2
            dmin = np.sqrt(ak.fill_none(ak.min(dr2, axis=2), 0.0))
            numerator = ak.to_numpy(ak.sum(pt * dmin ** beta, axis=1))
            taus.append(np.where(norm > 0, numerator / np.where(norm > 0, norm, 1.0), 0.0))
    return taus


def _smear(batch: P.Batch, rows: np.ndarray, rng: np.random.Generator) -> None:
    """Scale the four-momenta of ``rows`` in place by (1 + σ·g), σ from the ATLAS design resolutions."""
    e = batch.e[rows]
    pt = np.hypot(batch.px[rows], batch.py[rows])
    charged = batch.charge[rows] != 0
    photon = batch.pid[rows] == 22
    sqrt_e = np.sqrt(np.maximum(e, 1e-9))
    sigma = np.where(charged, np.hypot(TRACK_PT_TERM * pt, TRACK_CONST),
                     np.where(photon, np.hypot(EM_STOCHASTIC / sqrt_e, EM_CONST),
                              np.hypot(HAD_STOCHASTIC / sqrt_e, HAD_CONST)))
    scale = np.maximum(1.0 + sigma * rng.standard_normal(len(rows)), 1e-3)
    for column in (batch.px, batch.py, batch.pz, batch.e):
        column[rows] *= scale


def _top_partons(batch: P.Batch):
    """Rows of the decaying top quarks and of their b, q and q' (before showering), by top."""
    pid, d1, d2 = batch.pid, batch.daughter1, batch.daughter2
    top = np.flatnonzero((np.abs(pid) == 6) & (d1 >= 0))
    top = top[np.abs(pid[d1[top]]) != 6]  # the last copy, the one that decays
    first, second = d1[top], d2[top]
    b = np.where(np.abs(pid[first]) == 5, first, second)
    w = np.where(np.abs(pid[first]) == 24, first, second)
    for _ in range(50):  # follow the W's recoil copies to the one that decays
        nxt = d1[w]
        is_copy = (nxt >= 0) & (d2[w] == nxt) & (pid[np.maximum(nxt, 0)] == pid[w])
        if not is_copy.any():
            break
        w = np.where(is_copy, nxt, w)
    ok = (np.abs(pid[b]) == 5) & (np.abs(pid[w]) == 24) & (d1[w] >= 0) & (d2[w] >= 0)
    return top[ok], b[ok], d1[w[ok]], d2[w[ok]]


def reconstruct(batch: P.Batch, rng: np.random.Generator, *, signal: bool, smear: bool) -> dict:
    """The leading R = 0.8 jet of every event that passes the window (and, for tops, the matching)."""
    n = batch.n_events
    rows = P.final_visible(batch, PARTICLE_ETA_MAX)
    if smear:
        _smear(batch, rows, rng)
    jets = P.cluster(batch, rows, radius=JET_R, pt_min=0.8 * JET_PT_MIN)
    first = np.r_[True, jets.event[1:] != jets.event[:-1]] if len(jets) else np.zeros(0, bool)
    jets = jets.select(first)  # leading jet of each event
    pt, eta, phi = jets.pt, jets.eta, jets.phi
    keep = (pt > JET_PT_MIN) & (pt < JET_PT_MAX) & (np.abs(eta) < JET_ETA_MAX)
    top_pt = np.zeros(len(jets))
    if signal:
        matched = np.zeros(len(jets), dtype=bool)
        jet_of_event = np.full(n, -1)
        jet_of_event[jets.event] = np.arange(len(jets))
        tops, bs, q1s, q2s = _top_partons(batch)
        j = jet_of_event[batch.event[tops]]
        has_jet = j >= 0
        tops, bs, q1s, q2s, j = tops[has_jet], bs[has_jet], q1s[has_jet], q2s[has_jet], j[has_jet]
        inside = np.ones(len(j), dtype=bool)
        for parton in (tops, bs, q1s, q2s):
            ppx, ppy, ppz = batch.px[parton], batch.py[parton], batch.pz[parton]
            deta = P.pseudorapidity(ppx, ppy, ppz) - eta[j]
            dphi = P.delta_phi(np.arctan2(ppy, ppx), phi[j])
            inside &= deta ** 2 + dphi ** 2 < MATCH_DR ** 2
        matched[j[inside]] = True
        top_pt[j[inside]] = np.hypot(batch.px[tops[inside]], batch.py[tops[inside]])
        keep &= matched
    jets = jets.select(keep)
    top_pt = top_pt[keep]

    # constituents sorted by pT, at most 200
    crow, cjet = jets.const_row, jets.const_jet
    order = np.lexsort((-np.hypot(batch.px[crow], batch.py[crow]), cjet))
    crow, cjet = crow[order], cjet[order]
    starts = np.searchsorted(cjet, np.arange(len(jets)))
    rank = np.arange(len(cjet)) - starts[cjet]
    crow, cjet = crow[rank < MAX_CONSTITUENTS], cjet[rank < MAX_CONSTITUENTS]
    counts = np.bincount(cjet, minlength=len(jets))
    parts = {key: ak.unflatten(getattr(batch, col)[crow].astype(np.float32), counts)
             for key, col in (("Part_E", "e"), ("Part_px", "px"), ("Part_py", "py"), ("Part_pz", "pz"))}
    all_cons = {key: ak.unflatten(getattr(batch, key)[jets.const_row], np.bincount(jets.const_jet, minlength=len(jets)))
                for key in ("px", "py", "pz", "e")}
    tau = nsubjettiness(all_cons["px"], all_cons["py"], all_cons["pz"], all_cons["e"], R0=JET_R, N=3)

    f32 = np.float32
    out = {
        "FatJet_pt": jets.pt.astype(f32), "FatJet_eta": jets.eta.astype(f32),
        "FatJet_phi": jets.phi.astype(f32), "FatJet_mass": jets.mass.astype(f32),
        "FatJet_tau1": tau[0].astype(f32), "FatJet_tau2": tau[1].astype(f32), "FatJet_tau3": tau[2].astype(f32),
        **parts,
        "truth_top_pt": top_pt.astype(f32),
    }
    return out


def _simulate(settings, n_jets: int, seed: int, stream: int, efficiency: float, *, signal: bool, smear: bool):
    pythia = P.make_pythia(settings, P.pythia_seed(seed, stream))
    rng = P.numpy_rng(seed, 100 + stream)
    return P.collect(pythia, n_jets, lambda batch: reconstruct(batch, rng, signal=signal, smear=smear),
                     efficiency=efficiency)


def generate_chunk(n: int, seed: int, *, smear: bool = False) -> dict:
    """``n`` leading jets, each a matched top jet with probability ½, else a QCD jet, in seeded order.

    ``smear=True`` applies the optional particle-level detector smearing (see the module docstring).
    """
    rng = P.numpy_rng(seed, 0)
    is_signal = rng.random(n) < 0.5
    n_top = int(is_signal.sum())
    tops = _simulate(TOP_SETTINGS, n_top, seed, stream=1, efficiency=0.24, signal=True, smear=smear)
    qcd = _simulate(QCD_SETTINGS, n - n_top, seed, stream=2, efficiency=0.41, signal=False, smear=smear)
    return {"is_signal": is_signal.astype(np.int32), **P.interleave(tops, qcd, is_signal)}
