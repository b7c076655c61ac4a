"""Helpers of the VisualMixer experiment scripts on top of ../fvexp.py (which locates and runs the
fedvim binary and stamps results with the machine and the time): results go to vmix/results/.
No library code: everything measured here is computed by `fedvim`."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import fvexp  # noqa: E402

ROOT = fvexp.ROOT
RESULTS = os.path.join(HERE, "results")


def run(args, log=None):
    """Run fedvim with args; return the JSON object printed last on stdout. Exits on failure."""
    return fvexp.run(args, log)[0]


def save(name, rows, meta):
    """Write results/<name>.csv and results/<name>.json (machine, meta, rows)."""
    fvexp.save(RESULTS, name, rows, meta)


def keyfile(workdir):
    """A fresh client key for the experiment (results are reproducible given the key; the
    measured statistics do not depend on which key)."""
    k = os.path.join(workdir, "client.key")
    if not os.path.exists(k):
        run(["keygen", "--out", k, "--json"])
    return k
