#!/usr/bin/env python3
"""The leakage table: every built-in attack against plain FL and FL + VisualMixer, side by side.

Settings (rows): plain FL; VisualMixer with the default bounds for MNIST (WS_min 2, WS_max 4, the
output of `fedvim bounds` with V* = 0.5, d* = 10 or 12; Algorithm 1); uniform 4 x 4 windows (the
reference's setting); uniform 8 x 8 windows. MNIST, pixel units, spatial+chromatic.

Attacks (columns), all through `fedvim attack ... --json`:
  - GAN (passive, Hitaj et al.): LeNet-5 federation of 5 IID clients on 12,000 training images,
    3 rounds of 1 local epoch (Adam 1e-3, batch 32); the victim's last upload is the fixed
    discriminator; every class in turn; CPU-sized generator (dense 32x7x7, conv 16, batch norm),
    300 steps of 32, norm prior 0.3 and 2-pixel jitter; judged by an independent fedavg_cnn oracle
    trained on training images 40,000-60,000 (no client holds them). Also without any prior.
  - DLG (batch 1, 20 test images; batch 2/4/8 on plain data): the double-precision sigmoid LeNet,
    L-BFGS 1,000 iterations, iDLG labels; SSIM against the original and against the mixed image.
  - Membership inference: 5 clients on 2,500 images, 5 rounds x 2 local epochs (overfits on
    purpose); loss threshold and LiRA offline with 8 shadows on 2,000 held-out images; 500 members
    of the victim client vs 500 test images; original queries and (VisualMixer) fresh-key queries.
  - Reassembly (VisualMixer rows): 50 test images, the window map known, greedy + 200,000
    annealing proposals per image.
  - GAN active (Hitaj's fake class), plain and VisualMixer [2, 4], class 3, smaller settings.

Output: experiments/attacks/results/*.json (one per command, as fedvim printed it),
results/leakage_table.md, and image grids in experiments/attacks/grids/.
Usage: leakage.py [--only gan,dlg,mia,reasm,active] [--quick] [--threads 1]
Runs CPU-sized (the dev box: 2 shared cores); `--quick` is a smoke run with tiny settings.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")
GRIDS = os.path.join(HERE, "grids")
CACHE = os.path.join(ROOT, "results", "attacks_cache")  # ignored by git: the oracle cache

SETTINGS = [
    ("plain", "plain FL", []),
    ("vm2-4", "FL+VisualMixer WS 2-4 (default bounds)", ["--vmix", "--ws-min", 2, "--ws-max", 4]),
    ("vm4", "FL+VisualMixer 4x4", ["--vmix", "--ws-min", 4, "--ws-max", 4]),
    ("vm8", "FL+VisualMixer 8x8", ["--vmix", "--ws-min", 8, "--ws-max", 8]),
]


def fedvim_bin():
    b = os.environ.get("FEDVIM_BIN")
    if b:
        return b
    for d in ("build", "build-attacks"):
        p = os.path.join(ROOT, d, "fedvim")
        if os.path.exists(p):
            return p
    sys.exit("fedvim binary not found: build it (scripts/setup.sh) or set FEDVIM_BIN")


def run(name, args, log, out=None):
    """Run `fedvim attack ...`, save its JSON as results/<name>.json, copy its grids."""
    cmd = [fedvim_bin(), "attack"] + [str(a) for a in args] + ["--json"]
    tmp = None
    if out:
        tmp = os.path.join(CACHE, "out_" + name)
        shutil.rmtree(tmp, ignore_errors=True)
        cmd += ["--out", tmp]
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log.write(p.stderr)
    log.flush()
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
    res = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
    res["command"] = "fedvim " + " ".join(str(a) for a in cmd[1:] if not str(a).startswith(CACHE))
    res["machine"] = MACHINE
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    if tmp:
        dst = os.path.join(GRIDS, name)
        shutil.rmtree(dst, ignore_errors=True)
        os.makedirs(dst)
        for fn in sorted(os.listdir(tmp)):
            if fn.endswith(".png"):
                shutil.copy(os.path.join(tmp, fn), dst)
    print("%-28s done" % name, flush=True)
    return res


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    return {"host_cores": os.cpu_count(), "cpu": cpu, "system": platform.platform(), "commit": commit,
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


MACHINE = machine()


def load(name):
    p = os.path.join(RESULTS, name + ".json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if v != v:
        return "-"
    return ("%." + str(nd) + "f") % v


def table():
    """Write results/leakage_table.md from whatever results exist."""
    L = []
    L.append("# Leakage table: plain FL vs FL + VisualMixer (MNIST)\n")
    L.append("Generated by `experiments/attacks/leakage.py` from the JSON files beside this one "
             "(machine, command and commit in each). Means over images or classes; see README.md "
             "for the settings. `-`: not applicable or not run.\n")
    L.append("| setting | GAN recognisability (mean over 10 classes) | GAN best SSIM to victim (median) "
             "| GAN victim resemblance | GAN recog. without priors | DLG SSIM vs original | DLG SSIM vs mixed "
             "| MIA LiRA AUC | MIA LiRA TPR@1%FPR | MIA loss AUC | MIA LiRA AUC, fresh-key queries "
             "| reassembly PSNR out / mixed (dB, median) | reassembly SSIM out / mixed | pixels in place out / mixed "
             "| reassembly: images exactly restored |")
    L.append("|" + "---|" * 15)
    for key, label, _ in SETTINGS:
        g, g0 = load("gan_" + key), load("gan_nopriors_" + key)
        d, m, r = load("dlg_b1_" + key), load("mia_" + key), load("reasm_" + key)
        row = [label]
        oc = g["over_classes"] if g else None
        row += [fmt(oc["recognisability"]["mean"]) if oc else "-", fmt(oc["ssim_best_median"]["median"]) if oc else "-",
                fmt(oc["victim_resemblance"]["mean"], 4) if oc else "-",
                fmt(g0["over_classes"]["recognisability"]["mean"]) if g0 else "-"]
        row += [fmt(d["ssim_original"]["mean"]) if d else "-",
                fmt(d["ssim_mixed"]["mean"]) if d and "ssim_mixed" in d else "-"]
        if m:
            q = m["queries_original"]["client_model"]
            row += [fmt(q["lira_offline"]["auc"]), fmt(q["lira_offline"]["tpr_at_1pct_fpr"]), fmt(q["loss_threshold"]["auc"])]
            qm = m.get("queries_mixed_fresh_key")
            row += [fmt(qm["client_model"]["lira_offline"]["auc"]) if qm else "-"]
        else:
            row += ["-"] * 4
        if r:
            row += ["%s / %s" % (fmt(r["psnr_output_vs_original"]["median"], 2),
                                 fmt(r["psnr_mixed_vs_original"]["median"], 2)),
                    "%s / %s" % (fmt(r["ssim_output_vs_original"]["mean"]), fmt(r["ssim_mixed_vs_original"]["mean"])),
                    "%s / %s" % (fmt(r["pixels_in_place_output"]["mean"]), fmt(r["pixels_in_place_mixed"]["mean"])),
                    fmt(r.get("exactly_restored_fraction"))]
        else:
            row += ["-"] * 4
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    # secondary tables
    L.append("## DLG by batch size (plain data)\n")
    L.append("| batch | SSIM vs original (mean) | recovered (SSIM >= 0.9) | label accuracy | seconds per attack |")
    L.append("|---|---|---|---|---|")
    for b in (1, 2, 4, 8):
        d = load("dlg_b%d_plain" % b)
        if d:
            L.append("| %d | %s | %s | %s | %s |" % (b, fmt(d["ssim_original"]["mean"]), fmt(d["recovered_fraction"]),
                                                  fmt(d["label_accuracy"]), fmt(d["seconds_per_run"]["mean"], 2)))
    L.append("")
    L.append("## Membership inference in detail (client model and global model, original queries)\n")
    L.append("| setting | model | loss AUC | loss TPR@1% | LiRA AUC | LiRA TPR@1% | LiRA TPR@0.1% | acc. members / non-members |")
    L.append("|---|---|---|---|---|---|---|---|")
    for key, label, _ in SETTINGS:
        m = load("mia_" + key)
        if not m:
            continue
        for which in ("client_model", "global_model"):
            q = m["queries_original"][which]
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s |" % (
                label, which.replace("_", " "), fmt(q["loss_threshold"]["auc"]), fmt(q["loss_threshold"]["tpr_at_1pct_fpr"]),
                fmt(q["lira_offline"]["auc"]), fmt(q["lira_offline"]["tpr_at_1pct_fpr"]),
                fmt(q["lira_offline"]["tpr_at_0.1pct_fpr"]), fmt(q["accuracy_members"]), fmt(q["accuracy_nonmembers"])))
    L.append("")
    L.append("## GAN per class (recognisability; with priors)\n")
    L.append("| setting | " + " | ".join("class %d" % c for c in range(10)) + " |")
    L.append("|" + "---|" * 11)
    for key, label, _ in SETTINGS:
        g = load("gan_" + key)
        if g:
            L.append("| %s | " % label + " | ".join(fmt(g["targets"]["class_%d" % c]["leakage"]["recognisability"], 2)
                                                   for c in range(10)) + " |")
    L.append("")
    L.append("## Active GAN attacker (Hitaj's fake class), class 3\n")
    L.append("| setting | recognisability | best SSIM to victim (median) | victim resemblance |")
    L.append("|---|---|---|---|")
    for key, label, _ in SETTINGS:
        a = load("gan_active_" + key)
        if a:
            l = a["leakage"]
            L.append("| %s | %s | %s | %s |" % (label, fmt(l["recognisability"]), fmt(l["ssim_best_median"]),
                                                fmt(l["victim_resemblance"], 4)))
    L.append("")
    with open(os.path.join(RESULTS, "leakage_table.md"), "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="gan,dlg,mia,reasm,active")
    ap.add_argument("--settings", default=",".join(k for k, _, _ in SETTINGS))
    ap.add_argument("--quick", action="store_true", help="tiny smoke settings (results are not meaningful)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table-only", action="store_true")
    a = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(GRIDS, exist_ok=True)
    os.makedirs(CACHE, exist_ok=True)
    if a.table_only:
        table()
        return
    only = set(a.only.split(","))
    keys = set(a.settings.split(","))
    log = open(os.path.join(CACHE, "log.txt"), "a")
    q = a.quick
    common = ["--threads", a.threads, "--seed", 1]
    oracle = ["--oracle-model", "lenet5" if q else "fedavg_cnn", "--oracle-epochs", 1 if q else 2,
              "--oracle-cache", os.path.join(CACHE, "oracle_%s.safetensors" % ("lenet5" if q else "fedavg_cnn"))]
    gan_fl = ["--model", "lenet5", "--clients", 5, "--rounds", 1 if q else 3, "--local-epochs", 1,
              "--fl-images", 3000 if q else 12000]
    gan_g = ["--steps", 20 if q else 300, "--gan-batch", 32, "--ch1", 32, "--ch2", 16, "--samples", 64,
             "--refs", 200]
    priors = ["--norm-prior", 0.3, "--jitter", 2]
    for key, label, vm in SETTINGS:
        if key not in keys:
            continue
        if "dlg" in only:
            run("dlg_b1_" + key, ["dlg", "--runs", 3 if q else 20, "--iters", 100 if q else 1000] + vm + common, log,
                out=True)
            if key == "plain":
                for b in (2, 4, 8):
                    run("dlg_b%d_plain" % b, ["dlg", "--batch", b, "--runs", 2 if q else 10,
                                              "--iters", 100 if q else 1000] + common, log, out=True)
        if "reasm" in only and vm:
            run("reasm_" + key, ["reassemble", "--images", 5 if q else 50, "--anneal", 20000 if q else 200000] + vm[1:]
                + common, log, out=True)
        if "gan" in only:
            run("gan_" + key, ["gan", "--all-targets"] + gan_fl + gan_g + priors + oracle + vm + common, log, out=True)
            if key in ("plain", "vm4"):
                run("gan_nopriors_" + key, ["gan", "--all-targets"] + gan_fl + gan_g + oracle + vm + common, log,
                    out=True)
        if "mia" in only:
            run("mia_" + key, ["mia", "--model", "lenet5", "--clients", 5, "--rounds", 2 if q else 5,
                               "--local-epochs", 1 if q else 2, "--fl-images", 1000 if q else 2500,
                               "--shadows", 2 if q else 8, "--attacker-images", 400 if q else 2000,
                               "--queries", 100 if q else 500] + vm + common, log)
        if "active" in only and key in ("plain", "vm2-4"):
            run("gan_active_" + key, ["gan", "--active", "--target", 3, "--victim", 0, "--active-steps", 10 if q else 100]
                + gan_fl + gan_g + priors + oracle + vm + common, log, out=True)
    table()
    print("wrote", os.path.join(RESULTS, "leakage_table.md"))


if __name__ == "__main__":
    main()
