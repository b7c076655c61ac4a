#!/usr/bin/env python3
"""The Vision Transformer in a federation (issue 19): plain FL against FL + VisualMixer at its
default bounds on vit_fl.ini, test accuracy every round (a round is one local epoch), and the
rounds each needs to reach 50%, 70%, 80% and 90%. Every figure comes from fedvim's metrics.jsonl.

    python3 experiments/vit_fl/run.py            # plain and vmix (about 15 minutes each on 2 cores)
    python3 experiments/vit_fl/run.py --runs shuffle4   # only these runs (plain, vmix, shuffle4);
                                                        # their rows replace the same runs' in the JSON
    python3 experiments/vit_fl/run.py --collect  # rows from finished (or resumed) runs in /tmp, then the table
    python3 experiments/vit_fl/run.py --table    # the table from the committed JSON
    python3 experiments/vit_fl/run.py --dataset fashion --rounds 10 --runs plain,vmix,shuffle4
        # another data set (mnist, fashion, cmnist) and length: rows in vit_fl_cpu_<dataset>.json,
        # table in table_<dataset>.md (MNIST keeps the names vit_fl_cpu.json and table.md)
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import fvexp  # noqa: E402

RESULTS = os.path.join(HERE, "results")
WORK = os.path.join("/tmp", "fedvim_vit_fl_%d" % os.getuid())
RUNS = [("plain", "FL", ""), ("vmix", "FL + VisualMixer (default bounds)", "[visualmixer]\nenabled = true\n"),
        ("shuffle4", "FL + uniform 4 x 4 shuffling", "[obfuscation]\nkind = shuffle\nwindow = 4\n")]
DEFAULT_RUNS = "plain,vmix"
TARGETS = [0.5, 0.7, 0.8, 0.9]


def names(dataset):
    """(rows name, table file, run-name prefix) of a data set; MNIST keeps the first run's names."""
    if dataset == "mnist":
        return "vit_fl_cpu", "table.md", "vit_"
    return "vit_fl_cpu_" + dataset, "table_%s.md" % dataset, "vit_%s_" % dataset


def config(dataset, rounds):
    """vit_fl.ini with [data] dataset and [fl] rounds replaced (the ini sets each once)."""
    base = open(os.path.join(HERE, "vit_fl.ini")).read()
    out = []
    for line in base.split("\n"):
        if line.startswith("dataset = "):
            line = "dataset = " + dataset
        elif line.startswith("rounds = ") and rounds:
            line = "rounds = %d" % rounds
        out.append(line)
    return "\n".join(out)


def run(collect_only=False, only=DEFAULT_RUNS, dataset="mnist", rounds=None):
    os.makedirs(WORK, exist_ok=True)
    log = open(os.path.join(WORK, "log.txt"), "a")
    base = config(dataset, rounds)
    rname, _, prefix = names(dataset)
    want = only.split(",")
    unknown = set(want) - {k for k, _, _ in RUNS}
    if unknown:
        sys.exit("run.py: unknown runs %s (known: %s)" % (sorted(unknown), ", ".join(k for k, _, _ in RUNS)))
    rows = [r for r in fvexp.load_rows(RESULTS, rname) if r["run"] not in want]
    for key, label, extra in RUNS:
        if key not in want:
            continue
        ini = os.path.join(WORK, prefix + key + ".ini")
        with open(ini, "w") as f:
            f.write(base + "\n" + extra + "\n[output]\ndir = %s\nname = %s%s\nsave_model = false\n" %
                    (os.path.join(WORK, "results"), prefix, key))
        wall = None
        if not collect_only:
            _, wall = fvexp.run(["run", ini, "--quiet", "--overwrite"], log)
        rdir = os.path.join(WORK, "results", prefix + key)
        curve = [json.loads(l) for l in open(os.path.join(rdir, "metrics.jsonl"))]
        acc = [m["test_accuracy"] for m in curve]
        accm = [m.get("test_accuracy_mixed") for m in curve]
        rows.append({"run": key, "label": label, "accuracy": acc, "accuracy_mixed": accm,
                     "wall_seconds": round(wall, 1) if wall is not None else None})
        print("%-6s final %.4f (mixed test %s)" % (key, acc[-1], accm[-1]), flush=True)
    fvexp.save(RESULTS, rname, rows, {"command": " ".join(["python3 experiments/vit_fl/run.py"] + sys.argv[1:]),
                                      "config": "experiments/vit_fl/vit_fl.ini", "dataset": dataset,
                                      "rounds": rounds or 20})


def first_round(acc, t):
    for i, a in enumerate(acc):
        if a is not None and a >= t:
            return i + 1
    return None


def table(dataset="mnist"):
    rname, tname, _ = names(dataset)
    rows = fvexp.load_rows(RESULTS, rname)
    out = ["| run | test images | " + " | ".join("rounds to %d%%" % (100 * t) for t in TARGETS) +
           " | after 5 | after 10 | after 20 |", "| --- | --- |" + " ---: |" * (len(TARGETS) + 3)]
    for r in rows:
        for name, acc in (("clean", r["accuracy"]), ("mixed", r["accuracy_mixed"])):
            if acc[0] is None:
                continue
            out.append("| %s | %s | %s | %s |" % (
                r["label"], name, " | ".join(str(first_round(acc, t) or "-") for t in TARGETS),
                " | ".join("%.1f" % (100 * acc[i - 1]) if len(acc) >= i else "-" for i in (5, 10, 20))))
    fvexp.save_text(os.path.join(RESULTS, tname), "\n".join(out) + "\n")


def flag(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


if __name__ == "__main__":
    dataset = flag("--dataset", "mnist")
    if dataset not in ("mnist", "fashion", "cmnist"):
        sys.exit("run.py: --dataset %s: not one of mnist, fashion, cmnist" % dataset)
    rounds = int(flag("--rounds", "0")) or None
    if "--table" not in sys.argv:
        run(collect_only="--collect" in sys.argv, only=flag("--runs", DEFAULT_RUNS), dataset=dataset, rounds=rounds)
    table(dataset)
