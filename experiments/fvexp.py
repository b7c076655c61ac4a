"""Helpers shared by the experiment scripts of experiments/frontier, table2, table4, stadam and
throughput: run the fedvim binary, parse the JSON object it prints last on stdout, stamp results
with the machine, the commit and the time. No library code: every figure is computed by fedvim."""
import datetime
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def fedvim_bin():
    b = os.environ.get("FEDVIM_BIN")
    if b:
        return os.path.abspath(b)
    p = os.path.join(ROOT, "build", "fedvim")
    if os.path.exists(p):
        return p
    sys.exit("fedvim binary not found: build it (scripts/setup.sh) or set FEDVIM_BIN")


def experiment_key():
    """The experiments' fixed VisualMixer key (experiments/frontier/client.key, public on purpose so
    that results reproduce) as a private copy that fedvim accepts: fedvim refuses a key file that
    others may read, and a git checkout leaves it mode 644. Returns the copy's path."""
    src = os.path.join(ROOT, "experiments", "frontier", "client.key")
    dst = os.path.join("/tmp", "fedvim_experiment_%d.key" % os.getuid())
    fd = os.open(dst + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(open(src, "rb").read())
    os.chmod(dst + ".tmp", 0o600)
    os.replace(dst + ".tmp", dst)
    return dst


def run(args, log=None):
    """Run fedvim (cwd: the repository root, where data/ lives) with args; return (the JSON
    object printed last on stdout, wall seconds). Exits on failure with the command and stderr."""
    cmd = [fedvim_bin()] + [str(a) for a in args]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    dt = time.time() - t0
    if log is not None:
        log.write("$ %s\n# %.2f s, rc %d\n%s" % (" ".join(cmd), dt, p.returncode, p.stderr[-2000:]))
        log.flush()
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
    objs = [l for l in p.stdout.splitlines() if l.startswith("{")]
    return (json.loads(objs[-1]) if objs else {}), dt


def machine():
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    # a frozen binary (FEDVIM_BIN, copied aside so that long runs survive rebuilds) carries the
    # commit it was built from in a COMMIT file beside it: that, not the checkout, made the figures
    frozen = os.environ.get("FEDVIM_BIN")
    cf = os.path.join(os.path.dirname(os.path.abspath(frozen)), "COMMIT") if frozen else None
    if cf and os.path.exists(cf):
        commit = open(cf).read().strip()[:7]
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1
    return {"host_cores": os.cpu_count(), "cpu": cpu, "system": platform.platform(), "commit": commit,
            "load_avg_1min_at_save": round(load, 2),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def save(results_dir, name, rows, meta):
    """Write <results_dir>/<name>.csv (rows: list of dicts, union of keys) and <name>.json."""
    os.makedirs(results_dir, exist_ok=True)
    keys = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    m = machine()
    with open(os.path.join(results_dir, name + ".csv"), "w") as f:
        f.write("# " + json.dumps(m) + "\n")
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r.get(k, "")) for k in keys) + "\n")
    with open(os.path.join(results_dir, name + ".json"), "w") as f:
        json.dump({"machine": m, "meta": meta, "rows": rows}, f, indent=1)
        f.write("\n")


def load_rows(results_dir, name):
    p = os.path.join(results_dir, name + ".json")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return json.load(f)["rows"]


def save_text(path, text):
    """Write text to path (creating its folder) and print it: a results table in Markdown."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(text)
