#!/usr/bin/env python3
"""Paper Figure 3 (VFE part): measured VFE of mixed images against window size, on MNIST and
Colored MNIST, for uniform shuffling (WS_min = WS_max = WS: every window WS x WS) and for the
VFE-guided strategy (Algorithm 1 with WS_min = 2, WS_max = WS). WS = 1 is the unmixed image.
Output: results/fig3_vfe.{csv,json}. Usage: fig3_vfe.py [--limit N] (default 2000 train images)."""
import argparse
import os
import tempfile

import common

ap = argparse.ArgumentParser()
ap.add_argument("--limit", type=int, default=2000)
a = ap.parse_args()
work = tempfile.mkdtemp(prefix="fv_fig3_")
key = common.keyfile(work)
rows = []
log = open(os.path.join(work, "log.txt"), "w")
for ds in ("mnist", "cmnist"):
    base = common.run(["vfe", "--dataset", ds, "--limit", a.limit, "--quiet", "--json"], log)
    for strategy in ("uniform", "guided"):
        rows.append({"dataset": ds, "strategy": strategy, "ws": 1, "ws_min": 1, "ws_max": 1,
                     "vfe_mean": base["mean"], "vfe_min": base["min"], "vfe_p5": base["p5"], "windows_per_image": 0})
        for ws in (2, 4, 8, 16, 32):
            lo = ws if strategy == "uniform" else 2
            out = os.path.join(work, "%s_%s_%d" % (ds, strategy, ws))
            j = common.run(["mix", "--dataset", ds, "--split", "train", "--limit", a.limit, "--key", key,
                            "--out", out, "--ws-min", lo, "--ws-max", ws, "--preview", 0, "--json"], log)
            t = j["train"]
            rows.append({"dataset": ds, "strategy": strategy, "ws": ws, "ws_min": lo, "ws_max": ws,
                         "vfe_mean": t["vfe_mean"], "vfe_min": t["vfe_min"],
                         "vfe_p5": t["vfe_p5"], "windows_per_image": t["windows"] / t["images"]})
            print(rows[-1], flush=True)
common.save("fig3_vfe", rows, {"images": a.limit, "split": "train", "block": 8, "unit": 1,
                               "mode": "spatial+chromatic", "command": "fedvim mix --ws-min/--ws-max; fedvim vfe"})
