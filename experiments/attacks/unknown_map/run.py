#!/usr/bin/env python3
"""Reassembly with the window map unknown (`fedvim attack reassemble --unknown-map`,
docs/attacks.md section 8.2): how often the map estimated from the public settings is the true
one, and what the reassembly loses against the attacker who is told the map.

MNIST and Colored MNIST test images 0..49, pixel units; bounds 2..4 (what `fedvim bounds` gives
both data sets by default), 2..8, 4..8 and 2..16 (Algorithm 1's non-uniform windows), and a
uniform 4 x 4 grid (WS_min = WS_max: the map is then public); spatial+chromatic (and spatial for
Colored MNIST). The search: greedy + 200,000 annealing proposals per channel (the defaults), at
most 3 rounds of re-deriving the map.

Output: results.json (every run as fedvim printed it, with its command and the machine) and
table.md. Usage: run.py [--images N]. About 3 min on 2 busy cores.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
import fvexp  # noqa: E402

BOUNDS = [(2, 4), (2, 8), (4, 8), (2, 16), (4, 4)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    log = open(os.path.join(HERE, "run.log"), "w")
    jobs = [(ds, lo, hi, "spatial+chromatic") for ds in ["mnist", "cmnist"] for lo, hi in BOUNDS]
    jobs += [("cmnist", lo, hi, "spatial") for lo, hi in BOUNDS[:2]]
    runs = []
    for ds, lo, hi, mode in jobs:
        args = ["attack", "reassemble", "--dataset", ds, "--ws-min", lo, "--ws-max", hi, "--mode", mode,
                "--images", a.images, "--unknown-map", "--threads", a.threads, "--seed", 1, "--json"]
        res, dt = fvexp.run(args, log)
        res["command"] = "fedvim " + " ".join(str(x) for x in args)
        res["wall_seconds"] = round(dt, 2)
        runs.append(res)
        print("%-7s %2d..%-2d %-18s %6.1f s" % (ds, lo, hi, mode, dt), flush=True)
    out = {"machine": fvexp.machine(), "runs": runs}
    with open(os.path.join(HERE, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(os.path.join(HERE, "table.md"), "w") as f:
        f.write(table(out))
    print(table(out))


def table(out):
    m = out["machine"]
    lines = ["Reassembly of %d test images per row, the window map told vs estimated from the public settings. "
             "Medians over images. Machine: %s, %d cores, load %.2f, commit %s, %s." %
             (out["runs"][0]["images"], m["cpu"], m["host_cores"], m["load_avg_1min_at_save"], m["commit"],
              m["date_utc"]), "",
             "| data | WS | mode | map exact | pixels in the right window (mean) | SSIM mixed | SSIM known map | "
             "SSIM estimated map | PSNR known map | PSNR estimated map | s/image (estimate) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        u = r["unknown_map"]
        v = r["vmix"]
        lines.append("| %s | %d..%d | %s | %.2f | %.3f | %.3f | %.3f | %.3f | %.2f | %.2f | %.2f |" % (
            r["dataset"], v["ws_min"], v["ws_max"], v["mode"], u["map_exact_fraction"],
            u["pixels_in_right_window"]["mean"], r["ssim_mixed_vs_original"]["median"],
            r["ssim_output_vs_original"]["median"], u["ssim_output_vs_original"]["median"],
            r["psnr_output_vs_original"]["median"], u["psnr_output_vs_original"]["median"],
            u["seconds_per_image"]["median"]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
