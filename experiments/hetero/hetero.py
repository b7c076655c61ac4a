#!/usr/bin/env python3
"""Heterogeneous clients on fedvim's virtual clock (docs/heterogeneity.md): test accuracy against
virtual wall-clock time for synchronous FedAvg without a deadline, synchronous FedAvg with a
deadline (stragglers dropped) and FedBuff (asynchronous, buffered), for two log-normal speed
distributions (sigma 0.5 and 1.5). Every figure comes from fedvim's metrics.jsonl; this script only
writes configs, runs `fedvim trace` and `fedvim run`, collects and plots.

    python3 experiments/hetero/hetero.py            # run everything, then plot
    python3 experiments/hetero/hetero.py --plot-only
"""
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import fvexp  # noqa: E402

RESULTS = os.path.join(HERE, "results")
WORK = os.path.join("/tmp", "fedvim_hetero_%d" % os.getuid())
SIGMAS = [0.5, 1.5]
# the trace: median 20 images per virtual second (a 200-image shard in 10 s, plus comm_seconds 1),
# available 2/3 of the time in periods of mean 300 s on, 150 s off
TRACE = ["--clients", "100", "--speed", "lognormal", "--median", "20", "--mean-on", "300", "--mean-off", "150",
         "--horizon", "200000", "--seed", "7"]
DEADLINE = 22  # virtual seconds: twice the median task (11 s)
RUNS = [
    ("sync", "synchronous FedAvg, no deadline", "fraction = 0.1\nrounds = 50\n"),
    ("sync_deadline", "synchronous FedAvg, deadline %d s" % DEADLINE,
     "fraction = 0.1\nrounds = 50\ndeadline = %d\n" % DEADLINE),
    ("fedbuff", "FedBuff (K 5, concurrency 10, 1/sqrt(1+s))",
     "mode = async\nrounds = 100\nbuffer_size = 5\nconcurrency = 10\nstaleness = sqrt\nserver_lr = 1\n"),
]


def run_all():
    os.makedirs(WORK, exist_ok=True)
    rows = []
    t_all = time.time()
    log = open(os.path.join(WORK, "log.txt"), "w")
    base = open(os.path.join(HERE, "hetero.ini")).read()
    for sigma in SIGMAS:
        trace = os.path.join(WORK, "trace_sigma%g.csv" % sigma)
        fvexp.run(["trace"] + TRACE + ["--sigma", sigma, "--out", trace], log)
        for key, label, fl in RUNS:
            name = "%s_sigma%g" % (key, sigma)
            ini = os.path.join(WORK, name + ".ini")
            with open(ini, "w") as f:
                f.write(base.replace("[fl]\n", "[fl]\ntrace = %s\n%s" % (trace, fl)))
                f.write("\n[output]\ndir = %s\nname = %s\nsave_model = false\n" % (os.path.join(WORK, "results"), name))
            _, wall = fvexp.run(["run", ini, "--quiet", "--overwrite"], log)
            rdir = os.path.join(WORK, "results", name)
            curve = [json.loads(l) for l in open(os.path.join(rdir, "metrics.jsonl"))]
            summ = json.load(open(os.path.join(rdir, "summary.json")))
            pts = [{"round": m["round"], "virtual_time": m["virtual_time"], "test_accuracy": m["test_accuracy"],
                    "dropped": m["dropped"], "clients": m["clients"],
                    "staleness_mean": m.get("staleness_mean")} for m in curve]
            rows.append({"run": key, "label": label, "sigma": sigma, "wall_seconds": round(wall, 1),
                         "final_accuracy": summ["test_accuracy"], "virtual_time_end": pts[-1]["virtual_time"],
                         "dropped": summ["dropped"], "params_hash": summ["params_hash"], "curve": pts})
            print("%-22s %6.1f s wall, final acc %.4f at virtual %.0f s, dropped %d" %
                  (name, wall, summ["test_accuracy"], pts[-1]["virtual_time"], summ["dropped"]), flush=True)
    meta = {"command": "python3 experiments/hetero/hetero.py", "trace_flags": " ".join(TRACE),
            "deadline": DEADLINE, "wall_seconds_total": round(time.time() - t_all, 1)}
    fvexp.save(RESULTS, "hetero_cpu", [dict((k, v) for k, v in r.items() if k != "curve") for r in rows], meta)
    with open(os.path.join(RESULTS, "hetero_curves.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=0)
        f.write("\n")


def time_to(curve, acc):
    for p in curve:
        if p["test_accuracy"] is not None and p["test_accuracy"] >= acc:
            return p["virtual_time"]
    return None


def plot():
    data = json.load(open(os.path.join(RESULTS, "hetero_curves.json")))
    rows = data["rows"]
    dats = []
    for r in rows:
        p = os.path.join(WORK, "%s_sigma%g.dat" % (r["run"], r["sigma"]))
        os.makedirs(WORK, exist_ok=True)
        with open(p, "w") as f:
            for pt in r["curve"]:
                if pt["test_accuracy"] is not None:
                    f.write("%.6f %.6f\n" % (pt["virtual_time"], 100 * pt["test_accuracy"]))
        dats.append((r, p))
    # the x range: where the fastest method ends, so the curves compare at equal virtual time
    gp = ["set terminal pngcairo size 1200,480 font ',10'" if has_cairo() else "set terminal png size 1200,480",
          "set output '%s'" % os.path.join(RESULTS, "accuracy_vs_virtual_time.png"),
          "set multiplot layout 1,2", "set grid", "set key bottom right", "set yrange [0:100]",
          "set xlabel 'virtual time (s)'", "set ylabel 'test accuracy (%)'"]
    for sigma in SIGMAS:
        mine = [(r, p) for r, p in dats if r["sigma"] == sigma]
        xmax = max(r["virtual_time_end"] for r, _ in mine if r["run"] != "sync")
        gp.append("set title 'speeds log-normal, sigma %g'" % sigma)
        gp.append("set xrange [0:%g]" % xmax)
        gp.append("plot " + ", ".join("'%s' using 1:2 with linespoints pt 7 ps 0.4 title '%s'" % (p, r["label"])
                                      for r, p in mine))
    gp.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True, check=True)
    lines = ["| sigma | method | final acc. (%) | virtual time at end (s) | time to 90% (s) | time to 95% (s) | "
             "dropped | wall (s) |", "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        t90, t95 = time_to(r["curve"], 0.90), time_to(r["curve"], 0.95)
        lines.append("| %g | %s | %.1f | %.0f | %s | %s | %d | %.0f |" % (
            r["sigma"], r["label"], 100 * r["final_accuracy"], r["virtual_time_end"],
            "%.0f" % t90 if t90 is not None else "-", "%.0f" % t95 if t95 is not None else "-", r["dropped"],
            r["wall_seconds"]))
    with open(os.path.join(RESULTS, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def has_cairo():
    p = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True)
    return "pngcairo" in (p.stdout + p.stderr)


if __name__ == "__main__":
    if "--plot-only" not in sys.argv:
        run_all()
    plot()
