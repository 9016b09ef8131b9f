"""Print the results tables of docs/results.md from `hepml compare` output folders.

    python docs/make_results.py runs/particle_id-quick runs/jet_flavour-quick ... > table.md

Each folder's summary.json gives, per framework × model, the task's headline metric with its
uncertainty, the training time and the device; the run record gives the machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _rejections(folder: Path, label: str, e: dict) -> list:
    """1/ε_B ± error at ε_S = 30 % and 50 % on the test set: from summary.json, or, for runs made
    before compare stored them, recomputed from the run's predictions.parquet (same metric code)."""
    if "bkg_rejection_at_30pct_test" in e:
        return [(e[f"bkg_rejection_at_{k}pct_test"], e[f"bkg_rejection_at_{k}pct_test_err"]) for k in (30, 50)]
    import pandas as pd

    from hepml.evaluate import metrics as M

    pred = pd.read_parquet(folder / "predictions.parquet")
    score = pred[label.replace(" ", "_")].to_numpy()
    sig = pred["label"].to_numpy() == 0
    return [M.background_rejection_at(sig, score, pred["weight"].to_numpy(), signal_efficiency=es) for es in (0.3, 0.5)]


def _pm(value, err, digits: int = 0) -> str:
    """``value ± err``; a rejection with no background left is None in summary.json (inf in old runs)."""
    if value is None or value == float("inf"):
        return "no background left"
    return f"{value:.{digits}f} ± {err:.{digits}f}"


def _row_binary(folder, label, e):
    rej = " | ".join(_pm(v, err) for v, err in _rejections(folder, label, e))
    return (
        f"| {label} | {e['auc_test']:.4f} ± {e['auc_test_err']:.4f} | {e['eff_s_at_1pct_test']:.3f} | "
        f"{e['eff_s_at_10pct_test']:.3f} | {rej} | {e['accuracy_test']:.4f} | {e['timings']['train_seconds']:.0f} | {e['device']} |"
    )


def table(folder: Path) -> str:
    s = json.loads((folder / "summary.json").read_text())
    lines = [f"### {s['task']} — `{folder.name}` (test set: {s['n_test']:,} examples, train {s['n_train']:,})", ""]
    entries = s["entries"]
    if len(s["class_names"]) == 2:
        lines += ["| method | ROC AUC | ε_S @ ε_B = 1 % | ε_S @ ε_B = 10 % | 1/ε_B @ ε_S = 30 % | 1/ε_B @ ε_S = 50 % "
                  "| accuracy | train [s] | device |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [_row_binary(folder, label, e) for label, e in entries.items()]
    else:
        names = s["class_names"]
        head = "| method | log loss | accuracy | " + " | ".join(f"AUC {c} vs rest" for c in names) + " | train [s] | device |"
        lines += [head, "|" + "---|" * (len(names) + 5)]
        for label, e in entries.items():
            aucs = " | ".join(f"{e['ovr_auc_test'][c]:.4f}" for c in names)
            lines.append(f"| {label} | {e['log_loss_test']:.4f} | {e['accuracy_test']:.4f} | {aucs} | {e['timings']['train_seconds']:.0f} | {e['device']} |")
    if "flavour" in s:
        lines += ["", "| method | light rej. @ 70 % b | c rej. @ 70 % b | light rej. @ 77 % b | c rej. @ 77 % b |", "|---|---|---|---|---|"]
        for label, f in s["flavour"].items():
            w70, w77 = f["working_points"]["70"], f["working_points"]["77"]
            cells = [_pm(w[f"{kind}_rejection"], w[f"{kind}_rejection_err"], digits)
                     for w in (w70, w77) for kind, digits in (("light", 1), ("c", 2))]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if "flavour" in s:
        fcs = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
        lines += ["", "f_c scan at 70 % b-efficiency: c-rejection / light-rejection of D_b for each f_c "
                  "(small f_c favours light rejection, large f_c c rejection).", "",
                  "| method | " + " | ".join(f"f_c = {f:g}" for f in fcs) + " |", "|---" * (len(fcs) + 1) + "|"]
        for label, f in s["flavour"].items():
            scan = f["fc_scan"]
            cells = []
            for fc in fcs:
                i = min(range(len(scan["fc"])), key=lambda k: abs(scan["fc"][k] - fc))
                c_rej, l_rej = scan["c_rejection"][i], scan["light_rejection"][i]
                cells.append(" / ".join("no background left" if v is None or v == float("inf") else fmt.format(v)
                                        for v, fmt in ((c_rej, "{:.2f}"), (l_rej, "{:.0f}"))))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    kaon_pion = (s.get("multiclass") or {}).get("kaon_pion")
    if kaon_pion:
        best = min(kaon_pion, key=lambda label: entries[label]["log_loss_test"])
        kp = kaon_pion[best]
        edges = kp["momentum_edges"]
        fmt = lambda v, err: "–" if v is None else f"{v:.3f} ± {err:.3f}"  # noqa: E731
        lines += ["", f"K/π separation versus momentum for the best model by log loss ({best}); each selection is the "
                  "cut on p_K (p_π) keeping 90 % of kaons (pions) overall.", "",
                  "| p [GeV] | K efficiency | π → K misID | π efficiency | K → π misID |", "|---|---|---|---|---|"]
        for i in range(len(edges) - 1):
            cells = [fmt(kp[key][i], kp[f"{key}_err"][i]) for key in ("K_efficiency", "pi_as_K", "pi_efficiency", "K_as_pi")]
            lines.append(f"| {edges[i]:.1f}–{edges[i + 1]:.1f} | " + " | ".join(cells) + " |")
    if s.get("agreement"):
        lines += ["", "Agreement (same model, same initial weights and batches): " + "; ".join(
            f"{a['model']} {a['pair']} max |Δ score| {a['max |Δ score| (test)']:.1e}" for a in s["agreement"])]
    run = s.get("run", {})
    lines += ["", f"Machine: {run.get('machine', {}).get('processor', '?')}, {run.get('machine', {}).get('cpus', '?')} CPUs; "
              f"versions: torch {run.get('versions', {}).get('torch', '?')}, keras {run.get('versions', {}).get('keras', '?')}, "
              f"xgboost {run.get('versions', {}).get('xgboost', '?')}; {run.get('created', '')}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n".join(table(Path(p)) for p in sys.argv[1:]))
