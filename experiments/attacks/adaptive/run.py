#!/usr/bin/env python3
"""The strongest attack per data set and defence (issue 15), and the frontier it gives.

For each data set (MNIST, Fashion-MNIST, Colored MNIST) and each defence setting (VisualMixer at
the bounds `fedvim bounds --dataset X` selects, uniform windows of 2, 3, 4 and 8, Algorithm 1 with
bounds [2, 8] and [4, 16], Gaussian pixel noise of sigma 0.1 and 0.25, InstaHide k = 2) this runs
`fedvim attack inverter` once: the learned inverter trained against that very defence on the
attacker's own images and seeds, the reassembly attack given the window map (VisualMixer settings
only: `--reassemble`), and the do-nothing baseline (the defended image itself), all on the same
victim images. It keeps, per cell, the attack with the highest median SSIM to the original, and
joins the accuracy cost of the setting from results already committed in experiments/ (COSTS
below; "not measured" where there is none).

Writes results/<cell>.json (each run's JSON, command, wall time), results/adaptive.json and
results/adaptive.csv (one row per cell, what `fedvim report` draws the frontier from),
results/table.md, and grids/<cell>/inverter_grid.png.

The recipe is sized so that the whole script runs in under an hour on 2 busy cores (RECIPE): far
less training than experiments/attacks/inverter/ (4,000 attacker images x 3 epochs against 6,000 x
5; 200 victim images against 500), so the inverter's figures are a lower bound on the attack.

Usage: FEDVIM_BIN=build-h/fedvim python3 experiments/attacks/adaptive/run.py [--threads 2]
       [--only mnist_vm4,...]   python3 experiments/attacks/adaptive/run.py --table-only
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..")))
import fvexp  # noqa: E402  (experiments/fvexp.py: run fedvim, stamp the machine)

RESULTS = os.path.join(HERE, "results")
EXP = os.path.join(fvexp.ROOT, "experiments")
DATASETS = ["mnist", "fashion", "cmnist"]
NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST", "cmnist": "Colored MNIST"}
# attacker: the victim's data set's training images [0, 4000); victim: its test images [0, 200)
RECIPE = ["--attacker-from", 0, "--attacker-images", 4000, "--epochs", 3, "--width", 16, "--images", 200,
          "--seed", 1]
# (key, label (no commas: it goes into a CSV), family, fedvim flags); None: the bounds `fedvim bounds` selects
SETTINGS = [
    ("vmdef", "VisualMixer default bounds", "VisualMixer", None),
    ("vm2", "uniform 2 x 2", "VisualMixer", ["--ws-min", 2, "--ws-max", 2]),
    ("any3", "uniform 3 x 3 (any-size windows)", "VisualMixer", ["--defence", "shuffle", "--window", 3]),
    ("vm4", "uniform 4 x 4", "VisualMixer", ["--ws-min", 4, "--ws-max", 4]),
    ("vm8", "uniform 8 x 8", "VisualMixer", ["--ws-min", 8, "--ws-max", 8]),
    ("alg2-8", "Algorithm 1 WS 2..8", "VisualMixer", ["--ws-min", 2, "--ws-max", 8]),
    ("alg4-16", "Algorithm 1 WS 4..16", "VisualMixer", ["--ws-min", 4, "--ws-max", 16]),
    ("noise0.1", "Gaussian noise sigma 0.1", "noise", ["--defence", "noise", "--sigma", 0.1]),
    ("noise0.25", "Gaussian noise sigma 0.25", "noise", ["--defence", "noise", "--sigma", 0.25]),
    ("ih2", "InstaHide k = 2", "InstaHide", ["--defence", "instahide", "--instahide-k", 2]),
]


# ---- accuracy costs from committed results (points of test accuracy lost against no defence) ----

def _rows(sub, name):
    rows = fvexp.load_rows(os.path.join(EXP, sub, "results"), name)
    if not rows:
        sys.exit("missing committed results: experiments/%s/results/%s.json" % (sub, name))
    return rows


def _acc(rows, **kw):
    hit = [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
    if len(hit) != 1:
        sys.exit("cost lookup %s: %d rows match" % (kw, len(hit)))
    return hit[0]


def frontier(tag, ident):
    rows = _rows("frontier", "frontier_" + tag)
    return (_acc(rows, id="none")["test_accuracy"] - _acc(rows, id=ident)["test_accuracy"],
            "frontier/results/frontier_%s (LeNet-5 central, %s), id %s" % (
                tag, "60,000 images, 5 epochs" if tag == "lenet5_60k" else "10,000 images, 2 epochs", ident))


def table2(tag, ds, setting, ws=None):
    rows = _rows("table2", "table2_" + tag)
    r = _acc(rows, dataset=ds, setting=setting)
    if ws and (r.get("ws_min"), r.get("ws_max")) != ws:
        sys.exit("table2 %s %s %s: bounds %s, expected %s" % (tag, ds, setting, (r.get("ws_min"), r.get("ws_max")), ws))
    return (_acc(rows, dataset=ds, setting="plain")["test_accuracy"] - r["test_accuracy"],
            "table2/results/table2_%s (LeNet-5 central, 60,000 images, 5 epochs), %s %s" % (tag, ds, setting))


def table4(ds, ws):
    rows = _rows("table4", "table4_lenet5_full")
    r = _acc(rows, dataset=ds, partition="iid", setting="FL+VisualMixer")
    if (r["test_ws_min"], r["test_ws_max"]) != ws:
        sys.exit("table4 %s: bounds %s, expected %s" % (ds, (r["test_ws_min"], r["test_ws_max"]), ws))
    return (_acc(rows, dataset=ds, partition="iid", setting="FL")["test_accuracy"] - r["test_accuracy"],
            "table4/results/table4_lenet5_full (FL LeNet-5, 60,000 images, 30 rounds, IID), %s (WS %d-%d)" % (ds, *ws))


COSTS = {  # (data set, setting key) -> function giving (fraction lost, source); absent: not measured
    ("mnist", "vmdef"): lambda: table4("mnist", (2, 4)),
    ("mnist", "vm2"): lambda: frontier("lenet5_60k", "uniform_ws2"),
    ("mnist", "any3"): lambda: frontier("lenet5_60k", "anyws_ws3"),
    ("mnist", "vm4"): lambda: frontier("lenet5_60k", "uniform_ws4"),
    ("mnist", "vm8"): lambda: frontier("lenet5_60k", "uniform_ws8"),
    ("mnist", "alg2-8"): lambda: frontier("lenet5_60k", "guided_ws_max8_ws_min2"),
    ("mnist", "alg4-16"): lambda: frontier("lenet5_60k", "guided_ws_max16_ws_min4"),
    ("mnist", "noise0.1"): lambda: frontier("lenet5_cpu", "noise_sigma0.1"),
    ("mnist", "noise0.25"): lambda: frontier("lenet5_cpu", "noise_sigma0.25"),
    ("mnist", "ih2"): lambda: frontier("lenet5_cpu", "instahide_k2"),
    ("fashion", "vmdef"): lambda: table2("lenet5_60k", "fashion", "vmix", (2, 4)),
    ("fashion", "vm2"): lambda: table2("lenet5_60k", "fashion", "uniform2"),
    ("fashion", "any3"): lambda: table2("lenet5_60k", "fashion", "anyws3"),
    ("fashion", "vm4"): lambda: table2("lenet5_60k", "fashion", "uniform4"),
    ("fashion", "vm8"): lambda: table2("lenet5_60k", "fashion", "uniform8"),
    ("fashion", "alg2-8"): lambda: table4("fashion", (2, 8)),
    ("fashion", "alg4-16"): lambda: table2("lenet5_60k", "fashion", "guided4-16", (4, 16)),
    ("fashion", "noise0.1"): lambda: table2("lenet5_60k", "fashion", "noise0.1"),
    ("fashion", "noise0.25"): lambda: table2("lenet5_60k", "fashion", "noise0.25"),
    ("fashion", "ih2"): lambda: table2("lenet5_60k", "fashion", "instahide2"),
    ("cmnist", "vmdef"): lambda: table2("lenet5_60k", "cmnist", "vmix", (2, 4)),
    ("cmnist", "vm2"): lambda: table2("lenet5_60k", "cmnist", "uniform2"),
    ("cmnist", "any3"): lambda: table2("lenet5_60k", "cmnist", "anyws3"),
    ("cmnist", "vm4"): lambda: table2("lenet5_60k", "cmnist", "uniform4"),
    ("cmnist", "vm8"): lambda: table2("lenet5_60k", "cmnist", "uniform8"),
    ("cmnist", "alg2-8"): lambda: table4("cmnist", (2, 8)),
    ("cmnist", "alg4-16"): lambda: table2("lenet5_60k", "cmnist", "guided4-16", (4, 16)),
    ("cmnist", "noise0.1"): lambda: table2("lenet5_60k", "cmnist", "noise0.1"),
    ("cmnist", "noise0.25"): lambda: table2("lenet5_60k", "cmnist", "noise0.25"),
    ("cmnist", "ih2"): lambda: table2("lenet5_60k", "cmnist", "instahide2"),
}


def default_bounds(ds):
    """WS_min, WS_max as `fedvim bounds --dataset ds` selects them (its last two lines)."""
    import subprocess
    out = subprocess.run([fvexp.fedvim_bin(), "bounds", "--dataset", ds, "--threads", "2"], capture_output=True,
                         text=True, cwd=fvexp.ROOT, check=True).stdout.split()
    return int(out[out.index("WS_min", len(out) - 4) + 1]), int(out[out.index("WS_max", len(out) - 2) + 1])


def cells(only):
    for ds in DATASETS:
        for key, label, family, flags in SETTINGS:
            name = "%s_%s" % (ds, key)
            if not only or name in only:
                yield name, ds, key, label, family, flags


def run_cell(name, ds, flags, threads):
    if flags is None:
        lo, hi = default_bounds(ds)
        flags = ["--ws-min", lo, "--ws-max", hi]
    vmix = "--defence" not in flags
    args = ["attack", "inverter", "--json", "--threads", threads, "--dataset", ds,
            "--out", os.path.join(HERE, "grids", name)] + RECIPE + flags + (["--reassemble"] if vmix else [])
    print("+ fedvim " + " ".join(str(a) for a in args), file=sys.stderr, flush=True)
    res, dt = fvexp.run(args)
    res["command"] = ("fedvim " + " ".join(str(a) for a in args)).replace(fvexp.ROOT + "/", "")
    res["wall_seconds"] = round(dt, 1)
    res["machine"] = fvexp.machine()
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


def summarise():
    """One row per cell with a result: each attack's medians, the best one, the cost."""
    rows = []
    for name, ds, key, label, family, _ in cells(None):
        p = os.path.join(RESULTS, name + ".json")
        if not os.path.exists(p):
            continue
        d = json.load(open(p))
        attacks = {"inverter": "inverted", "reassembly (map given)": "reassembled", "do nothing": "mixed"}
        med = {}
        for a, k in attacks.items():
            s, q = d.get("ssim_%s_vs_original" % k), d.get("psnr_%s_vs_original" % k)
            if s:
                med[a] = (s["median"], q["median"])
        best = max(med, key=lambda a: med[a][0])
        cost = COSTS.get((ds, key))
        c, src = cost() if cost else (None, "not measured")
        vm = d.get("vmix")
        rows.append({
            "dataset": ds, "cell": name, "defence": label, "family": family,
            "bounds": "%d-%d" % (vm["ws_min"], vm["ws_max"]) if vm else "",
            "ssim_inverter": round(med["inverter"][0], 4), "psnr_inverter": round(med["inverter"][1], 2),
            "ssim_reassembly": round(med["reassembly (map given)"][0], 4) if "reassembly (map given)" in med else "",
            "psnr_reassembly": (med["reassembly (map given)"][1] if isinstance(med["reassembly (map given)"][1], str)
                                else round(med["reassembly (map given)"][1], 2)) if "reassembly (map given)" in med else "",
            "ssim_nothing": round(med["do nothing"][0], 4),
            "psnr_nothing": med["do nothing"][1] if isinstance(med["do nothing"][1], str) else round(med["do nothing"][1], 2),
            "best_attack": best, "attack_ssim": round(med[best][0], 4),
            "attack_psnr": med[best][1] if isinstance(med[best][1], str) else round(med[best][1], 2),
            "cost_points": round(100 * c, 2) if c is not None else "", "cost_source": src,
            "train_mse": round(d["inverter"]["epoch_loss"][-1], 5), "wall_seconds": d["wall_seconds"],
            "grid": "../grids/%s/inverter_grid.png" % name,
        })
    return rows


def write(rows, wall):
    os.makedirs(RESULTS, exist_ok=True)
    meta = {"recipe": " ".join(str(a) for a in RECIPE), "wall_seconds_total": wall,
            "note": "median over the victim images; best attack = highest median SSIM to the original"}
    fvexp.save(RESULTS, "adaptive", [{k: v for k, v in r.items() if k != "cost_source"} for r in rows], meta)
    with open(os.path.join(RESULTS, "adaptive.json"), "w") as f:  # the full rows, sources included
        json.dump({"machine": fvexp.machine(), "meta": meta, "rows": rows}, f, indent=1)
        f.write("\n")
    out = ["| data set | defence | best attack | SSIM (best) | PSNR dB (best) | SSIM inverter / reassembly / nothing "
           "| accuracy cost (points) | cost from |", "|---|---|---|---:|---:|---|---:|---|"]
    for r in rows:
        reas = "%.3f" % r["ssim_reassembly"] if r["ssim_reassembly"] != "" else "-"
        bounds = " (WS %s)" % r["bounds"] if r["cell"].endswith("vmdef") else ""
        psnr = r["attack_psnr"] if isinstance(r["attack_psnr"], str) else "%.2f" % r["attack_psnr"]
        out.append("| %s | %s%s | %s | %.3f | %s | %.3f / %s / %.3f | %s | %s |" % (
            NAMES[r["dataset"]], r["defence"], bounds, r["best_attack"], r["attack_ssim"], psnr, r["ssim_inverter"],
            reas, r["ssim_nothing"], "%.1f" % r["cost_points"] if r["cost_points"] != "" else "not measured",
            r["cost_source"].split(" (")[0] if r["cost_points"] != "" else "-"))
    text = ("Median over victim test images 0-199 (SSIM on [0, 1], PSNR in dB). Attacks: the learned inverter "
            "trained against the same defence (recipe: `%s`), the reassembly attack given the window map "
            "(VisualMixer settings only), and doing nothing (the defended image itself). Cost: points of test "
            "accuracy lost against no defence, from the committed results named (see adaptive.json for the "
            "exact row).\n\n" % " ".join(str(a) for a in RECIPE)) + "\n".join(out) + "\n"
    fvexp.save_text(os.path.join(RESULTS, "table.md"), text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated cells, e.g. mnist_vm4,cmnist_ih2")
    a = ap.parse_args()
    only = set(x for x in a.only.split(",") if x)
    t0 = time.time()
    if not a.table_only:
        for name, ds, key, label, family, flags in cells(only):
            run_cell(name, ds, flags, a.threads)
    wall = round(time.time() - t0, 1)
    if a.table_only:
        prev = os.path.join(RESULTS, "adaptive.json")
        wall = json.load(open(prev))["meta"]["wall_seconds_total"] if os.path.exists(prev) else None
    write(summarise(), wall)


if __name__ == "__main__":
    main()
