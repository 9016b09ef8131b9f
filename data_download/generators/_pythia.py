"""Shared Pythia8 + FastJet machinery of the hepml event generators (private helpers).

Used by :mod:`~data_download.generators.ttbar_vs_qcd`, :mod:`~data_download.generators.jet_flavour`
and :mod:`~data_download.generators.top_tagging`. Everything works on *flat* NumPy columns over a
batch of events (one row per particle of the full Pythia event record, plus event offsets), so
nothing loops over particles in Python:

* :func:`make_pythia` / :func:`generate_batch` — a seeded Pythia (``pythia8mc``) and its
  ``nextBatch`` Awkward interface, flattened into a :class:`Batch`;
* :func:`weak_heavy_hadrons` — weakly decaying B and C hadrons (the ones that define a jet's
  *hadron flavour*, as in CMS NanoAOD ``Jet_hadronFlavour``);
* :func:`cluster` — anti-kT jets of many events at once with FastJet's Awkward interface, with
  optional ghost association of B/C hadrons;
* :func:`isolated_leptons`, :func:`missing_pt` — event-level objects;
* :func:`build_tracks`, :func:`jet_probability`, :func:`secondary_vertices` — the particle-level
  "tracker": impact parameters from Pythia's production vertices with an LHC-like resolution model.

Units: GeV for momenta and masses, mm for vertices and impact parameters (Pythia's own units).

Resolution model of the tracks (one place, used by every generator)
--------------------------------------------------------------------
Transverse and longitudinal impact parameters, the usual multiple-scattering form (PDG Review
"Particle detectors at accelerators", tracking section: σ = a ⊕ b / (p sin^k θ)):

    σ(d0) = 10 µm ⊕ 60 µm·GeV / (pT √sinθ)
    σ(z0) = 30 µm ⊕ 100 µm·GeV / (pT sin^1.5 θ)

The constant terms are the CMS tracker's measured resolutions for 100 GeV muons (10 µm in d0,
30 µm in z0; CMS, JINST 9 (2014) P10009); the multiple-scattering terms give ≈ 60 µm (d0) and
≈ 100 µm (z0) at pT = 1 GeV, η = 0, between the CMS Run-1 and ATLAS-with-IBL figures. A random
5 % of tracks are measured with 3× wider errors (non-Gaussian tails from hard scatters and
wrong hits, visible as the negative-IP tail of light jets), while significances always divide
by the nominal σ, as in a real tracker. Track reconstruction efficiency is 94 % for |η| < 0.9
and 85 % beyond (CMS, same paper).

Track selection (b-tagging-like, cf. CMS JINST 13 (2018) P05011 and ATLAS JINST 11 (2016)
P04008): charged final-state jet constituents with pT > 1 GeV, |η| < 2.5, produced within the
innermost pixel layer (transverse radius < 33 mm, the ATLAS IBL radius), |d0| < 1 mm and
|z0 sinθ| < 1.5 mm. Impact parameters are signed with respect to the jet axis: positive when
the point of closest approach lies in front of the primary vertex along the jet (d0), and
sign((η_jet − η_trk)·z0) for z0 (ATLAS convention). Straight-line extrapolation (no magnetic
field) from the exact primary vertex at the origin (no beam spot, no pile-up).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import awkward as ak
import numpy as np

#: Pythia's Random:seed range; 0 would mean "seed from the clock", so seeds start at 1.
MAX_PYTHIA_SEED = 900_000_000

PION_MASS = 0.13957039  # GeV, PDG
K0S_MASS = 0.497611  # GeV, PDG

#: Settings every generator shares: quiet, seeded; decays of all unstable particles stay on
#: (``ParticleDecays:limitTau0 = off`` is Pythia's default: K0S and Λ decay and give displaced
#: tracks, as in a real detector).
COMMON_SETTINGS = (
    "Print:quiet = on",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "ParticleDecays:limitTau0 = off",
)

# --- resolution model (see the module docstring) ---------------------------------------------
D0_CONST_MM, D0_MS_MM_GEV = 0.010, 0.060
Z0_CONST_MM, Z0_MS_MM_GEV = 0.030, 0.100
TAIL_FRACTION, TAIL_SCALE = 0.05, 3.0
TRACK_EFF_CENTRAL, TRACK_EFF_FORWARD = 0.94, 0.85
TRACK_PT_MIN, TRACK_ETA_MAX, TRACK_RPROD_MAX_MM = 1.0, 2.5, 33.0
TRACK_D0_MAX_MM, TRACK_Z0SIN_MAX_MM = 1.0, 1.5

_NEUTRINOS = np.array([12, 14, 16])
_CHARGE_CACHE: dict[int, float] = {}
_TEMPLATE = None  # a never-initialised Pythia whose default settings and particle data are copied


# ================================================================================================
# Pythia
# ================================================================================================

def pythia_seed(seed: int, stream: int) -> int:
    """A Pythia ``Random:seed`` in [1, 900 000 000] for sub-stream ``stream`` of ``seed``.

    Each process in a chunk (ttbar, QCD...) gets its own independent stream, derived with
    :class:`numpy.random.SeedSequence` so that nearby chunk seeds give unrelated Pythia seeds.
    """
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, dtype=np.uint64)[0]
    return int(state % MAX_PYTHIA_SEED) + 1


def numpy_rng(seed: int, stream: int) -> np.random.Generator:
    """The NumPy generator of sub-stream ``stream`` of ``seed`` (smearing, mixing, efficiencies)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def make_pythia(settings, seed: int):
    """An initialised ``pythia8mc.Pythia`` with ``settings`` (list of strings) and ``Random:seed``."""
    import pythia8mc

    global _TEMPLATE
    if _TEMPLATE is None:  # reading Pythia's XML database takes ~0.4 s: do it once per process
        _TEMPLATE = pythia8mc.Pythia("", False)
    pythia = pythia8mc.Pythia(_TEMPLATE.settings, _TEMPLATE.particleData, False)  # pristine copies
    lines = [*COMMON_SETTINGS, *settings, "Random:setSeed = on", f"Random:seed = {int(seed)}"]
    for line in lines:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise with settings {lines}")
    return pythia


@dataclass
class Batch:
    """Flat columns of every particle of ``n`` events (Pythia's full event record).

    ``offsets[i]:offsets[i+1]`` are event ``i``'s rows; ``mother1``/``daughter1``/``daughter2``
    are *global* row numbers (−1 when absent). ``x, y, z`` is the production vertex in mm.
    """

    offsets: np.ndarray
    pid: np.ndarray
    status: np.ndarray
    mother1: np.ndarray
    daughter1: np.ndarray
    daughter2: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    charge: np.ndarray  # electric charge, units of e
    pt_hat: np.ndarray  # per event: the hard process's transverse momentum

    @property
    def n_events(self) -> int:
        return len(self.offsets) - 1

    @property
    def event(self) -> np.ndarray:
        """Event number (within the batch) of every row."""
        return np.repeat(np.arange(self.n_events), np.diff(self.offsets))


def generate_batch(pythia, n: int) -> Batch:
    """``n`` events from ``pythia`` (its vectorised ``nextBatch``), flattened into a :class:`Batch`."""
    events = pythia.nextBatch(int(n), "skip")
    prt = events.prt
    counts = ak.to_numpy(ak.num(prt, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    start = np.repeat(offsets[:-1], counts)

    def col(array, dtype=np.float64):
        return ak.to_numpy(ak.flatten(array, axis=1)).astype(dtype, copy=False)

    def pointer(array):  # local index -> global row; Pythia uses 0 for "none" (row 0 is the system)
        local = col(array, np.int64)
        return np.where(local > 0, local + start, -1)

    pid = col(prt.id, np.int64)
    vprod = prt.vProd
    vertex = [np.nan_to_num(col(ak.fill_none(getattr(vprod, c), 0.0))) for c in ("px", "py", "pz")]
    return Batch(
        offsets=offsets,
        pid=pid,
        status=col(prt.status, np.int64),
        mother1=pointer(prt.mother1),
        daughter1=pointer(prt.daughter1),
        daughter2=pointer(prt.daughter2),
        px=col(prt.p.px), py=col(prt.p.py), pz=col(prt.p.pz), e=col(prt.p.e),
        x=vertex[0], y=vertex[1], z=vertex[2],
        charge=charges(pid, pythia.particleData),
        pt_hat=np.sqrt(np.maximum(ak.to_numpy(events.info.pT2Hat), 0.0)),
    )


# ================================================================================================
# Particle properties
# ================================================================================================

def pseudorapidity(px, py, pz):
    """η = asinh(pz / pT), finite for particles along the beam."""
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.maximum(pt, 1e-12))


def rapidity(px, py, pz, e):
    """y = ½ ln((E + pz) / (E − pz))."""
    num = np.maximum(e + pz, 1e-300)
    den = np.maximum(e - pz, 1e-300)
    return 0.5 * np.log(num / den)


def delta_phi(a, b):
    """a − b wrapped into [−π, π)."""
    return (a - b + np.pi) % (2 * np.pi) - np.pi


def invariant_mass(px, py, pz, e):
    """√max(E² − p², 0)."""
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def charges(pid: np.ndarray, particle_data) -> np.ndarray:
    """Electric charge (units of e) of PDG codes ``pid``, from Pythia's particle data table."""
    pid = np.asarray(pid, dtype=np.int64)
    unique, inverse = np.unique(pid, return_inverse=True)
    for code in unique:
        if int(code) not in _CHARGE_CACHE:
            _CHARGE_CACHE[int(code)] = float(particle_data.charge(int(code)))
    lookup = np.array([_CHARGE_CACHE[int(u)] for u in unique], dtype=np.float64)
    return lookup[inverse].reshape(pid.shape)


def heavy_flavour_content(pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks (has_b, has_c) of hadrons that contain a b (resp. c) quark and no heavier one.

    PDG numbering: the quark digits of |pid| are n_q1 n_q2 n_q3 (thousands, hundreds, tens);
    mesons have n_q1 = 0. Quarkonia (bb̄, cc̄), diquarks, quarks and special codes are not hadrons
    of open flavour and are excluded.
    """
    apid = np.abs(np.asarray(pid, dtype=np.int64))
    code = apid % 10000
    q1, q2, q3 = code // 1000, (code // 100) % 10, (code // 10) % 10
    hadron = (apid > 100) & (apid < 1_000_000) & (q3 > 0) & (apid % 10 > 0)
    meson = q1 == 0
    onium = meson & (q2 == q3)
    has_b = hadron & ~onium & ((q1 == 5) | (q2 == 5) | (q3 == 5))
    has_c = hadron & ~onium & ~has_b & ((q1 == 4) | (q2 == 4) | (q3 == 4))
    return has_b, has_c


def weak_heavy_hadrons(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Global rows of the weakly decaying B hadrons and C hadrons of the batch.

    A B hadron decays weakly when none of its decay products is a B hadron (excited B*, B**
    and B0–B0bar oscillations are not the last link of the chain); same for C hadrons. These
    are the hadrons ghost-associated to jets for ``hadronFlavour`` (CMS NanoAOD definition).
    """
    has_b, has_c = heavy_flavour_content(batch.pid)
    mother = batch.mother1
    weak = []
    for mask in (has_b, has_c):
        has_same_daughter = np.zeros(len(mask), dtype=bool)
        child = np.flatnonzero(mask & (mother >= 0))
        parent = mother[child]
        has_same_daughter[parent[mask[parent]]] = True
        weak.append(np.flatnonzero(mask & ~has_same_daughter))
    return weak[0], weak[1]


def final_visible(batch: Batch, eta_max: float) -> np.ndarray:
    """Global rows of final-state particles except neutrinos, with |η| < ``eta_max``."""
    final = batch.status > 0
    visible = ~np.isin(np.abs(batch.pid), _NEUTRINOS)
    rows = np.flatnonzero(final & visible)
    return rows[np.abs(pseudorapidity(batch.px[rows], batch.py[rows], batch.pz[rows])) < eta_max]


# ================================================================================================
# Event-level objects
# ================================================================================================

def _jagged(values: np.ndarray, event: np.ndarray, n_events: int) -> ak.Array:
    """Rows sorted by ``event`` -> an Awkward list per event (zero-copy)."""
    counts = np.bincount(event, minlength=n_events)
    return ak.unflatten(values, counts)


def isolated_leptons(batch: Batch, *, pt_min: float = 10.0, eta_max: float = 2.5,
                     cone: float = 0.3, iso_max: float = 0.15) -> np.ndarray:
    """Global rows of isolated electrons and muons ("prompt-ish" leptons), sorted by event.

    A final-state e/μ with pT > ``pt_min`` and |η| < ``eta_max`` is isolated when the scalar pT
    sum of the other visible final-state particles within ΔR < ``cone`` is below ``iso_max``
    times its pT (a CMS-like relative isolation; leptons from hadron decays inside jets fail it).
    """
    visible = final_visible(batch, 5.0)
    apid = np.abs(batch.pid[visible])
    px, py, pz = batch.px[visible], batch.py[visible], batch.pz[visible]
    pt, eta, phi = np.hypot(px, py), pseudorapidity(px, py, pz), np.arctan2(py, px)
    lep = np.flatnonzero(((apid == 11) | (apid == 13)) & (pt > pt_min) & (np.abs(eta) < eta_max))
    if len(lep) == 0:
        return np.zeros(0, dtype=np.int64)
    # every (lepton, visible particle of the same event) pair, as flat index arrays
    ev = batch.event[visible]
    starts = np.searchsorted(ev, np.arange(batch.n_events))
    counts = np.bincount(ev, minlength=batch.n_events)
    n_pairs = counts[ev[lep]]
    pair_lep = np.repeat(np.arange(len(lep)), n_pairs)
    first = np.cumsum(n_pairs) - n_pairs
    pair_other = starts[ev[lep]][pair_lep] + np.arange(n_pairs.sum()) - first[pair_lep]
    dr2 = (eta[lep][pair_lep] - eta[pair_other]) ** 2 + delta_phi(phi[lep][pair_lep], phi[pair_other]) ** 2
    in_cone = (dr2 < cone * cone) & (pair_other != lep[pair_lep])
    cone_sum = np.bincount(pair_lep, weights=np.where(in_cone, pt[pair_other], 0.0), minlength=len(lep))
    return visible[lep[cone_sum < iso_max * pt[lep]]]


def missing_pt(batch: Batch, eta_max: float = 4.9) -> tuple[np.ndarray, np.ndarray]:
    """(MET, φ_MET): minus the vector pT sum of visible final-state particles with |η| < 4.9."""
    rows = final_visible(batch, eta_max)
    ev = batch.event[rows]
    mx = -np.bincount(ev, weights=batch.px[rows], minlength=batch.n_events)
    my = -np.bincount(ev, weights=batch.py[rows], minlength=batch.n_events)
    return np.hypot(mx, my), np.arctan2(my, mx)


# ================================================================================================
# Jets
# ================================================================================================

class _Momentum:
    """pT, η and φ of objects with ``px``, ``py``, ``pz`` arrays (jets and tracks alike)."""

    @property
    def pt(self):
        return np.hypot(self.px, self.py)

    @property
    def eta(self):
        return pseudorapidity(self.px, self.py, self.pz)

    @property
    def phi(self):
        return np.arctan2(self.py, self.px)


@dataclass
class Jets(_Momentum):
    """Jets of a batch, flat and sorted by (event, pT descending), plus their constituents.

    ``const_jet[k]`` is the jet (row of these arrays) of constituent ``k`` and ``const_row[k]``
    its global particle row in the :class:`Batch`; ghosts are not constituents.
    """

    event: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    n_constituents: np.ndarray
    hadron_flavour: np.ndarray
    const_jet: np.ndarray
    const_row: np.ndarray

    def __len__(self) -> int:
        return len(self.event)

    @property
    def mass(self):
        return invariant_mass(self.px, self.py, self.pz, self.e)

    def select(self, keep: np.ndarray) -> Jets:
        """The jets where ``keep`` (bool mask) is true, constituents renumbered."""
        keep = np.asarray(keep, dtype=bool)
        new_index = np.cumsum(keep) - 1
        ckeep = keep[self.const_jet]
        return Jets(self.event[keep], self.px[keep], self.py[keep], self.pz[keep], self.e[keep],
                    self.n_constituents[keep], self.hadron_flavour[keep],
                    new_index[self.const_jet[ckeep]], self.const_row[ckeep])


GHOST_SCALE = 1e-18  # ghosts carry the hadron's direction and a negligible momentum


def cluster(batch: Batch, rows: np.ndarray, *, radius: float, pt_min: float,
            ghosts: tuple[np.ndarray, np.ndarray] | None = None) -> Jets:
    """Anti-kT jets (E-scheme) of the particles ``rows`` (global, sorted by event), all events at once.

    ``ghosts = (b_rows, c_rows)`` ghost-associates weakly decaying B and C hadrons (momenta
    scaled by 1e-18, so they do not change the jets; Cacciari, Salam, Soyez, JHEP 0804:005):
    ``hadron_flavour`` is 5 if a B-hadron ghost ends up in the jet, else 4 with a C-hadron
    ghost, else 0 — the CMS NanoAOD ``Jet_hadronFlavour`` definition.
    """
    import fastjet

    n = batch.n_events
    kind = np.zeros(len(rows), dtype=np.int8)
    all_rows = rows
    if ghosts is not None:
        b_rows, c_rows = ghosts
        all_rows = np.concatenate([rows, b_rows, c_rows])
        kind = np.concatenate([kind, np.full(len(b_rows), 5, np.int8), np.full(len(c_rows), 4, np.int8)])
        order = np.argsort(batch.event[all_rows], kind="stable")
        all_rows, kind = all_rows[order], kind[order]
    scale = np.where(kind == 0, 1.0, GHOST_SCALE)
    ev = batch.event[all_rows]
    counts = np.bincount(ev, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    content = ak.contents.RecordArray(
        [ak.contents.NumpyArray(np.ascontiguousarray(c * scale))
         for c in (batch.px[all_rows], batch.py[all_rows], batch.pz[all_rows], batch.e[all_rows])],
        ["px", "py", "pz", "E"],
    )
    inputs = ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), content))
    sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, radius))
    jets = sequence.inclusive_jets(pt_min)
    index = sequence.constituent_index(pt_min)

    jet_counts = ak.to_numpy(ak.num(jets, axis=1))
    jet_event = np.repeat(np.arange(n), jet_counts)
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(getattr(jets, c))) for c in ("px", "py", "pz", "E"))
    per_jet = ak.flatten(index, axis=1)
    n_in_jet = ak.to_numpy(ak.num(per_jet, axis=1))
    local = ak.to_numpy(ak.flatten(per_jet)).astype(np.int64)
    const_jet = np.repeat(np.arange(len(jet_event)), n_in_jet)
    const_input = local + offsets[jet_event[const_jet]]

    # sort jets by (event, pT descending) and renumber constituents
    order = np.lexsort((-np.hypot(jpx, jpy), jet_event))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    const_jet = rank[const_jet]

    const_kind = kind[const_input]
    real = const_kind == 0
    n_jets = len(order)
    flavour = np.zeros(n_jets, dtype=np.int32)
    for label in (4, 5):  # b overrides c
        flavour[np.unique(const_jet[const_kind == label])] = label
    n_const = np.bincount(const_jet[real], minlength=n_jets)
    sort_const = np.argsort(const_jet[real], kind="stable")
    return Jets(
        event=jet_event[order], px=jpx[order], py=jpy[order], pz=jpz[order], e=je[order],
        n_constituents=n_const.astype(np.int32), hadron_flavour=flavour,
        const_jet=const_jet[real][sort_const], const_row=all_rows[const_input[real]][sort_const],
    )


def per_event(values: np.ndarray, event: np.ndarray, n_events: int) -> ak.Array:
    """Flat per-object values (sorted by event) -> Awkward list per event."""
    return _jagged(np.ascontiguousarray(values), event, n_events)


# ================================================================================================
# Tracks, impact parameters, b-tagging observables
# ================================================================================================

@dataclass
class Tracks(_Momentum):
    """Reconstructed tracks of jets, flat, sorted by (jet, |d0 significance| descending)."""

    jet: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    charge: np.ndarray
    d0: np.ndarray  # signed (lifetime sign w.r.t. the jet axis), mm
    z0: np.ndarray
    d0sig: np.ndarray
    z0sig: np.ndarray
    sigma_d0: np.ndarray
    sigma_z0: np.ndarray
    vx: np.ndarray  # true production vertex, mm (used for the vertex proxy only)
    vy: np.ndarray
    vz: np.ndarray

    @property
    def e_pion(self):
        """Energy under the charged-pion mass hypothesis (what a tracker knows)."""
        return np.sqrt(self.px ** 2 + self.py ** 2 + self.pz ** 2 + PION_MASS ** 2)


def ip_resolution(pt, eta) -> tuple[np.ndarray, np.ndarray]:
    """Nominal (σ_d0, σ_z0) in mm for tracks of transverse momentum ``pt`` (GeV) and ``eta``."""
    sin_theta = 1.0 / np.cosh(eta)
    sigma_d0 = np.hypot(D0_CONST_MM, D0_MS_MM_GEV / (pt * np.sqrt(sin_theta)))
    sigma_z0 = np.hypot(Z0_CONST_MM, Z0_MS_MM_GEV / (pt * sin_theta ** 1.5))
    return sigma_d0, sigma_z0


def build_tracks(batch: Batch, jets: Jets, rng: np.random.Generator) -> Tracks:
    """Smeared, selected, jet-axis-signed tracks of every jet (see the module docstring).

    Random numbers are drawn from ``rng`` in constituent order, so the result is reproducible.
    """
    charge = batch.charge
    rows = jets.const_row
    jet = jets.const_jet
    charged = charge[rows] != 0
    rows, jet = rows[charged], jet[charged]
    px, py, pz = batch.px[rows], batch.py[rows], batch.pz[rows]
    x, y, z = batch.x[rows], batch.y[rows], batch.z[rows]
    pt = np.maximum(np.hypot(px, py), 1e-12)
    eta = pseudorapidity(px, py, pz)
    rprod = np.hypot(x, y)
    # random numbers for every charged constituent, drawn before any selection (reproducible)
    u_eff, u_tail = rng.random(len(rows)), rng.random(len(rows))
    g_d0, g_z0 = rng.standard_normal(len(rows)), rng.standard_normal(len(rows))
    eff = np.where(np.abs(eta) < 0.9, TRACK_EFF_CENTRAL, TRACK_EFF_FORWARD)
    keep = (pt > TRACK_PT_MIN) & (np.abs(eta) < TRACK_ETA_MAX) & (rprod < TRACK_RPROD_MAX_MM) & (u_eff < eff)

    ux, uy = px / pt, py / pt
    d0_true = x * uy - y * ux  # PCA to the beam line = d0 * (uy, -ux)
    z0_true = z - (x * ux + y * uy) * pz / pt
    sigma_d0, sigma_z0 = ip_resolution(pt, eta)
    widen = np.where(u_tail < TAIL_FRACTION, TAIL_SCALE, 1.0)
    d0 = d0_true + widen * sigma_d0 * g_d0
    z0 = z0_true + widen * sigma_z0 * g_z0
    sin_theta = 1.0 / np.cosh(eta)
    keep &= (np.abs(d0) < TRACK_D0_MAX_MM) & (np.abs(z0 * sin_theta) < TRACK_Z0SIN_MAX_MM)

    jpx, jpy = jets.px[jet], jets.py[jet]
    jeta = jets.eta[jet]
    sign_d0 = np.where(d0 * (uy * jpx - ux * jpy) >= 0, 1.0, -1.0)
    sign_z0 = np.where((jeta - eta) * z0 >= 0, 1.0, -1.0)
    d0s, z0s = np.abs(d0) * sign_d0, np.abs(z0) * sign_z0
    d0sig, z0sig = d0s / sigma_d0, z0s / sigma_z0

    sel = np.flatnonzero(keep)
    order = sel[np.lexsort((-np.abs(d0sig[sel]), jet[sel]))]
    return Tracks(jet=jet[order], px=px[order], py=py[order], pz=pz[order],
                  charge=charge[rows][order].astype(np.int32), d0=d0s[order], z0=z0s[order],
                  d0sig=d0sig[order], z0sig=z0sig[order], sigma_d0=sigma_d0[order],
                  sigma_z0=sigma_z0[order], vx=x[order], vy=y[order], vz=z[order])


def jet_probability(tracks: Tracks, n_jets: int) -> np.ndarray:
    """Jet probability JP of each jet: how compatible its tracks are with the primary vertex.

    ALEPH/CMS "Jet Probability" (CMS, JINST 8 (2013) P04013): each positively signed track gets
    P_i = P(|S| ≥ S_i) under the Gaussian core resolution; JP = Π Σ_{k<N} (−ln Π)^k / k! with
    Π = ∏ P_i over the N positive tracks. JP is uniform for prompt-only jets and ≈ 0 for b jets;
    jets without positive tracks get JP = 1. Computed in log space (no underflow).
    """
    from scipy.special import gammaln, log_ndtr

    pos = tracks.d0sig > 0
    jet = tracks.jet[pos]
    log_p = log_ndtr(-tracks.d0sig[pos]) + np.log(2.0)
    n_pos = np.bincount(jet, minlength=n_jets)
    log_pi = np.bincount(jet, weights=log_p, minlength=n_jets)
    x = -log_pi
    log_terms = np.full(n_jets, -np.inf)
    with np.errstate(divide="ignore"):
        log_x = np.log(x)
    for k in range(int(n_pos.max(initial=0))):
        term = np.zeros(n_jets) if k == 0 else k * log_x - gammaln(k + 1)
        log_terms = np.where(k < n_pos, np.logaddexp(log_terms, term), log_terms)
    log_jp = np.where(n_pos > 0, log_pi + log_terms, 0.0)
    return np.exp(np.minimum(log_jp, 0.0))


def btag_proxy(tracks: Tracks, n_jets: int) -> np.ndarray:
    """A b-tag-like score in [0, 1): y / (1 + y) with y = −log10(jet probability).

    0 when every track is compatible with the primary vertex; 0.5 at JP = 0.1; → 1 for jets with
    several significantly displaced tracks (b jets). Monotonic in JP, so any cut on it is a JP cut.
    """
    y = -np.log10(np.maximum(jet_probability(tracks, n_jets), 1e-300))
    return y / (1.0 + y)


SV_SIG_MIN = 3.0  # track d0 significance to enter the vertex
K0S_WINDOW = 0.015  # GeV


@dataclass
class Vertices:
    """Per-jet secondary-vertex proxy (zeros when the jet has no vertex)."""

    n_tracks: np.ndarray
    mass: np.ndarray
    flight_distance: np.ndarray
    flight_distance_sig: np.ndarray
    energy_fraction: np.ndarray


def secondary_vertices(tracks: Tracks, jets: Jets, rng: np.random.Generator) -> Vertices:
    """An inclusive secondary vertex per jet, from its displaced tracks (a parametrised vertex, not a fit).

    Tracks with signed d0 significance > 3 form the vertex when there are at least two; two
    oppositely charged tracks with m(ππ) within 15 MeV of the K0S mass are vetoed (V0 rejection,
    as real vertex finders do). Mass: invariant mass of the vertex tracks (pion hypothesis).
    Position: pT-weighted mean of the tracks' true production points, smeared by
    2·rms(σ_d0)/√n transversely and 2·rms(σ_z0)/√n along z (vertex resolution a few times the IP
    resolution along the flight direction). Flight distance: 3D distance from the primary vertex,
    signed by the jet direction; its significance divides by the propagated resolution.
    Energy fraction: vertex-track energy over all selected tracks' energy in the jet.
    """
    n_jets = len(jets)
    in_sv = tracks.d0sig > SV_SIG_MIN
    jet = tracks.jet
    n = np.bincount(jet[in_sv], minlength=n_jets)

    def jet_sum(values, mask=in_sv):
        return np.bincount(jet[mask], weights=values[mask], minlength=n_jets)

    e = tracks.e_pion
    spx, spy, spz, se = jet_sum(tracks.px), jet_sum(tracks.py), jet_sum(tracks.pz), jet_sum(e)
    mass = invariant_mass(spx, spy, spz, se)
    charge_sum = jet_sum(tracks.charge.astype(np.float64))
    v0 = (n == 2) & (charge_sum == 0) & (np.abs(mass - K0S_MASS) < K0S_WINDOW)
    has_sv = (n >= 2) & ~v0

    w = tracks.pt
    sw = np.maximum(jet_sum(w), 1e-12)
    vx, vy, vz = jet_sum(w * tracks.vx) / sw, jet_sum(w * tracks.vy) / sw, jet_sum(w * tracks.vz) / sw
    nn = np.maximum(n, 1)
    sigma_t = 2.0 * np.sqrt(jet_sum(tracks.sigma_d0 ** 2) / nn) / np.sqrt(nn)
    sigma_l = 2.0 * np.sqrt(jet_sum(tracks.sigma_z0 ** 2) / nn) / np.sqrt(nn)
    g = rng.standard_normal((3, n_jets))  # one draw per jet, vertex or not: reproducible
    mx, my, mz = vx + sigma_t * g[0], vy + sigma_t * g[1], vz + sigma_l * g[2]
    dist = np.sqrt(mx ** 2 + my ** 2 + mz ** 2)
    safe = np.maximum(dist, 1e-12)
    sigma_dist = np.sqrt((mx / safe * sigma_t) ** 2 + (my / safe * sigma_t) ** 2 + (mz / safe * sigma_l) ** 2)
    sign = np.where(mx * jets.px + my * jets.py + mz * jets.pz >= 0, 1.0, -1.0)
    flight = sign * dist
    e_all = np.bincount(jet, weights=e, minlength=n_jets)

    zero = np.zeros(n_jets)
    return Vertices(
        n_tracks=np.where(has_sv, n, 0).astype(np.int32),
        mass=np.where(has_sv, mass, zero),
        flight_distance=np.where(has_sv, flight, zero),
        flight_distance_sig=np.where(has_sv, flight / np.maximum(sigma_dist, 1e-12), zero),
        energy_fraction=np.where(has_sv, se / np.maximum(e_all, 1e-12), zero),
    )


@contextlib.contextmanager
def quiet_fastjet():
    """Hide FastJet's Awkward-interface warning about exclusive jets (it fires even for kT)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="dcut and exclusive jets")
        yield


def collect(pythia, n_needed: int, reconstruct, *, efficiency: float, max_batch: int = 400) -> dict:
    """Generate batches until ``reconstruct`` has produced ``n_needed`` examples; keep the first ones.

    ``reconstruct(batch)`` returns a dict of equally long arrays (NumPy or Awkward), one entry per
    accepted example (event or jet). Batch sizes follow the running efficiency, which depends only
    on what was generated, so the output is a pure function of the Pythia seed.
    """
    pieces, have, generated = [], 0, 0
    while have < n_needed or not pieces:  # one batch even for 0, to know the array types
        eff = have / generated if have else efficiency
        size = int(min(max_batch, max(8, np.ceil(1.15 * (n_needed - have) / max(eff, 1e-3)))))
        batch = generate_batch(pythia, size)
        generated += batch.n_events
        out = reconstruct(batch)
        pieces.append(out)
        have += len(next(iter(out.values())))
        if have == 0 and generated > 50 * max(n_needed, 20) / max(efficiency, 1e-3):
            raise RuntimeError(f"no example passed the selection in {generated} generated events")
    merged = {}
    for key in pieces[0]:
        values = [piece[key] for piece in pieces]
        if isinstance(values[0], ak.Array):
            merged[key] = ak.concatenate(values)[:n_needed]
        else:
            merged[key] = np.concatenate(values)[:n_needed]
    return merged



def interleave(first: dict, second: dict, from_first: np.ndarray) -> dict:
    """Merge two samples with the same keys: entry i comes from ``first`` where ``from_first[i]``.

    Entries keep their order within each sample; ``first`` must hold ``from_first.sum()`` entries
    and ``second`` the rest. Used to mix signal and background in a seeded random order.
    """
    n = len(from_first)
    n_first = int(np.count_nonzero(from_first))
    order = np.empty(n, dtype=np.int64)
    order[from_first] = np.arange(n_first)
    order[~from_first] = n_first + np.arange(n - n_first)
    merged = {}
    for key, value in first.items():
        if isinstance(value, ak.Array):
            merged[key] = ak.to_packed(ak.concatenate([value, second[key]])[order])
        else:
            merged[key] = np.concatenate([value, second[key]])[order]
    return merged


def mixed_sample(n: int, seed: int, reconstruct, *, signal, background, efficiencies) -> tuple:
    """``n`` examples, each from the ``signal`` Pythia setup with probability ½ (seeded), else ``background``.

    ``reconstruct(batch, rng)`` turns a Pythia batch into arrays; ``efficiencies`` are the expected
    fractions of events kept (signal, background), used to size the batches. Returns
    (is_signal, the two samples interleaved in the seeded order).
    """
    is_signal = numpy_rng(seed, 0).random(n) < 0.5
    n_signal = int(is_signal.sum())
    samples = []
    for stream, settings, count, efficiency in ((1, signal, n_signal, efficiencies[0]), (2, background, n - n_signal, efficiencies[1])):
        pythia = make_pythia(settings, pythia_seed(seed, stream))
        rng = numpy_rng(seed, 100 + stream)
        samples.append(collect(pythia, count, lambda batch, rng=rng: reconstruct(batch, rng), efficiency=efficiency))
    return is_signal, interleave(samples[0], samples[1], is_signal)
