#!/usr/bin/env python3
"""The d* sweep behind the documented default d* (--d-rel, docs/visualmixer.md section 7): for each d*, WS_max from the Monte
Carlo model (windows from the client's own MNIST images, conv 3x3, pool 2, p = 0.95), WS_min
from V* (default 0.5, alpha 0.05), Algorithm 1 on 10,000 training and 2,000 test images, then
LeNet-5 (2 epochs, Adam 1e-3, seed 1) test accuracy on mixed test images. Rows with the same
WS_max reuse one training run (accuracy depends on d* only through WS_max).
Output: results/dstar_sweep.{csv,json} for MNIST, results/dstar_sweep_<dataset>.{csv,json} for
another data set (--dataset fashion or cmnist: the same protocol on that data set's images).
Usage: dstar_sweep.py [--target-vfe V] [--dataset mnist|fashion|cmnist]"""
import argparse
import os
import tempfile

import common

ap = argparse.ArgumentParser()
ap.add_argument("--target-vfe", type=float, default=0.5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--dataset", default="mnist", choices=("mnist", "fashion", "cmnist"))
a = ap.parse_args()
DSTAR = (1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 18, 20, 25)
work = tempfile.mkdtemp(prefix="fv_dstar_")
key = common.keyfile(work)
log = open(os.path.join(work, "log.txt"), "w")
base = common.run(["train", "--model", "lenet5", "--dataset", a.dataset, "--limit", 10000, "--test-limit", 2000,
                   "--epochs", 2, "--optimizer", "adam", "--lr", 1e-3, "--seed", 1, "--threads", a.threads,
                   "--json"], log)
rows = []
done = {}
for d in DSTAR:
    out = os.path.join(work, "d%g" % d)
    j = common.run(["mix", "--dataset", a.dataset, "--limit", 10000, "--test-limit", 2000, "--key", key, "--out", out,
                    "--target-vfe", a.target_vfe, "--d-max", d, "--prefer", "privacy", "--preview", 0,
                    "--threads", a.threads, "--json"], log)
    ws = (j["ws_min"], j["ws_max"])
    if ws not in done:
        t = common.run(["train", "--model", "lenet5", "--dataset", a.dataset, "--data-dir", out, "--epochs", 2,
                        "--optimizer", "adam", "--lr", 1e-3, "--seed", 1, "--threads", a.threads, "--json"], log)
        done[ws] = t["test_accuracy"]
    dp = j["bounds"]["ws_max_model"]["d_p"]
    rows.append({"d_star": d, "ws_min": ws[0], "ws_max_model": j["bounds"]["ws_max_model"]["ws_max"],
                 "ws_max": ws[1], "d_p_at_ws_max": dp[ws[1].bit_length() - 1] if ws[1].bit_length() - 1 < len(dp) else "",
                 "vfe_mean": j["train"]["vfe_mean"], "vfe_p5": j["train"]["vfe_p5"],
                 "test_accuracy": done[ws], "unmixed_accuracy": base["test_accuracy"]})
    print(rows[-1], flush=True)
common.save("dstar_sweep" + ("" if a.dataset == "mnist" else "_" + a.dataset), rows,
            {"dataset": a.dataset, "target_vfe": a.target_vfe, "alpha": 0.05, "model": "lenet5", "epochs": 2,
                                  "train_images": 10000, "test_images": 2000, "optimizer": "adam", "lr": 1e-3,
                                  "dp": "images, conv 3x3, pool 2, p 0.95, 2000 trials, seed 1",
                                  "conflict": "--prefer privacy (WS_max raised to WS_min when d* is too small)"})
