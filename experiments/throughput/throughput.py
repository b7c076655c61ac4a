"""Throughput, plain against mixed training (paper Table III): training images per second of
`fedvim train` on plain and on VisualMixer-mixed MNIST (mixing is offline, so the rates should
match), the offline mixing rate (`fedvim mix`'s own images_per_second), and the time of the mixing
against one training epoch. CPU only: this machine has no GPU (the GPU rows remain to run:
`python3 experiments/throughput/throughput.py --tag gpu --device cuda` on a CUDA machine).
Runs alternate plain / mixed, `--reps` times each. The machine is shared (other jobs come and go,
rates of one setting varied 20x between runs), so the best run (least contention) is the figure
to compare; the median and every run are kept too.

    python3 experiments/throughput/throughput.py"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = [("lenet5", 10000), ("resnet20", 500)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="")
    ap.add_argument("--tag", default="cpu")
    a = ap.parse_args()
    log = open("/tmp/fedvim_throughput.log", "a")
    key = fvexp.experiment_key()
    mixed = "/tmp/fedvim_throughput_mixed"
    j, _ = fvexp.run(["mix", "--key", key, "--dataset", "mnist", "--out", mixed, "--limit", 10000, "--test-limit", 1000,
                      "--ws-min", 2, "--ws-max", 8, "--threads", a.threads, "--json"], log)
    mix_rate = j["train"]["images_per_second"]
    rows = []
    for model, n in MODELS:
        rates = {"plain": [], "mixed": []}
        for _ in range(a.reps):
            for setting in ("plain", "mixed"):
                args = ["train", "--model", model, "--dataset", "mnist", "--limit", n, "--test-limit", 500, "--epochs", 1,
                        "--threads", a.threads, "--seed", 1, "--json"]
                if a.device:
                    args += ["--device", a.device]
                if setting == "mixed":
                    args += ["--data-dir", mixed]
                j, _ = fvexp.run(args, log)
                rates[setting].append(j["images_per_second"])
        for setting in ("plain", "mixed"):
            r = max(rates[setting])
            rows.append({"model": model, "setting": setting, "device": a.device or "cpu", "threads": a.threads,
                         "train_images": n, "images_per_second_best": round(r, 1),
                         "images_per_second_median": round(statistics.median(rates[setting]), 1),
                         "all_runs": " ".join("%.1f" % x for x in rates[setting]),
                         "mix_images_per_second": round(mix_rate, 1) if setting == "mixed" else "",
                         "mix_seconds_per_epoch_of_images": round(n / mix_rate, 4) if setting == "mixed" else "",
                         "epoch_seconds": round(n / r, 2)})
            print(rows[-1], flush=True)
    fvexp.save(os.path.join(HERE, "results"), "throughput_" + a.tag, rows,
               {"command": "python3 experiments/throughput/throughput.py " + " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()
