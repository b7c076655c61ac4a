"""The privacy-utility frontier (issue 7, item 0): for each obfuscation and strength, the test
accuracy of LeNet-5 trained centrally on the obfuscated training images, the measured VFE of those
images, and DLG's SSIM against the original images.

    python3 experiments/frontier/frontier.py                 # every point (resumes: done points are kept)
    python3 experiments/frontier/frontier.py --only uniform  # one family
    python3 experiments/frontier/frontier.py --train 60000 --epochs 10 --tag full
    python3 experiments/frontier/frontier.py --only guided --ids guided_ws_max16_ws_min4 \
        --train 60000 --test 10000 --epochs 5 --tag lenet5_60k   # one point (Algorithm 1, WS in [4, 16])

Families: none; uniform (VisualMixer windows of one fixed size, pixel units); guided (Algorithm 1,
WS in [ws_min, ws_max]); block (units of u x u pixels inside fixed windows, as the authors'
scripts shuffle); noise (Gaussian, sigma on [0, 1] pixels); instahide (k = 2, 4; soft labels);
anyws (uniform windows of any integer size, shared/vmix/vmix_alloc.h, keys from the seed).
Test accuracy is on test images obfuscated the same way (VisualMixer: fresh keys per image; noise:
fresh noise), except InstaHide, whose model is tested on clean images as Huang et al. do.
DLG: batch 1, L-BFGS 300 iterations, iDLG labels, on the first test images. VisualMixer points
run `fedvim attack dlg --vmix` (SSIM against the original directly); noise and InstaHide points
attack the obfuscated test images and report SSIM(reconstruction, obfuscated) and
SSIM(obfuscated, original); their product-free reading is in RESULTS.md.
All seeds are fixed (train --seed 1, obfuscation --seed 1, dlg --seed 1); the VisualMixer key is
experiments/frontier/client.key (an experiment key, public on purpose)."""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

POINTS = [("none", {})]
POINTS += [("uniform", {"ws": w}) for w in (2, 4, 8)]
POINTS += [("guided", {"ws_min": a, "ws_max": b}) for a, b in ((2, 8), (4, 8), (2, 16), (4, 16))]
POINTS += [("block", {"ws": w, "unit": u}) for w, u in ((4, 2), (8, 2), (8, 4))]
POINTS += [("noise", {"sigma": s}) for s in (0.1, 0.25, 0.5)]
POINTS += [("instahide", {"k": k}) for k in (2, 4)]
# uniform windows of any integer size (shared/vmix/vmix_alloc.h, `fedvim obfuscate --method shuffle`)
POINTS += [("anyws", {"ws": w}) for w in (2, 3, 4, 5, 6)]


def point_id(fam, p):
    return fam + "".join("_%s%s" % (k, v) for k, v in sorted(p.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated families")
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--train", type=int, default=10000)
    ap.add_argument("--test", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dlg-runs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tag", default="lenet5_cpu")
    ap.add_argument("--seed", type=int, default=1, help="training seed (initialisation and data order)")
    ap.add_argument("--ids", default="", help="comma-separated point ids (default: all)")
    ap.add_argument("--work", default="/tmp/fedvim_frontier")
    a = ap.parse_args()
    only = set(x for x in a.only.split(",") if x)
    res = os.path.join(HERE, "results")
    name = "frontier_" + a.tag
    rows = fvexp.load_rows(res, name)
    done = {r["id"] for r in rows}
    os.makedirs(a.work, exist_ok=True)
    log = open(os.path.join(a.work, "frontier.log"), "a")
    key = fvexp.experiment_key()
    if not os.path.exists(key):
        fvexp.run(["keygen", "--out", key, "--json"], log)
    for fam, p in POINTS:
        pid = point_id(fam, p)
        ids = set(x for x in a.ids.split(",") if x)
        if (only and fam not in only) or (ids and pid not in ids) or pid in done:
            continue
        d = os.path.join(a.work, pid)
        row = {"id": pid, "family": fam, "ws": p.get("ws", ""), "ws_min": p.get("ws_min", ""),
               "ws_max": p.get("ws_max", ""), "unit": p.get("unit", ""), "sigma": p.get("sigma", ""),
               "k": p.get("k", ""), "model": a.model, "train_images": a.train, "epochs": a.epochs,
               "test_images": a.test, "train_seed": a.seed}
        lim = ["--limit", a.train, "--test-limit", a.test]
        data = []
        vm = None
        if fam in ("uniform", "guided", "block"):
            lo = p.get("ws_min", p.get("ws"))
            hi = p.get("ws_max", p.get("ws"))
            vm = ["--ws-min", lo, "--ws-max", hi, "--unit", p.get("unit", 1)]
            fvexp.run(["mix", "--key", key, "--out", d, "--dataset", "mnist", "--threads", a.threads,
                       "--preview", 16, "--json"] + lim + vm, log)
            data = ["--data-dir", d]
        elif fam in ("noise", "instahide", "anyws"):
            ob = ["--method", "shuffle" if fam == "anyws" else fam, "--seed", 1]
            ob += {"noise": ["--sigma", p.get("sigma")], "instahide": ["--k", p.get("k")],
                   "anyws": ["--ws", p.get("ws")]}[fam]
            j, _ = fvexp.run(["obfuscate", "--dataset", "mnist", "--out", d, "--ssim-images", a.dlg_runs,
                              "--json"] + lim + ob, log)
            row["ssim_obf_vs_orig"] = j["ssim_to_original"]["mean"]
            data = ["--data-dir", d]
        if data:
            j, _ = fvexp.run(["vfe", "--dataset", "mnist", "--split", "train", "--limit", 2000, "--quiet",
                              "--json"] + data, log)
        else:
            j, _ = fvexp.run(["vfe", "--dataset", "mnist", "--split", "train", "--limit", 2000, "--quiet",
                              "--json"], log)
        row["vfe_mean"] = j["mean"]
        row["vfe_p5"] = j.get("p5", "")
        tr = ["--model", a.model, "--dataset", "mnist", "--epochs", a.epochs, "--batch", 64, "--optimizer",
              "adam", "--seed", a.seed, "--threads", a.threads, "--json"]
        if fam == "instahide":
            j, dt = fvexp.run(["obfuscate", "train", "--data-dir", d, "--test-limit", a.test] + tr, log)
        else:
            j, dt = fvexp.run(["train"] + tr + data + lim, log)
        row["test_accuracy"] = j["test_accuracy"]
        if "test_accuracy_obfuscated" in j:  # InstaHide: also on mixed test images (largest-coefficient label)
            row["test_accuracy_obfuscated"] = j["test_accuracy_obfuscated"]
        row["train_seconds"] = round(dt, 2)
        dl = ["attack", "dlg", "--runs", a.dlg_runs, "--iters", 300, "--seed", 1, "--threads", 1, "--json"]
        if vm:
            j, _ = fvexp.run(dl + ["--vmix"] + vm, log)
            row["dlg_ssim_orig"] = j["ssim_original"]["mean"]
            row["dlg_ssim_trained"] = j["ssim_mixed"]["mean"] if "ssim_mixed" in j else ""
        elif data:
            j, _ = fvexp.run(dl + data, log)
            row["dlg_ssim_trained"] = j["ssim_original"]["mean"]
            # DLG recovered the obfuscated image (SSIM > 0.99 against it): its SSIM against the
            # original is then that of the obfuscated image itself (blank when DLG failed).
            row["dlg_ssim_orig"] = row["ssim_obf_vs_orig"] if row["dlg_ssim_trained"] > 0.99 else ""
        else:
            j, _ = fvexp.run(dl, log)
            row["dlg_ssim_orig"] = j["ssim_original"]["mean"]
            row["dlg_ssim_trained"] = row["dlg_ssim_orig"]
        rows.append(row)
        print(row, flush=True)
        fvexp.save(res, name, rows, {"command": "python3 experiments/frontier/frontier.py " + " ".join(sys.argv[1:]),
                                     "settings": vars(a)})


if __name__ == "__main__":
    main()
