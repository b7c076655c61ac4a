#!/usr/bin/env python3
"""Secure aggregation ([secagg], docs/secagg.md): what it costs per round against plain FedAvg at
10, 100 and 1,000 clients per round, and what the server's attacks still get once it sees only the
sum. Every figure comes from fedvim's metrics.jsonl, summary.json and attacks.jsonl; this script
only writes configs, runs `fedvim run`, collects and tabulates.

    python3 experiments/secagg/secagg.py            # cost, inversion, GAN, then the tables
    python3 experiments/secagg/secagg.py --cost     # only the cost runs
    python3 experiments/secagg/secagg.py --attacks  # only the inversion runs
    python3 experiments/secagg/secagg.py --gan      # only the GAN runs
    python3 experiments/secagg/secagg.py --tables   # redraw the tables from the committed JSON
"""
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import fvexp  # noqa: E402

RESULTS = os.path.join(HERE, "results")
WORK = os.path.join("/tmp", "fedvim_secagg_%d" % os.getuid())
COHORTS = [10, 100, 1000]


def plus_k(n):
    """SecAgg+'s neighbourhood: 2 ceil(log2 n), the O(log n) degree of Bell et al."""
    return 2 * math.ceil(math.log2(n))


def variants(n):
    return [("plain", "plain FedAvg", ""),
            ("mesh", "SecAgg (every pair)", "[secagg]\nenabled = true\n"),
            ("plus", "SecAgg+ (k = %d)" % plus_k(n), "[secagg]\nenabled = true\nneighbours = %d\n" % plus_k(n))]


def last_metrics(rdir):
    with open(os.path.join(rdir, "metrics.jsonl")) as f:
        return [json.loads(l) for l in f][-1]


def run_cost(log):
    rows = []
    base = open(os.path.join(HERE, "cost.ini")).read()
    for n in COHORTS:
        for key, label, extra in variants(n):
            name = "cost_%s_%d" % (key, n)
            ini = os.path.join(WORK, name + ".ini")
            with open(ini, "w") as f:
                f.write(base.replace("[fl]\n", "[fl]\nclients = %d\n" % n) + extra)
                f.write("\n[output]\ndir = %s\nname = %s\nsave_model = false\n" % (os.path.join(WORK, "results"), name))
            _, wall = fvexp.run(["run", ini, "--quiet", "--overwrite"], log)
            rdir = os.path.join(WORK, "results", name)
            m = last_metrics(rdir)
            s = json.load(open(os.path.join(rdir, "summary.json")))
            sa = m.get("secagg") or {}
            row = {"clients": n, "variant": key, "label": label, "round": m["round"],
                   "bytes_up": m["bytes_up"], "bytes_down": m["bytes_down"], "seconds": m["seconds"],
                   "eval_seconds": m["eval_seconds"], "worker_busy_max": m["worker_busy_max"],
                   "secagg_seconds": sa.get("seconds"), "neighbours": sa.get("neighbours"),
                   "threshold": sa.get("threshold"), "frac_bits": sa.get("frac_bits"), "clamped": sa.get("clamped"),
                   "test_accuracy": s["test_accuracy"], "wall_seconds": round(wall, 1)}
            rows.append(row)
            print("%-18s round %d: %.2f s, up %.1f MB, down %.1f MB, secagg phases %s s, acc %.4f" % (
                name, m["round"], m["seconds"], m["bytes_up"] / 1e6, m["bytes_down"] / 1e6, sa.get("seconds"),
                s["test_accuracy"]), flush=True)
    fvexp.save(RESULTS, "cost_cpu", rows, {"command": "python3 experiments/secagg/secagg.py --cost",
                                            "config": "experiments/secagg/cost.ini"})


# The attacks: the in-run inversion of experiments/attack_invert.ini (clients of 8 MNIST images, one
# local step of plain SGD in one batch) at round 1, aimed at client 0. Rows:
#   plain        no secure aggregation: client 0's own update (50 clients);
#   victim m     secure aggregation over m clients (all sampled: fl.clients = m, data.train_size =
#                8 m), the server inverting the round's mean as if it were client 0's update;
#   cohort m     the same mean read as what it is for FedAvg with one full-batch step per client:
#                one step over the union of the m clients' 8 m images, all reconstructed and
#                measured ([secagg] attacker = cohort);
#   batch 8m     the reference for the cohort rows: no secure aggregation, client 0 alone holding
#                8 m images in one batch (3 clients of 8 m images each): the same inversion problem
#                without the sum, so the cohort row's gap to it is what secure aggregation adds.
ATTACKS = [("plain", 50, None), ("victim", 3, None), ("victim", 5, None), ("victim", 10, None), ("victim", 50, None),
           ("cohort", 3, None), ("cohort", 5, None), ("cohort", 8, None),
           ("batch", 3, None), ("batch", 5, None), ("batch", 8, None)]


def run_attacks(log):
    rows = []
    base = os.path.join(fvexp.ROOT, "experiments", "attack_invert.ini")
    for kind, m, _ in ATTACKS:
        name = "invert_%s_%d" % (kind, m)
        args = ["run", base, "--quiet", "--overwrite", "--set", "output.dir=%s" % os.path.join(WORK, "results"),
                "--set", "output.name=%s" % name, "--set", "fl.rounds=1", "--set", "attack.rounds=1",
                "--set", "attack.client=0", "--set", "output.save_model=false"]
        if kind in ("victim", "cohort"):
            args += ["--set", "fl.clients=%d" % m, "--set", "data.train_size=%d" % (8 * m), "--set", "secagg.enabled=true",
                     "--set", "secagg.attacker=%s" % kind]
        elif kind == "batch":
            args += ["--set", "fl.clients=3", "--set", "data.train_size=%d" % (24 * m),
                     "--set", "training.batch_size=%d" % (8 * m)]
        else:
            args += ["--set", "fl.clients=%d" % m, "--set", "data.train_size=%d" % (8 * m)]
        _, wall = fvexp.run(args, log)
        rdir = os.path.join(WORK, "results", name)
        with open(os.path.join(rdir, "attacks.jsonl")) as f:
            a = json.loads(f.readline())
        r = a.get("result", {})
        rows.append({"kind": kind, "m": m, "secagg": kind in ("victim", "cohort"), "images": r.get("batch"),
                     "status": a["status"], "ssim_median": r.get("ssim_original_median"),
                     "psnr_median": r.get("psnr_original_median"), "ssim": r.get("ssim_original"),
                     "cosine": r.get("cosine"), "label_accuracy": r.get("label_accuracy"),
                     "attack_seconds": a.get("seconds"), "wall_seconds": round(wall, 1)})
        print("%-18s %s images, SSIM median %s, PSNR median %s, cosine %s" % (
            name, r.get("batch"), r.get("ssim_original_median"), r.get("psnr_original_median"), r.get("cosine")),
            flush=True)
    fvexp.save(RESULTS, "attacks_cpu", rows, {"command": "python3 experiments/secagg/secagg.py --attacks",
                                               "config": "experiments/attack_invert.ini (round 1, client 0)"})


# The GAN attack (experiments/attack_gan.ini: the server trains a generator against the global model
# of round 8, target class 3) with and without secure aggregation: it needs only the global model.
def run_gan(log):
    rows = []
    for secagg in (False, True):
        name = "gan_secagg_%s" % ("on" if secagg else "off")
        _, wall = fvexp.run(["run", os.path.join(fvexp.ROOT, "experiments", "attack_gan.ini"), "--quiet",
                             "--overwrite", "--set", "output.dir=%s" % os.path.join(WORK, "results"),
                             "--set", "output.name=%s" % name, "--set", "output.save_model=false",
                             "--set", "secagg.enabled=%s" % ("true" if secagg else "false")], log)
        rdir = os.path.join(WORK, "results", name)
        with open(os.path.join(rdir, "attacks.jsonl")) as f:
            a = json.loads(f.readline())
        lk = a["result"]["leakage"]
        s = json.load(open(os.path.join(rdir, "summary.json")))
        rows.append({"secagg": secagg, "status": a["status"], "recognisability": lk["recognisability"],
                     "oracle_p_target": lk["oracle_p_target"], "ssim_best_median": lk["ssim_best_median"],
                     "psnr_best_median": lk["psnr_best_median"], "victim_resemblance": lk["victim_resemblance"],
                     "global_test_accuracy": s["test_accuracy"], "wall_seconds": round(wall, 1)})
        print("%-16s recognisability %.3f, best SSIM median %.3f, global model %.4f" % (
            name, lk["recognisability"], lk["ssim_best_median"], s["test_accuracy"]), flush=True)
    fvexp.save(RESULTS, "gan_cpu", rows, {"command": "python3 experiments/secagg/secagg.py --gan",
                                         "config": "experiments/attack_gan.ini"})


def tables():
    out = []
    cost = fvexp.load_rows(RESULTS, "cost_cpu")
    if cost:
        plain = {r["clients"]: r for r in cost if r["variant"] == "plain"}
        out += ["| clients per round | variant | round (s) | x plain | protocol phases (s) | up (MB) | down (MB) | "
                "bytes x plain | test acc. (%) |",
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in cost:
            p = plain[r["clients"]]
            tot, ptot = r["bytes_up"] + r["bytes_down"], p["bytes_up"] + p["bytes_down"]
            out.append("| %d | %s | %.2f | %.2f | %s | %.2f | %.2f | %.2f | %.2f |" % (
                r["clients"], r["label"], r["seconds"], r["seconds"] / p["seconds"],
                "%.2f" % r["secagg_seconds"] if r["secagg_seconds"] is not None else "-", r["bytes_up"] / 1e6,
                r["bytes_down"] / 1e6, tot / ptot, 100 * r["test_accuracy"]))
        out.append("")
    att = fvexp.load_rows(RESULTS, "attacks_cpu")
    if att:
        what = {"plain": "client 0's own update (no secure aggregation)",
                "victim": "the mean of %d clients' updates, read as client 0's",
                "cohort": "the mean of %d clients' updates, read as one step over their images",
                "batch": "reference: one client's update over %d images in one batch (no secure aggregation)"}
        out += ["| what the server inverts | images reconstructed | SSIM median | PSNR median (dB) | best SSIM | "
                "cosine reached |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for r in att:
            w = what[r["kind"]]
            if "%d" in w:
                w = w % (8 * r["m"] if r["kind"] == "batch" else r["m"])
            out.append("| %s | %d | %.3f | %.2f | %.3f | %.3f |" % (w, r["images"], r["ssim_median"], r["psnr_median"],
                                                                   max(r["ssim"]), r["cosine"]))
        out.append("")
    gan = fvexp.load_rows(RESULTS, "gan_cpu")
    if gan:
        out += ["| GAN attack on the global model | recognisability | oracle p(target) | best SSIM median | "
                "global model test acc. (%) |", "| --- | ---: | ---: | ---: | ---: |"]
        for r in gan:
            out.append("| %s | %.3f | %.3f | %.3f | %.2f |" % (
                "with secure aggregation" if r["secagg"] else "without", r["recognisability"], r["oracle_p_target"],
                r["ssim_best_median"], 100 * r["global_test_accuracy"]))
        out.append("")
    fvexp.save_text(os.path.join(RESULTS, "tables.md"), "\n".join(out))


if __name__ == "__main__":
    os.makedirs(WORK, exist_ok=True)
    args = set(sys.argv[1:])
    log = open(os.path.join(WORK, "log.txt"), "a")
    t0 = time.time()
    if not args or "--cost" in args:
        run_cost(log)
    if not args or "--attacks" in args:
        run_attacks(log)
    if not args or "--gan" in args:
        run_gan(log)
    tables()
    print("%.0f s" % (time.time() - t0))
