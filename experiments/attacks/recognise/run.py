#!/usr/bin/env python3
"""Recogniser trained on mixed images (`fedvim attack recognise`, docs/attacks.md section 8):
does VisualMixer hide hidden attributes from an attacker who knows the mixing settings?

Colored MNIST: the attributes are the foreground and background colour (RGB octants, 8 classes)
and, as a reference, the digit label. The attacker mixes 8,000 training images (60,000 minus the
first 30,000: [30000, 38000)) each with a fresh key of its own at the victim's settings and trains
lenet5 for 3 epochs (Adam 3e-3, batch 64); the victim's 2,000 test images are mixed with the
victim's secret key. Rows: no mixing (windows of 1 pixel), the default bounds `fedvim bounds`
gives for cmnist (WS_min 2, WS_max 4: Algorithm 1's non-uniform windows), and uniform windows of
2, 4 and 8, each in spatial+chromatic (default) and spatial mode; finer colours (4 levels per
channel, 64 classes) without mixing and at the default bounds. MNIST: the label recogniser
for reference (one channel: the two modes are the same mixing). Beside the trained recogniser, the
histogram rule (no training: per channel, the most frequent value is the background, the value
farthest from it the ink) on the same mixed images.

Output: results.json (every run as fedvim printed it, with its command and the machine) and
table.md. Usage: run.py [--quick] (smoke: 1,000 images, 1 epoch). About 4-6 min on 2 busy cores.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
import fvexp  # noqa: E402

WINDOWS = [("none", 1, 1), ("default 2-4", 2, 4), ("uniform 2", 2, 2), ("uniform 4", 4, 4), ("uniform 8", 8, 8)]
MODES = ["spatial+chromatic", "spatial"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    n_atk, n_vic, epochs = (1000, 500, 1) if a.quick else (8000, 2000, 3)
    log = open(os.path.join(HERE, "run.log"), "w")
    runs = []
    jobs = []
    for name, lo, hi in WINDOWS:
        for mode in MODES if lo > 1 else MODES[:1]:
            jobs.append(("cmnist", name, lo, hi, mode, 2))
    for name, lo, hi in WINDOWS[:2]:  # finer colours: 4 levels per channel, 64 classes
        jobs.append(("cmnist", name, lo, hi, MODES[0], 4))
    for name, lo, hi in WINDOWS:
        jobs.append(("mnist", name, lo, hi, MODES[0], 2))
    for ds, name, lo, hi, mode, bins in jobs:
        args = ["attack", "recognise", "--dataset", ds, "--ws-min", lo, "--ws-max", hi, "--mode", mode, "--bins", bins,
                "--attacker-from", 30000, "--attacker-images", n_atk, "--victim-images", n_vic, "--epochs", epochs,
                "--threads", a.threads, "--seed", 1, "--json"]
        res, dt = fvexp.run(args, log)
        res["windows"] = name
        res["command"] = "fedvim " + " ".join(str(x) for x in args)
        res["wall_seconds"] = round(dt, 2)
        runs.append(res)
        print("%-7s %-12s %-18s bins %d %6.1f s" % (ds, name, mode, bins, dt), flush=True)
    out = {"machine": fvexp.machine(), "quick": a.quick, "runs": runs}
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "table.md"), "w") as f:
        f.write(table(out))
    print(table(out))


def table(out):
    m = out["machine"]
    lines = ["Accuracy of a recogniser trained on attacker-mixed images, on the victim's mixed test images "
             "(in brackets: the same recogniser on the victim's unmixed images). Chance: the majority-class "
             "rate on the victim's images. Machine: %s, %d cores, load %.2f, commit %s, %s." %
             (m["cpu"], m["host_cores"], m["load_avg_1min_at_save"], m["commit"], m["date_utc"]), "",
             "| data | windows | mode | colour classes | fg colour (chance) | bg colour (chance) | digit label (chance) "
             "| histogram rule fg / bg: class (exact colour) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        cells = []
        for attr in ["fg", "bg", "label"]:
            v = r["attributes"].get(attr)
            cells.append("-" if v is None else "%.3f [%.3f] (%.3f)" % (v["victim_mixed_accuracy"],
                                                                     v["victim_unmixed_accuracy"], v["chance"]))
        mode = r["vmix"]["mode"] if r["windows"] != "none" else "-"
        if r["dataset"] == "mnist" and r["windows"] != "none":
            mode = "(1 channel)"
        k = "%d" % r["bins"] ** 3 if r["dataset"] == "cmnist" else "-"
        hist = "-"
        if "fg" in r["attributes"]:
            f, b = r["attributes"]["fg"], r["attributes"]["bg"]
            hist = "%.3f (%.3f) / %.3f (%.3f)" % (f["histogram_rule_mixed_accuracy"], f["histogram_rule_mixed_exact_colour"],
                                                  b["histogram_rule_mixed_accuracy"], b["histogram_rule_mixed_exact_colour"])
        lines.append("| %s | %s | %s | %s | %s | %s |" % (r["dataset"], r["windows"], mode, k, " | ".join(cells), hist))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
