"""FL against FL + VisualMixer (paper Table IV): for each data set, partition and model, one
`fedvim run` of table4.ini without and one with VisualMixer; accuracy on clean and on mixed test
images and the measured VFE of the clients' mixed data. Keeps metrics.jsonl, summary.json and
config.resolved.ini of each run under results/<run>/ (not the keys or checkpoints).

    python3 experiments/table4/table4.py                          # CPU-sized LeNet-5 grid
    python3 experiments/table4/table4.py --models lenet5,resnet20 --datasets mnist --partitions iid \
        --set data.train_size=3000 --set fl.rounds=3               # small ResNet-20 rows
    python3 experiments/table4/table4.py --tag full --set data.train_size=0 --set data.test_size=0 \
        --set fl.rounds=50 --models lenet5,vgg11,resnet20,mobilenet   # full size (not run here)
    python3 experiments/table4/table4.py --dp-only                # FL+DP rows alone
FL+DP rows (DP-FedAvg, [dp] section: clip --dp-clip, one row per noise multiplier in --dp-noise,
z = 0 being clipping alone) are run for MNIST IID when mnist and iid are in the grid, with the
same base, into results/table4_dp_<tag>.json: epsilon at delta 1e-5 for all rounds, the mean
pre-clip norm and the fraction of clients clipped.
Runs already in results/table4_<tag>.json (table4_dp_<tag>.json) are skipped."""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="mnist,fashion,cmnist")
    ap.add_argument("--partitions", default="iid,dirichlet")
    ap.add_argument("--models", default="lenet5")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides")
    ap.add_argument("--tag", default="cpu")
    ap.add_argument("--dp-clip", type=float, default=1.0, help="FL+DP rows: L2 clip of the update deltas")
    ap.add_argument("--dp-noise", default="0,0.5,1.0", help="FL+DP rows: noise multipliers (empty: no DP rows)")
    ap.add_argument("--dp-only", action="store_true", help="only the FL+DP rows")
    ap.add_argument("--vmix-only", action="store_true",
                    help="only the FL + VisualMixer runs (e.g. to compare VisualMixer settings against a grid's FL rows)")
    a = ap.parse_args()
    if not a.dp_only:
        grid(a)
    if a.dp_noise and "mnist" in a.datasets.split(",") and "iid" in a.partitions.split(","):
        for model in a.models.split(","):
            dp_rows(a, model)


# The first CPU-sized grids keep their runs straight under results/; every later tag gets its own
# folder, so a bigger run of the same row never overwrites a smaller one.
FLAT_TAGS = ("cpu", "small_models_cpu")


def copy_run(run, res, tag):
    src = os.path.join("/tmp/fedvim_table4", run)
    dst = os.path.join(res, run) if tag in FLAT_TAGS else os.path.join(res, tag, run)
    os.makedirs(dst, exist_ok=True)
    for f in ("metrics.jsonl", "summary.json", "config.resolved.ini"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
    return dst


def dp_rows(a, model):
    """FL+DP (DP-FedAvg) on MNIST IID: one run per noise multiplier, clip a.dp_clip."""
    res = os.path.join(HERE, "results")
    name = "table4_dp_" + a.tag
    rows = fvexp.load_rows(res, name)
    done = {r["run"] for r in rows}
    log = open("/tmp/fedvim_table4.log", "a")
    for z in a.dp_noise.split(","):
        run = "mnist_%s_iid_dp_c%g_z%g" % (model, a.dp_clip, float(z))
        if run in done:
            continue
        sets = ["data.dataset=mnist", "partition.scheme=iid", "model.name=" + model, "visualmixer.enabled=false",
                "dp.enabled=true", "dp.clip=%g" % a.dp_clip, "dp.noise_multiplier=" + z, "dp.delta=1e-5",
                "output.name=" + run] + a.set
        args = ["run", os.path.join(HERE, "table4.ini"), "--overwrite", "--quiet", "--json"]
        for s in sets:
            args += ["--set", s]
        j, dt = fvexp.run(args, log)
        dst = copy_run(run, res, a.tag)
        with open(os.path.join(dst, "metrics.jsonl")) as f:
            ms = [json.loads(l) for l in f if l.strip()]
        row = {"run": run, "dataset": "mnist", "model": model, "partition": "iid", "setting": "FL+DP",
               "test_accuracy": j.get("test_accuracy"), "dp_clip": j.get("dp_clip"),
               "dp_noise_multiplier": j.get("dp_noise_multiplier"), "dp_q": j.get("dp_q"),
               "dp_delta": j.get("dp_delta"), "dp_epsilon": j.get("dp_epsilon"),
               "dp_norm_mean": round(sum(m["dp_norm_mean"] for m in ms) / len(ms), 4),
               "dp_clipped_fraction": round(sum(m["dp_clipped_fraction"] for m in ms) / len(ms), 3),
               "rounds": j.get("rounds"), "seconds": round(dt, 1), "overrides": " ".join(a.set)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        fvexp.save(res, name, rows, {"command": "python3 experiments/table4/table4.py " + " ".join(sys.argv[1:])})


def grid(a):
    res = os.path.join(HERE, "results")
    name = "table4_" + a.tag
    rows = fvexp.load_rows(res, name)
    done = {r["run"] for r in rows}
    log = open("/tmp/fedvim_table4.log", "a")
    for model in a.models.split(","):
        for ds in a.datasets.split(","):
            for part in a.partitions.split(","):
                for vm in ((1,) if a.vmix_only else (0, 1)):
                    run = "%s_%s_%s_%s" % (ds, model, part, "vmix" if vm else "plain")
                    if run in done:
                        continue
                    sets = ["data.dataset=" + ds, "partition.scheme=" + part, "model.name=" + model,
                            "visualmixer.enabled=" + ("true" if vm else "false"), "output.name=" + run] + a.set
                    args = ["run", os.path.join(HERE, "table4.ini"), "--overwrite", "--quiet", "--json"]
                    for s in sets:
                        args += ["--set", s]
                    j, dt = fvexp.run(args, log)
                    copy_run(run, res, a.tag)
                    row = {"run": run, "dataset": ds, "model": model, "partition": part,
                           "setting": "FL+VisualMixer" if vm else "FL",
                           "test_accuracy": j.get("test_accuracy"), "test_accuracy_mixed": j.get("test_accuracy_mixed", ""),
                           "vfe_clients": j.get("vfe_clients", ""), "test_ws_min": j.get("test_ws_min", ""),
                           "test_ws_max": j.get("test_ws_max", ""), "rounds": j.get("rounds"),
                           "seconds": round(dt, 1), "overrides": " ".join(a.set)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    fvexp.save(res, name, rows, {"command": "python3 experiments/table4/table4.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
