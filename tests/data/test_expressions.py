"""The safe evaluator: what it computes, and what it refuses (task files are shared between people)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepml.data.expressions import Expression, evaluate
from hepml.errors import ExpressionError

ARRAYS = {
    "Jet_pt": ak.Array([[50.0, 30.0, 20.0], [], [40.0]]),
    "Jet_eta": ak.Array([[0.1, -1.0, 2.0], [], [0.5]]),
    "MET_pt": np.array([10.0, 20.0, 30.0]),
    "Muon_pt": ak.Array([[30.0, 20.0], [25.0, 15.0], [40.0, 10.0]]),
    "Muon_eta": ak.Array([[0.0, 0.0], [1.0, -1.0], [0.5, 0.5]]),
    "Muon_phi": ak.Array([[0.0, np.pi], [0.0, 1.0], [0.0, 0.0]]),
    "Muon_mass": ak.Array([[0.105, 0.105], [0.105, 0.105], [0.105, 0.105]]),
    "Jet.PT": ak.Array([[1.0], [2.0], [3.0]]),
}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("sum(Jet_pt)", [100.0, 0.0, 40.0]),
        ("num(Jet_pt)", [3, 0, 1]),
        ("max(Jet_pt, -1)", [50.0, -1.0, 40.0]),
        ("nth(Jet_pt, 1, 0)", [30.0, 0.0, 0.0]),
        ("MET_pt / 10 + 1", [2.0, 3.0, 4.0]),
        ("where(MET_pt > 15, 1, 0)", [0, 1, 1]),
        ("(MET_pt > 15) & (MET_pt < 25)", [False, True, False]),
        ("MET_pt > 15 and MET_pt < 25", [False, True, False]),
        ("10 < MET_pt <= 20", [False, True, False]),
        ("count_nonzero(abs(Jet_eta) < 1)", [1, 0, 1]),
        ("sum(Jet_pt[Jet_pt > 25])", [80.0, 0.0, 40.0]),
        ("sum(branch('Jet.PT'))", [1.0, 2.0, 3.0]),
        ("nth(sort(Jet_pt), 0, 0)", [20.0, 0.0, 40.0]),
        ("nth(sort(Jet_pt, ascending=False), 0, 0)", [50.0, 0.0, 40.0]),
    ],
)
def test_values(text, expected):
    out = evaluate(text, ARRAYS)
    np.testing.assert_allclose(np.asarray(ak.to_list(out), dtype=float), np.asarray(expected, dtype=float))


def test_kinematics():
    # back-to-back massless-ish muons at eta=0: m = 2 sqrt(p1 p2)
    m = ak.to_numpy(evaluate("inv_mass(Muon_pt, Muon_eta, Muon_phi, Muon_mass)", ARRAYS))
    assert abs(m[0] - 2 * np.sqrt(30 * 20)) < 1e-2
    dr = evaluate("delta_r(nth(Muon_eta, 0), nth(Muon_phi, 0), nth(Muon_eta, 1), nth(Muon_phi, 1))", ARRAYS)
    np.testing.assert_allclose(ak.to_numpy(dr)[1], np.sqrt(4 + 1))
    pt = evaluate("p4sum(p4(Muon_pt, Muon_eta, Muon_phi, Muon_mass)).pt", ARRAYS)
    assert abs(ak.to_numpy(pt)[0] - 10.0) < 1e-6
    dphi = evaluate("delta_phi(3, -3)", {})
    assert abs(dphi - (6 - 2 * np.pi)) < 1e-12


def test_names_are_the_branches_read():
    assert Expression("sqrt(Jet_pt**2) + MET_pt * pi").names == {"Jet_pt", "MET_pt"}
    assert Expression("sum(branch('Jet.PT'))").names == {"Jet.PT"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('echo hacked')", "only plain function calls are allowed"),
        ("().__class__.__bases__", "attribute '.__bases__' is not allowed"),
        ("Jet_pt.__class__", "attribute '.__class__' is not allowed"),
        ("MET_pt.real", "attribute '.real' is not allowed"),
        ("(lambda: 1)", "Lambda is not allowed"),
        ("(lambda: 1)()", "only plain function calls"),
        ("[x for x in MET_pt]", "ListComp is not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("getattr(MET_pt, 'real')", "unknown function 'getattr'"),
        ("__builtins__", "name '__builtins__' is not allowed"),
        ("'abc'", "string 'abc' is not allowed"),
        ("sum(Jet_pt, axis=0)", "sum() takes no keyword 'axis'"),
        ("MET_pt if MET_pt else 0", "IfExp is not allowed"),
        ("x := 3", "is not a valid expression"),
        ("sqrtt(MET_pt)", "did you mean sqrt"),
        ("numpy.sum(MET_pt)", "only plain function calls"),
    ],
)
def test_refused(text, message):
    with pytest.raises(ExpressionError) as info:
        evaluate(text, ARRAYS, what="feature")
    assert message in str(info.value)
    assert text in str(info.value) or repr(text) in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_runtime_error_is_one_line():
    with pytest.raises(ExpressionError, match="failed"):
        evaluate("Jet_pt + Muon_pt", ARRAYS)  # different collections cannot be added
