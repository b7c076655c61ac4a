"""Shared helpers for the VisualMixer experiment scripts: locate and run the fedvim binary, parse
the JSON object it prints last on stdout, and stamp results with the machine and the time.
No library code: everything measured here is computed by `fedvim`."""
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")


def fedvim_bin():
    b = os.environ.get("FEDVIM_BIN")
    if b:
        return b
    for d in ("build", "build-vmix"):
        p = os.path.join(ROOT, d, "fedvim")
        if os.path.exists(p):
            return p
    sys.exit("fedvim binary not found: build it (scripts/setup.sh) or set FEDVIM_BIN")


def run(args, log=None):
    """Run fedvim with args; return the JSON object printed last on stdout. Exits on failure."""
    cmd = [fedvim_bin()] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if log is not None:
        log.write("$ " + " ".join(cmd) + "\n" + p.stderr)
        log.flush()
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
    last = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    return json.loads(last)


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
    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"host_cores": os.cpu_count(), "cpu": cpu, "system": platform.platform(), "commit": commit,
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def save(name, rows, meta):
    """Write results/<name>.csv (rows: list of dicts) and results/<name>.json (meta + rows)."""
    os.makedirs(RESULTS, exist_ok=True)
    keys = list(rows[0].keys())
    with open(os.path.join(RESULTS, name + ".csv"), "w") as f:
        f.write("# " + json.dumps(machine()) + "\n")
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join(str(r[k]) for k in keys) + "\n")
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump({"machine": machine(), "meta": meta, "rows": rows}, f, indent=1)
        f.write("\n")


def keyfile(workdir):
    """A fresh client key for the experiment (results are reproducible given the key; the
    measured statistics do not depend on which key)."""
    k = os.path.join(workdir, "client.key")
    if not os.path.exists(k):
        run(["keygen", "--out", k, "--json"])
    return k
