"""Central training, plain against mixed (paper Table II, the CNN rows), with the Gaussian-noise
(paper Figure 2) and InstaHide (k = 2, 4) baselines beside them: test accuracy and the measured
VFE of the training images, per data set.

    python3 experiments/table2/table2.py                              # CPU-sized: LeNet-5, 10k images, 2 epochs
    python3 experiments/table2/table2.py --datasets mnist --model resnet20 --train 3000 --epochs 1 --tag resnet20_cpu
    python3 experiments/table2/table2.py --train 60000 --epochs 20 --tag full   # full size (not run here)
VisualMixer rows: "vmix" is `fedvim mix` with its defaults (V* 0.5; d* = 0.55 x d_p(whole image),
12 before the default became relative: Algorithm 1 between the
model's WS_min and WS_max), "uniform4" fixed 4 x 4 windows. Test images are obfuscated like the
training images (InstaHide: tested on clean images, as Huang et al.). MNIST's LeNet-5 rows of the
other settings are in ../frontier/results (same settings and seeds).

Beyond the default settings, --settings takes "uniformN" (fixed N x N windows, N a power of two),
"guidedA-B" (Algorithm 1 with WS_min A, WS_max B: `fedvim mix --ws-min A --ws-max B`) and "anywsN"
(uniform windows of any integer size N: `fedvim obfuscate --method shuffle --ws N --seed 1`), as
../frontier's uniform, guided and anyws points. --batch, --lr, --schedule and --warmup-epochs pass
to `fedvim train` (the ViT rows use them); with more than one epoch a row also keeps the test
accuracy after every epoch (epoch_test_accuracy, ";"-separated), for epochs-to-target figures; the costs of issue 15's attack table
(../attacks/adaptive) were added to the lenet5_60k results with
    python3 experiments/table2/table2.py --settings uniform2,anyws3,uniform8,guided4-16 \
        --train 60000 --test 10000 --epochs 5 --tag lenet5_60k"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = ["plain", "vmix", "uniform4", "noise0.1", "noise0.25", "instahide2", "instahide4"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="fashion,cmnist")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--tag", default="lenet5_cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None, help="default: the optimizer's (Adam 1e-3)")
    ap.add_argument("--schedule", default="constant", help="constant or cosine")
    ap.add_argument("--warmup-epochs", type=float, default=0)
    ap.add_argument("--work", default="/tmp/fedvim_table2")
    a = ap.parse_args()
    res = os.path.join(HERE, "results")
    name = "table2_" + a.tag
    rows = fvexp.load_rows(res, name)
    done = {(r["dataset"], r["setting"]) for r in rows}
    log = open(os.path.join("/tmp", "fedvim_table2.log"), "a")
    key = fvexp.experiment_key()
    lim = ["--limit", a.train, "--test-limit", a.test]
    for ds in a.datasets.split(","):
        for st in a.settings.split(","):
            if (ds, st) in done:
                continue
            d = os.path.join(a.work, ds + "_" + st)
            data = ["--data-dir", d]
            row = {"dataset": ds, "setting": st, "model": a.model, "train_images": a.train, "epochs": a.epochs}
            if st == "plain":
                data = []
            elif st == "vmix" or st.startswith("uniform") or st.startswith("guided"):
                extra = []
                if st.startswith("uniform"):
                    extra = ["--ws-min", st[7:], "--ws-max", st[7:]]
                elif st.startswith("guided"):
                    lo, hi = st[6:].split("-")
                    extra = ["--ws-min", lo, "--ws-max", hi]
                j, _ = fvexp.run(["mix", "--key", key, "--out", d, "--dataset", ds, "--json", "--threads", 2] + lim
                                 + extra, log)
                row["ws_min"] = j.get("ws_min", j.get("bounds", {}).get("ws_min", ""))
                row["ws_max"] = j.get("ws_max", j.get("bounds", {}).get("ws_max", ""))
            elif st.startswith("anyws"):
                fvexp.run(["obfuscate", "--method", "shuffle", "--ws", st[5:], "--seed", 1, "--dataset", ds, "--out", d,
                           "--json"] + lim, log)
            elif st.startswith("noise"):
                fvexp.run(["obfuscate", "--method", "noise", "--sigma", st[5:], "--dataset", ds, "--out", d, "--json"]
                          + lim, log)
            else:
                fvexp.run(["obfuscate", "--method", "instahide", "--k", st[9:], "--dataset", ds, "--out", d, "--json"]
                          + lim, log)
            j, _ = fvexp.run(["vfe", "--dataset", ds, "--split", "train", "--limit", 2000, "--quiet", "--json"] + data,
                             log)
            row["vfe_mean"] = j["mean"]
            tr = ["--model", a.model, "--dataset", ds, "--epochs", a.epochs, "--batch", a.batch, "--optimizer", "adam",
                  "--seed", 1, "--threads", 2, "--json"]
            if a.lr is not None:
                tr += ["--lr", a.lr]
            if a.schedule != "constant" or a.warmup_epochs:
                tr += ["--schedule", a.schedule, "--warmup-epochs", a.warmup_epochs]
                row.update(batch=a.batch, lr=a.lr, schedule=a.schedule, warmup_epochs=a.warmup_epochs)
            if st.startswith("instahide"):
                j, dt = fvexp.run(["obfuscate", "train", "--test-limit", a.test] + data + tr, log)
            else:
                j, dt = fvexp.run(["train"] + tr + data + lim, log)
            row["test_accuracy"] = j["test_accuracy"]
            if "epoch_test_accuracy" in j and a.epochs > 1:
                row["epoch_test_accuracy"] = ";".join("%.4f" % v for v in j["epoch_test_accuracy"])
            row["seconds"] = round(dt, 1)
            rows.append(row)
            print(row, flush=True)
            fvexp.save(res, name, rows, {"command": "python3 experiments/table2/table2.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
