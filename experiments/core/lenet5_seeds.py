#!/usr/bin/env python3
"""lenet5_seeds.py: the seed spread of issue 2's acceptance command, fedvim beside PyTorch.

    python3 experiments/core/lenet5_seeds.py [--seeds 12] [--threads 2]   (committed run: --seeds 40; README.md here)

Trains LeNet-5 on MNIST for one epoch (Adam 1e-3, batch 64, inputs normalised with 0.1307 /
0.3081, a fresh random order of the 60,000 training images, the last batch partial) once per seed:
with `fedvim train ... --seed S` for S = 1..N, and with the same recipe in PyTorch (Debian's
python3-torch, CPU) for torch.manual_seed(S - 1). Reports each test accuracy on the 10,000 test
images, the mean, standard deviation and how many seeds reach 98.0%, and writes
results/lenet5_seeds.{csv,json} with the machine and the time. PyTorch's LeNet-5 here is written
to match fedvim's (conv 5x5 6 pad 2, max-pool 2, conv 5x5 16, max-pool 2, fc 120, fc 84, fc 10,
ReLU; PyTorch's default initialisation, which fedvim's also follows)."""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def read_idx(path):
    import numpy as np
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def torch_runs(mnist, seeds, threads):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(threads)

    def images(name):
        x = torch.tensor(read_idx(os.path.join(mnist, name)), dtype=torch.float32).unsqueeze(1) / 255.0
        return (x - 0.1307) / 0.3081

    xtr, xte = images("train-images-idx3-ubyte"), images("t10k-images-idx3-ubyte")
    ytr = torch.tensor(read_idx(os.path.join(mnist, "train-labels-idx1-ubyte")), dtype=torch.long)
    yte = torch.tensor(read_idx(os.path.join(mnist, "t10k-labels-idx1-ubyte")), dtype=torch.long)

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    out = []
    for s in seeds:
        torch.manual_seed(s - 1)
        m = LeNet5()
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        order = torch.randperm(len(xtr))
        t0 = time.time()
        for i in range(0, len(xtr), 64):
            j = order[i:i + 64]
            loss = F.cross_entropy(m(xtr[j]), ytr[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
        dt = time.time() - t0
        m.eval()
        with torch.no_grad():
            acc = (m(xte).argmax(1) == yte).float().mean().item()
        out.append((s, round(acc, 4), round(dt, 2)))
        print("pytorch seed %d: %.4f (%.1f s)" % (s - 1, acc, dt), flush=True)
    return out, torch.__version__


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="fedvim only")
    a = ap.parse_args()
    seeds = list(range(1, a.seeds + 1))
    mnist = os.path.join(os.environ.get("FEDVIM_DATA", os.path.join(fvexp.ROOT, "data")), "mnist")
    rows = []
    for s in seeds:
        j, dt = fvexp.run(["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", 1, "--batch", 64,
                           "--optimizer", "adam", "--lr", "1e-3", "--seed", s, "--threads", a.threads, "--json"])
        rows.append({"framework": "fedvim", "seed": s, "test_accuracy": j["test_accuracy"],
                     "train_seconds": round(j["seconds"], 2)})
        print("fedvim seed %d: %.4f" % (s, j["test_accuracy"]), flush=True)
    version = None
    if not a.no_torch:
        try:
            runs, version = torch_runs(mnist, seeds, a.threads)
        except ImportError:
            print("torch is not importable from %s: PyTorch column skipped (Debian: apt-get install "
                  "python3-torch, run with /usr/bin/python3)" % sys.executable, file=sys.stderr)
            runs = []
        rows += [{"framework": "pytorch", "seed": s - 1, "test_accuracy": acc, "train_seconds": dt}
                 for s, acc, dt in runs]
    summary = {}
    for fw in ("fedvim", "pytorch"):
        acc = [r["test_accuracy"] for r in rows if r["framework"] == fw]
        if len(acc) >= 2:
            summary[fw] = {"n": len(acc), "mean": round(statistics.mean(acc), 5),
                           "stdev": round(statistics.stdev(acc), 5), "min": min(acc), "max": max(acc),
                           "at_least_0.980": sum(v >= 0.98 for v in acc)}
            print("%s: %s" % (fw, summary[fw]))
    if "fedvim" in summary and "pytorch" in summary:
        f, p = summary["fedvim"], summary["pytorch"]
        se = (f["stdev"] ** 2 / f["n"] + p["stdev"] ** 2 / p["n"]) ** 0.5
        summary["welch_t_fedvim_minus_pytorch"] = round((f["mean"] - p["mean"]) / se, 2)
        print("Welch t (fedvim - pytorch): %.2f" % summary["welch_t_fedvim_minus_pytorch"])
    meta = {"command": "python3 experiments/core/lenet5_seeds.py " + " ".join(sys.argv[1:]),
            "torch": version, "summary": summary}
    fvexp.save(os.path.join(HERE, "results"), "lenet5_seeds", rows, meta)


if __name__ == "__main__":
    main()
