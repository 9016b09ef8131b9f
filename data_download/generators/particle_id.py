"""Charged-particle identification at an LHCb-like forward spectrometer: e, μ, π, K, p and ghost tracks.

One entry per reconstructed long track (tree ``Tracks``), with 48 features named as in the
LHCb-style course PID task: tracking, dE/dx, RICH, calorimeters and muon system. ``label`` is the
true species (:data:`CLASSES`: 0 ghost, 1 e, 2 μ, 3 π, 4 K, 5 p). Every response is a parametric
detector model written from the physics and vectorised over tracks; :data:`DEFAULTS` holds the
species fractions (balanced, as in the course task), spectra and resolutions (pass ``params=``).

Physics choices and their sources
---------------------------------
Kinematics
    Long tracks in 2 < η < 5 with p > 2 GeV (softer ones are bent out of the spectrometer);
    p - p_min is Gamma-distributed per species, harder for heavy-flavour leptons and protons.
Tracking and ghosts
    VELO/TT/T-station hit counts are binomial in the layers crossed; χ² = χ²(ndf) scaled for
    multiple scattering (∝ 1/p), plus brem kinks (electrons), decay kinks (π/K decaying in
    flight) and outlier hits. Ghosts are fakes: most join a wrong VELO segment to a real
    particle's T segment (mostly a pion's), so RICH, calorimeters and muon stations see that
    particle at its own momentum while the track's momentum is off; the rest are combinatorial.
    Ghosts have fewer hits, a scaled χ² and a poor VELO–T match. ``TrackGhostProbability`` is a
    logistic score of these plus hit-level information not written out, like LHCb's ghost network.
RICH (The LHCb Detector, JINST 3 (2008) S08005; LHCb RICH performance, EPJ C 73 (2013) 2431)
    Radiators aerogel n = 1.03 and C4F10 n = 1.0014 (RICH1, 25–300 mrad), CF4 n = 1.0005 (RICH2,
    15–120 mrad). cos θ_C = 1/(nβ); threshold p_th = m / sqrt(n² - 1); detected photons are
    Poisson with mean N_sat sin²θ / sin²θ_max = N_sat (1 - (p_th/p)²) (Frank–Tamm) plus a
    Poisson background; saturated yields 6.8 / 30 / 22 and single-photon resolutions
    2.6 / 1.6 / 0.7 mrad, close to LHCb's design and measured values. The ring angle is
    measured with σ/√N_sig times a per-track scale with a tail; some rings are another track's
    (mis-association). Each mass hypothesis (and "below threshold": no signal photons) has
    likelihood Poisson(N_obs | N_h + B) × (Gaussian + flat background) of the measured angle,
    evaluated at the measured momentum; DLL_h = ln L_h - ln L_π summed over the radiators used.
Calorimeters (JINST 3 (2008) S08005; Performance of the LHCb calorimeters, LHCb-DP-2013-004)
    ECAL (≈ 2.1 < η < 4.3) σ_E/E = 10 %/√E ⊕ 1 %, 25 X0 ≈ 1.1 λ_I: electrons deposit E ≈ p (a
    tail from brem-distorted momenta); hadrons interact with probability 1 - e^{-1.1} and deposit
    a Beta-distributed fraction of p (charge exchange π⁻p → π⁰n: nearly all of it), else a MIP
    (≈ 0.3 GeV); a neighbouring photon sometimes adds to the cluster. HCAL σ_E/E = 69 %/√E ⊕ 9 %
    collects the rest; muons, and π/K that decayed to a muon, are MIPs in both. The preshower
    (2.5 X0) starts electron showers. Bremsstrahlung photons emitted before the magnet are found
    for electrons, random photons otherwise. ``*PIDe`` / ``*PIDmu`` are log-likelihood ratios of
    E/p, cluster width and track–cluster match under electron (MIP) and hadron reference densities.
Muon system (The LHCb Detector; Performance of the muon identification at LHCb, LHCb-DP-2013-001)
    Stations M2–M5 behind ≈ 20 λ_I of calorimeter and iron: a muon reaches station k if its
    momentum exceeds 3.0, 3.5, 4.5, 5.5 GeV (8 % range straggling); 99.5 % station efficiency.
    Pions (cτ = 7.80 m) and kaons (cτ = 3.71 m, BR(μν) = 63.6 %) decay in flight before the
    calorimeter with probability 1 - exp(-L m / (p cτ)), L = 12 m, giving a muon with a flat
    energy fraction in [(m_μ/m)², 1]; hadrons punch through with a small probability rising with
    p; random hits in the field of interest (∝ 1/p). isMuon: M2&M3 for 3 < p < 6 GeV, plus M4
    or M5 for 6–10 GeV, all four above. Muon likelihoods are χ² tail probabilities of the
    hit–track distance D² under the muon (Gaussian residuals) and background (hits uniform in the
    field of interest) hypotheses.
dE/dx
    Restricted Bethe energy loss in silicon (PDG review "Passage of particles through matter";
    I = 173 eV, Sternheimer density effect for Si) in units of the minimum-ionising value,
    measured as a truncated mean of the VELO clusters (≈ 35 %/√N).

Flags are 0/1 floats. Quantities of a sub-detector a track misses are 0, which for a
log-likelihood ratio means "no information"; the ``InAcc*`` and ``RichUsed*`` flags say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BRANCH_DOCS", "CHUNK", "CLASSES", "DEFAULTS", "MASSES", "PIDParameters", "RADIATORS", "TREE",
    "cherenkov_angle", "cherenkov_cos_theta", "dedx_mip_units", "generate_chunk", "photon_yield",
    "threshold_momentum",
]

TREE = "Tracks"
CHUNK = 100_000

#: label -> species
CLASSES = {0: "ghost", 1: "electron", 2: "muon", 3: "pion", 4: "kaon", 5: "proton"}

#: Masses in GeV (PDG 2024), keyed by species.
MASSES = {
    "electron": 0.51099895e-3,
    "muon": 0.1056583755,
    "pion": 0.13957039,
    "kaon": 0.493677,
    "proton": 0.93827208816,
}
_HYPOTHESES = ("electron", "muon", "pion", "kaon", "proton")
_HYP_MASS = np.array([MASSES[h] for h in _HYPOTHESES])
_NO_LIGHT = 1.0e6  # GeV: an "emitter" so heavy that it never radiates (below-threshold hypothesis)
_CTAU = {"pion": 7.8045, "kaon": 3.7110}  # metres, PDG
_BR_MU = {"pion": 0.999877, "kaon": 0.6356}  # π → μν, K → μν


@dataclass(frozen=True)
class Radiator:
    """One Cherenkov radiator: refractive index, saturated yield, resolution, background, acceptance."""

    name: str
    n: float
    saturated_yield: float  # detected photons for a β = 1 track
    sigma_photon: float  # single-photon Cherenkov-angle resolution, rad
    background: float  # mean background photons attached to a ring
    eta_min: float
    eta_max: float

    @property
    def theta_max(self) -> float:
        """Saturated Cherenkov angle arccos(1/n) (β → 1)."""
        return math.acos(1.0 / self.n)


#: LHCb RICH radiators (Run 1). RICH1: 25–300 mrad ⇒ η < 4.38; RICH2: 15–120 mrad ⇒ 2.81 < η < 4.89.
RADIATORS = {
    "aerogel": Radiator("aerogel", 1.03, 6.8, 2.6e-3, 0.8, 1.89, 4.38),
    "c4f10": Radiator("c4f10", 1.0014, 30.0, 1.6e-3, 1.5, 1.89, 4.38),
    "cf4": Radiator("cf4", 1.0005, 22.0, 0.7e-3, 1.0, 2.81, 4.89),
}


@dataclass(frozen=True)
class PIDParameters:
    """Species mix, spectra and detector resolutions; :data:`DEFAULTS` is the LHCb-like set."""

    #: fractions of ghost, e, μ, π, K, p (normalised); balanced as in the course task
    fractions: tuple = (1 / 6,) * 6
    p_min: float = 2.0  # GeV
    p_shape: float = 1.2  # Gamma shape of p - p_min
    #: Gamma scale of p - p_min per label (GeV): ghost, e, μ, π, K, p
    p_scale: tuple = (10.0, 10.0, 18.0, 12.0, 16.0, 20.0)
    eta_range: tuple = (2.0, 5.0)
    # ghosts
    ghost_mismatch_fraction: float = 0.7  # wrong VELO segment on a real particle's T segment
    ghost_parent_fractions: tuple = (0.05, 0.03, 0.70, 0.12, 0.10)  # e, μ, π, K, p
    ghost_velo_hit_eff: float = 0.90
    ghost_t_hit_eff: float = 0.86
    ghost_chi2_scale: float = 1.35
    ghost_hidden_shift: float = 1.2  # ghost-probability network inputs not written out
    # tracking
    velo_hit_eff: float = 0.97
    t_hit_eff: float = 0.93
    # RICH
    rich_efficiency: float = 0.97  # a radiator's ring found when in acceptance
    rich_misassociation: float = 0.08  # ring belongs to another (pion) track
    rich_scale_spread: float = 0.25  # log-normal per-track resolution scale
    rich_tail_fraction: float = 0.10
    rich_tail_scale: float = 3.0
    rich_ghost_scale: float = 2.5  # ghosts: wrong track direction, displaced ring centre
    # calorimeters
    ecal_stochastic: float = 0.10
    ecal_constant: float = 0.01
    hcal_stochastic: float = 0.69
    hcal_constant: float = 0.09
    ecal_interaction_lengths: float = 1.1
    electron_tail_fraction: float = 0.3
    charge_exchange: float = 0.05
    calo_overlap: float = 0.12  # clusters with a neighbouring photon's energy added
    brem_found_electron: float = 0.6
    brem_found_other: float = 0.08
    # muon system
    muon_station_p: tuple = (3.0, 3.5, 4.5, 5.5)  # GeV to reach M2..M5
    muon_range_straggling: float = 0.08
    muon_station_eff: float = 0.995  # two OR-ed gas gaps per station
    muon_random_hit: float = 0.01  # per station, at high p; × (1 + 10 GeV / p)
    punch_through: float = 0.01  # per track at 10 GeV into M2, ∝ p^0.8, halving per station
    decay_length: float = 12.0  # m, origin to calorimeter
    # dE/dx
    dedx_resolution: float = 0.35  # relative, / sqrt(n VELO clusters)
    radiators: dict = field(default_factory=lambda: dict(RADIATORS))


DEFAULTS = PIDParameters()


# --------------------------------------------------------------------------- Cherenkov formulae
def cherenkov_cos_theta(p, mass, n):
    """cos θ_C = 1/(nβ) with β = p/E; values > 1 mean the particle is below threshold."""
    p = np.asarray(p, dtype=np.float64)
    return np.sqrt(p * p + np.square(mass)) / (n * p)


def cherenkov_angle(p, mass, n):
    """Cherenkov angle θ_C in rad, NaN below threshold; → arccos(1/n) as β → 1."""
    cos = cherenkov_cos_theta(p, mass, n)
    with np.errstate(invalid="ignore"):
        return np.where(cos < 1.0, np.arccos(np.minimum(cos, 1.0)), np.nan)


def threshold_momentum(mass, n):
    """Momentum above which a particle of ``mass`` radiates in index ``n``: m / sqrt(n² - 1)."""
    return np.asarray(mass) / math.sqrt(n * n - 1.0)


def photon_yield(p, mass, n, saturated_yield):
    """Expected detected photons N_sat sin²θ/sin²θ_max = N_sat (1 - (p_th/p)²), zero below threshold."""
    p = np.asarray(p, dtype=np.float64)
    ratio = 1.0 - np.square(threshold_momentum(mass, n) / p)
    return saturated_yield * np.clip(ratio, 0.0, None)


# --------------------------------------------------------------------------- small log-densities
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TINY = 1e-30


def _log_gauss(x, mu, sigma):
    return -0.5 * np.square((x - mu) / sigma) - np.log(sigma) - _LOG_SQRT_2PI


def _log_lognormal(x, median, s):
    x = np.maximum(x, 1e-12)
    return _log_gauss(np.log(x), math.log(median), s) - np.log(x)


def _log_beta(x, a, b):
    x = np.clip(x, 1e-6, 1.0 - 1e-6)
    log_b = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_b


def _log_chi2_2dof(x, scale):
    """Density of ``scale`` × χ²(2 dof): exponential with mean 2·scale."""
    return -np.maximum(x, 0.0) / (2.0 * scale) - math.log(2.0 * scale)


def _lognormal(rng, median, s, size):
    return median * np.exp(s * rng.standard_normal(size))


# --------------------------------------------------------------------------- dE/dx (restricted Bethe)
_ME = 0.51099895e-3  # GeV
_SI_I = 173e-9  # GeV, mean excitation energy of silicon
# Sternheimer density-effect parameters for silicon (PDG atomic and nuclear properties)
_SI_C, _SI_X0, _SI_X1, _SI_A, _SI_K, _SI_D0 = 4.4355, 0.2015, 2.8716, 0.1492, 3.2546, 0.14
_T_CUT = 100e-6  # GeV: the restricted loss stands for the truncated mean of thin-silicon clusters


def _density_effect(beta_gamma):
    """Sternheimer's δ(βγ) for silicon."""
    x = np.log10(beta_gamma)
    two_ln10 = 2.0 * math.log(10.0)
    mid = two_ln10 * x - _SI_C + _SI_A * np.power(np.clip(_SI_X1 - x, 0.0, None), _SI_K)
    return np.select([x >= _SI_X1, x >= _SI_X0], [two_ln10 * x - _SI_C, mid],
                     _SI_D0 * np.power(10.0, 2.0 * (x - _SI_X0)))


def _restricted_bethe(beta_gamma, mass):
    """Restricted energy loss (arbitrary units) in silicon, PDG "Passage of particles" eq. 34.12."""
    bg2 = np.square(beta_gamma)
    gamma = np.sqrt(1.0 + bg2)
    beta2 = bg2 / (1.0 + bg2)
    ratio = _ME / mass
    t_max = 2.0 * _ME * bg2 / (1.0 + 2.0 * gamma * ratio + ratio * ratio)
    t_up = np.minimum(_T_CUT, t_max)
    bracket = (0.5 * np.log(2.0 * _ME * bg2 * t_up / _SI_I**2)
               - 0.5 * beta2 * (1.0 + t_up / t_max) - 0.5 * _density_effect(beta_gamma))
    return bracket / beta2


_DEDX_MIP = float(np.min(_restricted_bethe(np.logspace(0, 1.5, 400), MASSES["pion"])))


def dedx_mip_units(p, mass):
    """Mean restricted dE/dx in silicon in units of the minimum-ionising value."""
    p = np.asarray(p, dtype=np.float64)
    return _restricted_bethe(p / mass, mass) / _DEDX_MIP


# --------------------------------------------------------------------------- the detector, piece by piece
def _kinematics(rng, label, prm):
    n = label.size
    scale = np.asarray(prm.p_scale)[label]
    p = prm.p_min + rng.gamma(prm.p_shape, 1.0, n) * scale
    lo, hi = prm.eta_range
    eta_real = lo + (hi - lo) * rng.beta(2.0, 2.6, n)
    eta_flat = rng.uniform(lo, hi, n)
    eta = np.where((label == 0) & (rng.random(n) < 0.5), eta_flat, eta_real)
    return p, p / np.cosh(eta), eta


def _ghost_parents(rng, label, p, prm):
    """Who made the downstream detector response: the species itself, or a ghost's parent.

    Most ghosts join a real particle's T-station segment to a wrong VELO segment: RICH2, the
    calorimeters and the muon system see that particle (``species`` 1..5) at its true momentum,
    while the track's measured momentum is off. The rest are combinatorial (``species`` 0).
    """
    n = label.size
    ghost = label == 0
    parent = rng.choice(5, size=n, p=np.asarray(prm.ghost_parent_fractions) / sum(prm.ghost_parent_fractions)) + 1
    mismatch = ghost & (rng.random(n) < prm.ghost_mismatch_fraction)
    species = np.where(ghost, np.where(mismatch, parent, 0), label)
    p_true = np.where(mismatch, p * _lognormal(rng, 1.0, 0.4, n), p)
    return species, p_true


def _decays_in_flight(rng, species, p_true, prm):
    """π/K → μν before the calorimeter: mask and the daughter muon's momentum."""
    n = species.size
    decayed = np.zeros(n, dtype=bool)
    p_mu = np.zeros(n)
    u, frac = rng.random(n), rng.random(n)
    for code, name in ((3, "pion"), (4, "kaon")):
        mass = MASSES[name]
        prob = (1.0 - np.exp(-prm.decay_length * mass / (p_true * _CTAU[name]))) * _BR_MU[name]
        sel = (species == code) & (u < prob)
        x_min = (MASSES["muon"] / mass) ** 2  # two-body decay: daughter energy flat in [x_min, 1] E
        decayed |= sel
        p_mu = np.where(sel, p_true * (x_min + (1.0 - x_min) * frac), p_mu)
    return decayed, p_mu


def _tracking(rng, label, p, eta, decayed, prm):
    n = label.size
    ghost = label == 0
    n_velo_max = np.clip(np.rint(8.0 + 2.0 * (eta - 2.0)), 8, 14).astype(np.int64)
    n_velo = rng.binomial(n_velo_max, np.where(ghost, prm.ghost_velo_hit_eff, prm.velo_hit_eff))
    n_tt = rng.binomial(4, np.where(ghost, 0.8, 0.95))
    n_t = rng.binomial(24, np.where(ghost, prm.ghost_t_hit_eff, prm.t_hit_eff))
    n_velo = np.maximum(n_velo, 3)
    n_t = np.maximum(n_t, 9)
    ndf = n_velo + n_tt + n_t - 5
    ms = 1.0 + 1.5 / p  # multiple-scattering model mismatch grows at low p
    chi2 = rng.chisquare(ndf) * ms
    chi2 += np.where(rng.random(n) < 0.05, rng.exponential(15.0, n), 0.0)  # outlier hits
    brem_kink = (label == 1) & (rng.random(n) < 0.3)
    chi2 += np.where(brem_kink, rng.exponential(12.0, n), 0.0)
    chi2 += np.where(decayed & (rng.random(n) < 0.5), rng.exponential(25.0, n), 0.0)  # kink before T
    ghost_scale = prm.ghost_chi2_scale * np.exp(0.35 * rng.standard_normal(n))
    chi2 = np.where(ghost, chi2 * ghost_scale, chi2)
    match = rng.chisquare(4, n) * ms * np.where(ghost, _lognormal(rng, 2.0, 0.7, n), 1.0)
    match += np.where(decayed, rng.exponential(6.0, n), 0.0)
    chi2ndf = chi2 / ndf
    hidden = np.where(ghost, rng.normal(prm.ghost_hidden_shift, 1.2, n), rng.normal(0.0, 1.0, n))
    score = (-3.0 + 1.2 * (chi2ndf - 1.0) + 0.5 * np.log1p(match) - 0.15 * (n_t - 21)
             - 0.1 * (n_velo - 11) + hidden)
    ghost_prob = 1.0 / (1.0 + np.exp(-score))
    return {
        "TrackChi2PerDof": chi2ndf, "TrackNumDof": ndf, "TrackNVeloHits": n_velo, "TrackNTHits": n_t,
        "TrackMatchChi2": match, "TrackGhostProbability": ghost_prob,
    }


def _dedx(rng, species, p_true, n_velo, prm):
    mass = np.concatenate([[MASSES["pion"]], _HYP_MASS])[species]
    sigma = prm.dedx_resolution / np.sqrt(n_velo)
    sigma = np.where(species == 0, np.hypot(sigma, 0.25), sigma)  # random clusters: broader
    return dedx_mip_units(p_true, mass) * np.exp(sigma * rng.standard_normal(species.size))


def _rich(rng, label, species, p, p_true, eta, prm):
    """Photon counts and the RICH delta-log-likelihoods of every mass hypothesis."""
    n = label.size
    ghost = label == 0
    # who emitted the ring attached to this track, and at which momentum
    m_emit = np.concatenate([[_NO_LIGHT], _HYP_MASS])[species]
    p_emit = p_true.copy()
    misassoc = rng.random(n) < prm.rich_misassociation
    m_emit = np.where(misassoc, MASSES["pion"], m_emit)
    p_emit = np.where(misassoc, p * _lognormal(rng, 1.0, 0.6, n), p_emit)
    scale = _lognormal(rng, 1.0, prm.rich_scale_spread, n)
    scale = np.where(rng.random(n) < prm.rich_tail_fraction, scale * prm.rich_tail_scale, scale)
    scale = np.where(ghost, scale * prm.rich_ghost_scale, scale)  # wrong direction: displaced ring centre

    hyp_masses = list(_HYP_MASS) + [_NO_LIGHT]  # e, μ, π, K, p, below threshold
    log_l = np.zeros((len(hyp_masses), n))
    out = {}
    gas_n = np.ones(n)  # largest refractive index (lowest threshold) among the gas radiators used
    for key, rad in prm.radiators.items():
        found = rng.random(n) < prm.rich_efficiency  # ring found, radiator by radiator
        used = found & (eta > rad.eta_min) & (eta < rad.eta_max)
        n_sig = rng.poisson(photon_yield(p_emit, m_emit, rad.n, rad.saturated_yield) * used)
        n_bkg = rng.poisson(rad.background * used)
        n_obs = n_sig + n_bkg
        window = 1.25 * rad.theta_max  # background-only rings fit an angle anywhere in the window
        theta_true = np.nan_to_num(cherenkov_angle(p_emit, m_emit, rad.n))
        sigma = rad.sigma_photon * scale / np.sqrt(np.maximum(n_sig, 1))
        theta_meas = np.where(n_sig > 0, theta_true + sigma * rng.standard_normal(n), window * rng.random(n))
        has_photons = n_obs > 0
        for h, mass in enumerate(hyp_masses):
            # the reconstruction knows only the measured momentum and the nominal resolution
            yield_h = photon_yield(p, mass, rad.n, rad.saturated_yield)
            mu = yield_h + rad.background
            f_sig = yield_h / mu
            theta_h = np.nan_to_num(cherenkov_angle(p, mass, rad.n))
            s_eff = rad.sigma_photon / np.sqrt(np.maximum(n_obs * f_sig, 1.0))
            angle = np.logaddexp(np.log(np.maximum(f_sig, _TINY)) + _log_gauss(theta_meas, theta_h, s_eff),
                                 np.log(np.maximum(1.0 - f_sig, _TINY) / window))
            ll = n_obs * np.log(mu) - mu + np.where(has_photons, angle, 0.0)
            log_l[h] += np.where(used, ll, 0.0)
        if key != "aerogel":
            gas_n = np.where(used, np.maximum(gas_n, rad.n), gas_n)
        suffix = {"aerogel": "Aero", "c4f10": "R1Gas", "cf4": "R2Gas"}.get(key, key)
        out[f"RichUsed{suffix}"] = used
        out[f"RichNPhotons{suffix}"] = n_obs
    dll = np.clip(log_l - log_l[2], -150.0, 150.0)
    out.update({"RichDLLe": dll[0], "RichDLLmu": dll[1], "RichDLLk": dll[3], "RichDLLp": dll[4],
                "RichDLLbt": dll[5]})
    has_gas = gas_n > 1.0
    for flag, name in (("El", "electron"), ("Mu", "muon"), ("Pi", "pion"), ("Ka", "kaon"), ("Pr", "proton")):
        p_th = MASSES[name] / np.sqrt(np.where(has_gas, gas_n * gas_n - 1.0, 1.0))
        out[f"RichAbove{flag}Thres"] = has_gas & (p > p_th)
    return out


def _calorimeters(rng, label, species, p, p_true, eta, decayed, p_mu, prm):
    """ECAL, preshower, HCAL and bremsstrahlung responses with their log-likelihood ratios."""
    n = label.size
    comb = species == 0  # combinatorial ghost: points at a random cluster
    electron = species == 1
    muon = (species == 2) | decayed  # a π/K that decayed before the calorimeter leaves a muon
    hadron = (species >= 3) & ~decayed
    e_true = np.where(decayed, p_mu, p_true)
    in_ecal = (eta > 2.1) & (eta < 4.3)  # outer edge ≈ 245 mrad, beam-pipe hole ≈ 27 mrad
    in_hcal = (eta > 2.1) & (eta < 4.2)
    sig_e = np.hypot(prm.ecal_stochastic / np.sqrt(e_true), prm.ecal_constant)
    # --- ECAL: energy, cluster width (cm), track–cluster match χ²
    p_int = 1.0 - math.exp(-prm.ecal_interaction_lengths)
    interacts = hadron & (rng.random(n) < p_int)
    mip = muon | (hadron & ~interacts)
    e_tail = rng.random(n) < prm.electron_tail_fraction  # brem-distorted momentum, overlaps
    e_core = 1.0 + np.hypot(sig_e, 0.05) * rng.standard_normal(n)
    e_electron = e_true * np.where(e_tail, _lognormal(rng, 0.9, 0.25, n), e_core)
    e_mip = _lognormal(rng, 0.30, 0.30, n)
    cex = rng.random(n) < prm.charge_exchange  # π⁻p → π⁰n: nearly all energy electromagnetic
    frac = np.where(cex, rng.normal(0.85, 0.15, n), rng.beta(1.6, 4.0, n))
    e_shower = e_true * frac * (1.0 + sig_e * rng.standard_normal(n))
    e_random = _lognormal(rng, 0.8, 1.0, n)
    ecal_e = np.select([electron, mip, interacts, comb], [e_electron, e_mip, e_shower, e_random])
    overlap = rng.random(n) < prm.calo_overlap  # a photon (π⁰ → γγ) lands in the same cluster
    ecal_e = np.maximum(ecal_e + np.where(overlap, _lognormal(rng, 1.5, 0.9, n), 0.0), 0.0)
    width = np.select([electron, mip, interacts, comb],
                      [rng.normal(3.4, 0.6, n), _lognormal(rng, 2.0, 0.2, n),
                       _lognormal(rng, 4.5, 0.35, n), _lognormal(rng, 4.0, 0.45, n)])
    width = np.maximum(width, 0.5)
    match_scale = np.select([electron, mip, interacts], [1.0, 1.5, 2.5], 1.0)
    match_scale = np.where(comb, _lognormal(rng, 25.0, 0.8, n), match_scale * np.where(label == 0, 2.0, 1.0))
    match = rng.chisquare(2, n) * match_scale
    eop = ecal_e / p
    # reference likelihoods of the reconstruction: electron, MIP, hadron (MIP or shower)
    ll_e = (np.logaddexp(math.log(1.0 - prm.electron_tail_fraction) + _log_gauss(eop, 1.0, np.hypot(sig_e, 0.05)),
                         math.log(prm.electron_tail_fraction) + _log_lognormal(eop, 0.9, 0.25))
            - np.log(p) + _log_gauss(width, 3.4, 0.6) + _log_chi2_2dof(match, 1.0))
    ll_mip = _log_lognormal(ecal_e, 0.30, 0.30) + _log_lognormal(width, 2.0, 0.2) + _log_chi2_2dof(match, 1.5)
    ll_shower_eop = np.logaddexp(math.log(1.0 - prm.charge_exchange) + _log_beta(eop, 1.6, 4.0),
                                 math.log(prm.charge_exchange) + _log_gauss(eop, 0.85, 0.15))
    ll_show = ll_shower_eop - np.log(p) + _log_lognormal(width, 4.5, 0.35) + _log_chi2_2dof(match, 2.5)
    ll_had = np.logaddexp(math.log(1.0 - p_int) + ll_mip, math.log(p_int) + ll_show)
    ecal_pide = np.clip(ll_e - ll_had, -30.0, 30.0)
    ecal_pidmu = np.clip(ll_mip - ll_had, -30.0, 30.0)
    # --- Preshower (GeV): 2.5 X0 of lead, electrons start showering, hadrons rarely interact
    prs_mip = _lognormal(rng, 0.0045, 0.35, n)
    e_showers = electron & (rng.random(n) < 0.85)
    h_showers = hadron & (rng.random(n) < 0.05)
    prs_e = np.select([e_showers, h_showers, comb & (rng.random(n) < 0.3)],
                      [_lognormal(rng, 0.030, 0.6, n), _lognormal(rng, 0.015, 0.8, n),
                       _lognormal(rng, 0.010, 1.0, n)], prs_mip)
    prs_pide = (np.logaddexp(math.log(0.85) + _log_lognormal(prs_e, 0.030, 0.6),
                             math.log(0.15) + _log_lognormal(prs_e, 0.0045, 0.35))
                - np.logaddexp(math.log(0.95) + _log_lognormal(prs_e, 0.0045, 0.35),
                               math.log(0.05) + _log_lognormal(prs_e, 0.015, 0.8)))
    # --- HCAL (GeV): what the ECAL left, with hadronic resolution
    sig_h = np.hypot(prm.hcal_stochastic / np.sqrt(np.maximum(e_true, 0.5)), prm.hcal_constant)
    left = np.maximum(e_true - np.where(interacts, e_shower, e_mip), 0.05)
    hcal_had = left * 0.95 * (1.0 + sig_h * rng.standard_normal(n))
    hcal_e = np.select([electron, muon, hadron, comb],
                       [e_true * rng.beta(1.2, 50.0, n), _lognormal(rng, 1.6, 0.35, n), hcal_had,
                        _lognormal(rng, 1.5, 1.0, n)])
    hcal_e = np.maximum(hcal_e, 0.0)
    hop = hcal_e / p
    ll_h_had = _log_gauss(hop, 0.75, 0.3) - np.log(p)
    hcal_pide = np.clip(_log_beta(hop, 1.2, 50.0) - np.log(p) - ll_h_had, -30.0, 30.0)
    hcal_pidmu = np.clip(_log_lognormal(hcal_e, 1.6, 0.35) - ll_h_had, -30.0, 30.0)
    # --- bremsstrahlung photon emitted before the magnet
    in_brem = in_ecal
    brem_found = rng.random(n) < np.where(electron, prm.brem_found_electron, prm.brem_found_other)
    brem_e = np.where(electron, rng.exponential(1.0, n) * 0.25 * p, rng.exponential(1.5, n))
    brem_pide = np.where(
        brem_found,
        math.log(prm.brem_found_electron / prm.brem_found_other)
        + (-brem_e / (0.25 * p) - np.log(0.25 * p)) - (-brem_e / 1.5 - math.log(1.5)),
        math.log((1.0 - prm.brem_found_electron) / (1.0 - prm.brem_found_other)))
    brem_pide = np.clip(brem_pide, -15.0, 15.0)
    return {
        "InAccEcal": in_ecal, "EcalE": ecal_e * in_ecal, "CaloEoverP": eop * in_ecal,
        "EcalShowerWidth": width * in_ecal, "CaloTrackMatchChi2": match * in_ecal,
        "EcalPIDe": ecal_pide * in_ecal, "EcalPIDmu": ecal_pidmu * in_ecal,
        "PrsE": prs_e * in_ecal, "PrsPIDe": prs_pide * in_ecal,
        "InAccHcal": in_hcal, "HcalE": hcal_e * in_hcal, "HcalPIDe": hcal_pide * in_hcal,
        "HcalPIDmu": hcal_pidmu * in_hcal,
        "InAccBrem": in_brem, "BremPIDe": brem_pide * in_brem,
    }


def _muon_system(rng, label, species, p, p_true, eta, decayed, p_mu, prm):
    """Hits in M2–M5, isMuon / isMuonLoose and the muon-hypothesis likelihoods."""
    n = label.size
    comb = species == 0
    hadron = (species >= 3) & ~decayed
    in_acc = eta < 4.6  # M2 inner edge at ≈ 20 mrad
    p_muon = np.where(species == 2, p_true, np.where(decayed, p_mu, 0.0))
    straggle = 1.0 + prm.muon_range_straggling * rng.standard_normal(n)
    needed = np.asarray(prm.muon_station_p)[None, :] * straggle[:, None]  # (n, 4)
    reach = p_muon[:, None] > needed
    true_hit = reach & (rng.random((n, 4)) < prm.muon_station_eff)
    depth = 0.5 ** np.arange(4)
    punch_rate = prm.punch_through * (p_true[:, None] / 10.0) ** 0.8 * depth
    punch = hadron[:, None] & (rng.random((n, 4)) < punch_rate)
    rate = prm.muon_random_hit * (1.0 + 10.0 / p) * np.where(comb, 2.0, 1.0)
    random_hit = rng.random((n, 4)) < rate[:, None]
    hit = in_acc[:, None] & (true_hit | punch | random_hit)
    true_hit &= hit
    n_hit = hit.sum(axis=1)
    m2, m3, m4, m5 = hit.T
    # isMuon uses the measured momentum (LHCb-DP-2013-001)
    is_muon = np.select([p < 3.0, p < 6.0, p < 10.0], [False, m2 & m3, m2 & m3 & (m4 | m5)], m2 & m3 & m4 & m5)
    is_loose = np.select([p < 3.0, p < 6.0], [False, (m2.astype(int) + m3 + m4) >= 2], n_hit >= 3)
    # hit–track distance²: Gaussian residuals for real muon hits (wider after a decay kink or
    # a mismatched segment), uniform in a ±4σ field of interest for punch-through and random hits
    widen = np.where(decayed | (label == 0), 1.5, 1.0)[:, None]
    gauss = np.square(rng.standard_normal((n, 4, 2))).sum(axis=2) * widen**2
    flat = np.square(rng.uniform(-4.0, 4.0, (n, 4, 2))).sum(axis=2)
    d2_station = np.where(true_hit, gauss, flat)
    k = np.maximum(n_hit, 1)
    d2 = np.where(hit, d2_station, 0.0).sum(axis=1) / k
    from scipy.special import gammainc, gammaincc

    prob_mu = gammaincc(k, k * d2 / 2.0)  # P(χ²_2k / k > D² | muon)
    prob_bkg = gammainc(k, k * d2 / (2.0 * 16.0 / 3.0))  # P(smaller D² | background); var of U(-4, 4) = 16/3
    ll_mu = np.where(is_loose, np.log(np.maximum(prob_mu, 1e-5)), math.log(1e-5))
    ll_bkg = np.where(is_loose, np.log(np.maximum(prob_bkg, 1e-5)), 0.0)
    shared = (hit & (rng.random((n, 4)) < np.where(true_hit, 0.02, 0.3))).sum(axis=1)
    return {
        "InAccMuon": in_acc, "MuonIsMuon": is_muon, "MuonIsLooseMuon": is_loose,
        "MuonNStations": n_hit, "MuonNShared": np.where(is_loose, shared, 0),
        "MuonLLbeMuon": ll_mu, "MuonLLbeBCK": ll_bkg,
    }


# --------------------------------------------------------------------------- the generator
def generate_chunk(n: int, seed: int, *, params: PIDParameters = DEFAULTS) -> dict:
    """``n`` tracks from ``seed``: a dict of float32 feature arrays plus ``label`` (int32).

    Every draw comes from one ``numpy.random.default_rng(seed)`` in a fixed order, so the same
    ``(n, seed, params)`` always gives the same arrays.
    """
    rng = np.random.default_rng(seed)
    fractions = np.asarray(params.fractions, dtype=np.float64)
    if fractions.shape != (6,) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise ValueError(f"fractions must be 6 non-negative numbers, got {params.fractions!r}")
    label = rng.choice(6, size=n, p=fractions / fractions.sum()).astype(np.int32)
    p, pt, eta = _kinematics(rng, label, params)
    species, p_true = _ghost_parents(rng, label, p, params)
    decayed, p_mu = _decays_in_flight(rng, species, p_true, params)
    tracking = _tracking(rng, label, p, eta, decayed, params)
    columns = {"TrackP": p, "TrackPt": pt, "TrackEta": eta}
    columns.update(tracking)
    columns["TrackDEDX"] = _dedx(rng, species, p_true, tracking["TrackNVeloHits"], params)
    columns.update(_rich(rng, label, species, p, p_true, eta, params))
    columns.update(_calorimeters(rng, label, species, p, p_true, eta, decayed, p_mu, params))
    columns.update(_muon_system(rng, label, species, p, p_true, eta, decayed, p_mu, params))
    out = {key: np.asarray(value, dtype=np.float32) for key, value in columns.items()}
    out["label"] = label
    return out


BRANCH_DOCS = {
    "TrackP": "track momentum, GeV",
    "TrackPt": "track transverse momentum, GeV",
    "TrackEta": "track pseudorapidity",
    "TrackChi2PerDof": "track-fit chi2 / ndf",
    "TrackNumDof": "track-fit degrees of freedom",
    "TrackNVeloHits": "VELO clusters on the track",
    "TrackNTHits": "T-station (IT/OT) hits on the track",
    "TrackMatchChi2": "VELO-segment to T-segment match chi2",
    "TrackGhostProbability": "ghost-track probability (logistic score of track quality), 0..1",
    "TrackDEDX": "truncated-mean dE/dx in the VELO, in minimum-ionising units",
    "RichUsedAero": "1 if the aerogel radiator was used",
    "RichUsedR1Gas": "1 if the RICH1 C4F10 gas radiator was used",
    "RichUsedR2Gas": "1 if the RICH2 CF4 gas radiator was used",
    "RichNPhotonsAero": "photons detected on the aerogel ring (signal + background)",
    "RichNPhotonsR1Gas": "photons detected on the C4F10 ring (signal + background)",
    "RichNPhotonsR2Gas": "photons detected on the CF4 ring (signal + background)",
    "RichDLLe": "RICH delta log-likelihood, electron - pion",
    "RichDLLmu": "RICH delta log-likelihood, muon - pion",
    "RichDLLk": "RICH delta log-likelihood, kaon - pion",
    "RichDLLp": "RICH delta log-likelihood, proton - pion",
    "RichDLLbt": "RICH delta log-likelihood, below threshold - pion",
    "RichAboveElThres": "1 if p is above the electron threshold in a used gas radiator",
    "RichAboveMuThres": "1 if p is above the muon threshold in a used gas radiator",
    "RichAbovePiThres": "1 if p is above the pion threshold in a used gas radiator",
    "RichAboveKaThres": "1 if p is above the kaon threshold in a used gas radiator",
    "RichAbovePrThres": "1 if p is above the proton threshold in a used gas radiator",
    "InAccEcal": "1 if the track points into the ECAL (and preshower)",
    "EcalE": "energy of the ECAL cluster matched to the track, GeV",
    "CaloEoverP": "ECAL cluster energy / track momentum",
    "EcalShowerWidth": "ECAL cluster r.m.s. width, cm",
    "CaloTrackMatchChi2": "track-to-ECAL-cluster position match chi2",
    "EcalPIDe": "ECAL log-likelihood ratio, electron vs hadron",
    "EcalPIDmu": "ECAL log-likelihood ratio, minimum-ionising (muon) vs hadron",
    "PrsE": "preshower energy in front of the track, GeV",
    "PrsPIDe": "preshower log-likelihood ratio, electron vs hadron",
    "InAccHcal": "1 if the track points into the HCAL",
    "HcalE": "HCAL energy matched to the track, GeV",
    "HcalPIDe": "HCAL log-likelihood ratio, electron vs hadron",
    "HcalPIDmu": "HCAL log-likelihood ratio, minimum-ionising (muon) vs hadron",
    "InAccBrem": "1 if the bremsstrahlung photon extrapolation is in the ECAL",
    "BremPIDe": "bremsstrahlung log-likelihood ratio, electron vs hadron",
    "InAccMuon": "1 if the track points into the muon stations",
    "MuonIsMuon": "LHCb isMuon: hits in the momentum-dependent set of stations M2-M5",
    "MuonIsLooseMuon": "LHCb isMuonLoose: looser station requirement",
    "MuonNStations": "muon stations with a hit in the field of interest",
    "MuonNShared": "muon hits shared with another track (isMuonLoose tracks only)",
    "MuonLLbeMuon": "log P(hit-track distance | muon), floor ln 1e-5",
    "MuonLLbeBCK": "log P(hit-track distance | background); 0 when not isMuonLoose",
    "label": "true species: 0 ghost, 1 electron, 2 muon, 3 pion, 4 kaon, 5 proton",
}
