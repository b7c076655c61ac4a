#!/usr/bin/env python3
"""The learned inverter against VisualMixer on MNIST (docs/attacks.md, "Learned inverter").

Runs `fedvim attack inverter` for each attacker data set (a disjoint slice of MNIST's training
split, and Fashion-MNIST's training split) and each mixing setting (MNIST's default bounds
WS 2..4, uniform windows 2, 4 and 8), writes one JSON per run in results/ (with the exact command,
the machine and the commit), the image grids in grids/, and the table results/table.md.

With --reverse (or --only-reverse) also the other direction: a Fashion-MNIST victim at uniform
windows of 4, attacked with a Fashion-MNIST training slice and with MNIST.

Usage: FEDVIM_BIN=build-h/fedvim python3 experiments/attacks/inverter/run.py [--threads 2] [--reverse]
       python3 experiments/attacks/inverter/run.py --table-only
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SETTINGS = [("vm2-4", 2, 4), ("vm2", 2, 2), ("vm4", 4, 4), ("vm8", 8, 8)]
ATTACKERS = ["mnist", "fashion"]
# --reverse: the other direction, a Fashion-MNIST victim at uniform windows of 4
REVERSE = [("vm4", 4, 4)]
NAMES = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}


def runs(reverse):
    """(result name, victim, setting key, WS_min, WS_max, attacker data set) of each run."""
    out = [("%s_%s" % (k, atk), "mnist", k, lo, hi, atk) for k, lo, hi in SETTINGS for atk in ATTACKERS]
    if reverse:
        out += [("fashion_%s_%s" % (k, atk), "fashion", k, lo, hi, atk) for k, lo, hi in REVERSE
                for atk in ["fashion", "mnist"]]
    return out
PAIRS, EPOCHS, IMAGES, WIDTH = 6000, 5, 500, 16


def commit():
    try:
        return subprocess.check_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(name, args, threads):
    fedvim = os.environ.get("FEDVIM_BIN", os.path.join(ROOT, "build-h", "fedvim"))
    cmd = [fedvim, "attack", "inverter", "--json", "--threads", str(threads),
           "--out", os.path.join(HERE, "grids", name)] + [str(a) for a in args]
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.time()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
    res = json.loads(out)
    res["command"] = " ".join(["fedvim"] + cmd[1:]).replace(ROOT + "/", "")
    res["wall_seconds"] = round(time.time() - t0, 1)
    res["machine"] = "%s, %d cores (%s)" % (platform.node(), os.cpu_count(), platform.platform())
    res["commit"] = commit()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")


def table():
    rows = ["| victim | mixing | attacker data | PSNR inverted | PSNR mixed | PSNR reassembled | SSIM inverted | SSIM mixed | SSIM reassembled | final train MSE | train s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, victim, key, lo, hi, atk in runs(True):
        p = os.path.join(HERE, "results", name + ".json")
        if not os.path.exists(p):
            continue
        d = json.load(open(p))

        def fmt(v, digits):  # "inf" (an exact recovery of some image) stays a word
            return v if isinstance(v, str) else "%.*f" % (digits, v)

        def ms(k):
            s = d.get(k)
            return "%s / %s" % (fmt(s["median"], 3), fmt(s["mean"], 3)) if s else "-"

        def md(k):
            s = d.get(k)
            return "%s / %s" % (fmt(s["median"], 2), fmt(s["mean"], 2)) if s else "-"

        win = "WS %d..%d (default)" % (lo, hi) if lo != hi else "uniform %d" % lo
        att = "%s train [%d, %d)" % (NAMES[atk], d["attacker_from"], d["attacker_from"] + d["attacker_images"])
        inv = d["inverter"]
        rows.append("| %s test | %s | %s | %s | %s | %s | %s | %s | %s | %.4f | %.0f |" % (
            NAMES[victim], win, att, md("psnr_inverted_vs_original"), md("psnr_mixed_vs_original"),
            md("psnr_reassembled_vs_original"), ms("ssim_inverted_vs_original"), ms("ssim_mixed_vs_original"),
            ms("ssim_reassembled_vs_original"), inv["epoch_loss"][-1], inv["train_seconds"]))
    text = ("Victim: test images 0-%d, each mixed with the victim's secret; figures are median / mean "
            "over the images (PSNR in dB, SSIM on [0, 1]). Reassembled: `attack reassemble` given the "
            "window map (greedy + 200,000 annealing proposals per channel).\n\n" % (IMAGES - 1)) + "\n".join(rows) + "\n"
    with open(os.path.join(HERE, "results", "table.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--reverse", action="store_true", help="also a Fashion-MNIST victim (uniform windows of 4)")
    ap.add_argument("--only-reverse", action="store_true", help="only the --reverse runs")
    a = ap.parse_args()
    if not a.table_only:
        for name, victim, key, lo, hi, atk in runs(a.reverse or a.only_reverse):
            if a.only_reverse and victim == "mnist":
                continue
            run(name, ["--dataset", victim, "--attacker-dataset", atk, "--attacker-from", 0,
                       "--attacker-images", PAIRS, "--epochs", EPOCHS, "--width", WIDTH, "--images", IMAGES,
                       "--ws-min", lo, "--ws-max", hi, "--reassemble", "--verbose"], a.threads)
    table()


if __name__ == "__main__":
    main()
