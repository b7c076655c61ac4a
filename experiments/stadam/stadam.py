"""ST-Adam against Adam and SGD on mixed data (paper Figure 6): FL + VisualMixer runs of
../table4/table4.ini (MNIST, IID, LeNet-5, CPU-sized) that differ only in the clients' optimizer;
accuracy (clean and mixed test images) and training loss per round, from each run's metrics.jsonl.

    python3 experiments/stadam/stadam.py                        # CPU-sized, 10 rounds
    python3 experiments/stadam/stadam.py --tag full --set data.train_size=0 --set fl.rounds=50
Learning rates: SGD 0.01 with momentum 0.9; Adam and ST-Adam 1e-3 (the spec's default); Adam
also at 3e-3 (without bias correction ST-Adam's first steps are (1 - beta1) / sqrt(1 - beta2) = 3.16
times Adam's, and the optimizer state is reset every round, so this control asks whether ST-Adam's
gain is only a larger early step);
ST-Adam with mu = 0 (Adam minus bias correction) and with mu = 0.9 (at lr 1e-3, and at 1e-4: the
update momentum multiplies the step by up to 1 / (1 - mu) = 10)."""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OPTS = [("sgd", ["training.optimizer=sgd", "training.lr=0.01", "training.momentum=0.9"]),
        ("adam", ["training.optimizer=adam", "training.lr=0.001"]),
        ("adam_lr3e-3", ["training.optimizer=adam", "training.lr=0.003"]),
        ("stadam", ["training.optimizer=stadam", "training.lr=0.001", "training.stadam_mu=0"]),
        ("stadam_mu0.9", ["training.optimizer=stadam", "training.lr=0.001", "training.stadam_mu=0.9"]),
        ("stadam_mu0.9_lr1e-4", ["training.optimizer=stadam", "training.lr=0.0001", "training.stadam_mu=0.9"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--tag", default="cpu")
    a = ap.parse_args()
    res = os.path.join(HERE, "results")
    name = "stadam_" + a.tag
    rows = fvexp.load_rows(res, name)
    done = {r["optimizer"] for r in rows}
    log = open("/tmp/fedvim_stadam.log", "a")
    for opt, sets in OPTS:
        if opt in done:
            continue
        run = "stadam_%s_%s" % (a.tag, opt)
        sets = sets + ["visualmixer.enabled=true", "fl.rounds=%d" % a.rounds, "output.name=" + run] + a.set
        args = ["run", os.path.join(HERE, "..", "table4", "table4.ini"), "--overwrite", "--quiet", "--json"]
        for s in sets:
            args += ["--set", s]
        j, dt = fvexp.run(args, log)
        src = os.path.join("/tmp/fedvim_table4", run)
        dst = os.path.join(res, run)
        os.makedirs(dst, exist_ok=True)
        for f in ("metrics.jsonl", "summary.json", "config.resolved.ini"):
            shutil.copy(os.path.join(src, f), os.path.join(dst, f))
        with open(os.path.join(src, "metrics.jsonl")) as f:
            for line in f:
                m = json.loads(line)
                rows.append({"optimizer": opt, "round": m["round"], "test_accuracy": m.get("test_accuracy"),
                             "test_accuracy_mixed": m.get("test_accuracy_mixed"), "train_loss": m.get("train_loss"),
                             "test_loss_mixed": m.get("test_loss_mixed"), "run_seconds": round(dt, 1)})
        print(opt, j.get("test_accuracy"), j.get("test_accuracy_mixed"), flush=True)
        fvexp.save(res, name, rows, {"command": "python3 experiments/stadam/stadam.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
