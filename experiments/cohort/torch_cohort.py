#!/usr/bin/env python3
"""torch_cohort.py: the PyTorch loop a user would write for the cohort benchmark (README.md): FedAvg
over the same cohort as cohort100.ini / cohort1000.ini, one client after another in one process.

  python3 torch_cohort.py --data data/mnist --clients 100 [--rounds 5] [--threads 2] [--device cpu]

Each round: every client starts from the global model, takes one epoch of plain SGD (lr 0.05,
batches of 10, its own shuffled order) over its images, and the global model becomes the
sample-weighted mean of the clients' models (all clients hold the same number of images). Images
are normalised as fedvim does for MNIST ((x / 255 - 0.1307) / 0.3081) and held on the device for
the whole run, as fedvim's device shards are. LeNet-5 is fedvim's architecture rebuilt in PyTorch
(tests/torch_models.py). Rounds are timed without evaluation; the test accuracy of the final model
is measured afterwards. Prints one JSON object per round and a summary line:
{"seconds_per_round": median of rounds 2.., "clients_per_second", "test_accuracy", ...}.
The partition is IID but not fedvim's draw (a different random split), so accuracies agree to
seed noise, not bit for bit.
"""
import argparse, gzip, json, os, platform, statistics, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tests'))
from torch_models import LeNet5  # noqa: E402


def read_idx(path):
    """An IDX file, or its .gz beside it (as scripts/gpu-check.sh carries MNIST)."""
    if not os.path.exists(path) and os.path.exists(path + '.gz'):
        raw = gzip.open(path + '.gz', 'rb').read()
    else:
        raw = open(path, 'rb').read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default='data/mnist')
    ap.add_argument('--clients', type=int, default=100)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--batch', type=int, default=10)
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    xtr = read_idx(os.path.join(a.data, 'train-images-idx3-ubyte'))
    ytr = read_idx(os.path.join(a.data, 'train-labels-idx1-ubyte'))
    xte = read_idx(os.path.join(a.data, 't10k-images-idx3-ubyte'))
    yte = read_idx(os.path.join(a.data, 't10k-labels-idx1-ubyte'))
    norm = lambda x: ((torch.from_numpy(x.astype(np.float32)) / 255 - 0.1307) / 0.3081).unsqueeze(1).to(dev)
    per = len(xtr) // a.clients
    perm = np.random.default_rng(a.seed).permutation(len(xtr))[:per * a.clients]
    X, Y = norm(xtr[perm]), torch.from_numpy(ytr[perm].astype(np.int64)).to(dev)
    model = LeNet5(1, 28, 28).to(dev)
    glob = {k: v.detach().clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(a.seed)
    times = []
    for r in range(a.rounds):
        t0 = time.perf_counter()
        acc = {k: torch.zeros_like(v) for k, v in glob.items()}
        for c in range(a.clients):
            model.load_state_dict(glob)
            opt = torch.optim.SGD(model.parameters(), lr=a.lr)
            xs, ys = X[c * per:(c + 1) * per], Y[c * per:(c + 1) * per]
            order = torch.randperm(per, generator=g).to(dev)
            for b in range(0, per, a.batch):
                i = order[b:b + a.batch]
                loss = F.cross_entropy(model(xs[i]), ys[i])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            for k, v in model.state_dict().items():
                acc[k] += v.detach()
        glob = {k: v / a.clients for k, v in acc.items()}
        if dev.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        print(json.dumps({'round': r + 1, 'seconds': round(times[-1], 4)}), flush=True)
    model.load_state_dict(glob)
    model.eval()
    with torch.no_grad():
        xt = norm(xte)
        pred = torch.cat([model(xt[i:i + 1000]).argmax(1) for i in range(0, len(xt), 1000)]).cpu().numpy()
    spr = statistics.median(times[1:]) if len(times) > 1 else times[0]
    print(json.dumps({'tool': 'pytorch', 'torch': torch.__version__, 'device': a.device, 'threads': a.threads,
                      'clients': a.clients, 'images_per_client': per, 'rounds': a.rounds,
                      'seconds_per_round': round(spr, 4), 'clients_per_second': round(a.clients / spr, 2),
                      'test_accuracy': float((pred == yte).mean()), 'round_seconds': [round(t, 4) for t in times],
                      'host': platform.node()}), flush=True)


if __name__ == '__main__':
    main()
