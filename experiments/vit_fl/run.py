#!/usr/bin/env python3
"""The Vision Transformer in a federation (issue 19): plain FL against FL + VisualMixer at its
default bounds on vit_fl.ini, test accuracy every round (a round is one local epoch), and the
rounds each needs to reach 50%, 70%, 80% and 90%. Every figure comes from fedvim's metrics.jsonl.

    python3 experiments/vit_fl/run.py            # plain and vmix (about 15 minutes each on 2 cores)
    python3 experiments/vit_fl/run.py --runs shuffle4   # only these runs (plain, vmix, shuffle4);
                                                        # their rows replace the same runs' in the JSON
    python3 experiments/vit_fl/run.py --collect  # rows from finished (or resumed) runs in /tmp, then the table
    python3 experiments/vit_fl/run.py --table    # the table from the committed JSON
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


def run(collect_only=False, only=DEFAULT_RUNS):
    os.makedirs(WORK, exist_ok=True)
    log = open(os.path.join(WORK, "log.txt"), "a")
    base = open(os.path.join(HERE, "vit_fl.ini")).read()
    want = only.split(",")
    unknown = set(want) - {k for k, _, _ in RUNS}
    if unknown:
        sys.exit("run.py: unknown runs %s (known: %s)" % (sorted(unknown), ", ".join(k for k, _, _ in RUNS)))
    rows = [r for r in fvexp.load_rows(RESULTS, "vit_fl_cpu") if r["run"] not in want]
    for key, label, extra in RUNS:
        if key not in want:
            continue
        ini = os.path.join(WORK, key + ".ini")
        with open(ini, "w") as f:
            f.write(base + "\n" + extra + "\n[output]\ndir = %s\nname = vit_%s\nsave_model = false\n" %
                    (os.path.join(WORK, "results"), key))
        wall = None
        if not collect_only:
            _, wall = fvexp.run(["run", ini, "--quiet", "--overwrite"], log)
        rdir = os.path.join(WORK, "results", "vit_" + key)
        curve = [json.loads(l) for l in open(os.path.join(rdir, "metrics.jsonl"))]
        acc = [m["test_accuracy"] for m in curve]
        accm = [m.get("test_accuracy_mixed") for m in curve]
        rows.append({"run": key, "label": label, "accuracy": acc, "accuracy_mixed": accm,
                     "wall_seconds": round(wall, 1) if wall is not None else None})
        print("%-6s final %.4f (mixed test %s)" % (key, acc[-1], accm[-1]), flush=True)
    fvexp.save(RESULTS, "vit_fl_cpu", rows, {"command": " ".join(["python3 experiments/vit_fl/run.py"] + sys.argv[1:]),
                                            "config": "experiments/vit_fl/vit_fl.ini"})


def first_round(acc, t):
    for i, a in enumerate(acc):
        if a is not None and a >= t:
            return i + 1
    return None


def table():
    rows = fvexp.load_rows(RESULTS, "vit_fl_cpu")
    out = ["| run | test images | " + " | ".join("rounds to %d%%" % (100 * t) for t in TARGETS) +
           " | after 5 | after 10 | after 20 |", "| --- | --- |" + " ---: |" * (len(TARGETS) + 3)]
    for r in rows:
        for name, acc in (("clean", r["accuracy"]), ("mixed", r["accuracy_mixed"])):
            if acc[0] is None:
                continue
            out.append("| %s | %s | %s | %s |" % (
                r["label"], name, " | ".join(str(first_round(acc, t) or "-") for t in TARGETS),
                " | ".join("%.1f" % (100 * acc[i - 1]) if len(acc) >= i else "-" for i in (5, 10, 20))))
    fvexp.save_text(os.path.join(RESULTS, "table.md"), "\n".join(out) + "\n")


if __name__ == "__main__":
    if "--table" not in sys.argv:
        only = sys.argv[sys.argv.index("--runs") + 1] if "--runs" in sys.argv else DEFAULT_RUNS
        run(collect_only="--collect" in sys.argv, only=only)
    table()
