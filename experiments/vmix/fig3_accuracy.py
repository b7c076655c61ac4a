#!/usr/bin/env python3
"""Paper Figure 3 (accuracy part): test accuracy of LeNet-5 and ResNet-20 trained centrally on
mixed data (and tested on mixed test images, each with its own derived key), against window
size, for uniform shuffling (WS_min = WS_max = WS) and the VFE-guided strategy (WS_min = 2,
WS_max = WS). WS = 1 is the unmixed data. CPU-sized (the dev box has 2 cores): LeNet-5 on 10,000
training images for 2 epochs, ResNet-20 on 3,000 for 2 epochs (~600 images/s on CPU), both
tested on 2,000 test images; Adam lr 1e-3, seed 1, one run per point.
Output: results/fig3_accuracy.{csv,json}.
Usage: fig3_accuracy.py [--datasets mnist,cmnist] [--models lenet5,resnet20] [--name NAME]"""
import argparse
import os
import tempfile

import common

ap = argparse.ArgumentParser()
ap.add_argument("--datasets", default="mnist,cmnist")
ap.add_argument("--models", default="lenet5,resnet20")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--name", default="fig3_accuracy", help="results/<name>.{csv,json}")
a = ap.parse_args()
SIZES = {"lenet5": (10000, 2), "resnet20": (3000, 2)}  # training images, epochs
TEST = 2000
work = tempfile.mkdtemp(prefix="fv_fig3acc_")
key = common.keyfile(work)
log = open(os.path.join(work, "log.txt"), "w")
rows = []
for ds in a.datasets.split(","):
    for strategy in ("uniform", "guided"):
        for ws in (1, 2, 4, 8, 16, 32):
            if ws == 1 and strategy == "guided":
                continue  # the unmixed baseline is shared
            lo = ws if strategy == "uniform" else 2
            limit = max(n for n, _ in SIZES.values())
            out = os.path.join(work, "%s_%s_%d" % (ds, strategy, ws))
            vfe = None
            if ws > 1:
                j = common.run(["mix", "--dataset", ds, "--limit", limit, "--test-limit", TEST, "--key", key,
                                "--out", out, "--ws-min", lo, "--ws-max", ws, "--preview", 0,
                                "--threads", a.threads, "--json"], log)
                vfe = j["train"]["vfe_mean"]
            for model in a.models.split(","):
                n, epochs = SIZES[model]
                args = ["train", "--model", model, "--dataset", ds, "--limit", n, "--test-limit", TEST,
                        "--epochs", epochs, "--batch", 64, "--optimizer", "adam", "--lr", 1e-3, "--seed", 1,
                        "--threads", a.threads, "--json"]
                if ws > 1:
                    args += ["--data-dir", out]
                t = common.run(args, log)
                rows.append({"dataset": ds, "strategy": strategy if ws > 1 else "none", "ws": ws, "ws_min": lo,
                             "ws_max": ws, "model": model, "train_images": n, "epochs": epochs, "test_images": TEST,
                             "vfe_mean": vfe if vfe is not None else "", "test_accuracy": t["test_accuracy"],
                             "seconds": round(t["seconds"], 2)})
                print(rows[-1], flush=True)
common.save(a.name, rows, {"optimizer": "adam", "lr": 1e-3, "batch": 64, "seed": 1,
                                    "mode": "spatial+chromatic", "unit": 1,
                                    "note": "CPU-sized subsets; ResNet-20 on 3,000 training images only"})
