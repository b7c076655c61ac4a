"""gpu_json.py: how scripts/gpu-check.sh's summaries read what its checks wrote (one rule for all).

fedvim's --json commands print log lines, then one JSON object on the last line that starts with
'{'; a PyTorch reference's .txt holds one JSON object somewhere after its first '{'. A file that is
missing or broken reads as empty (a summary then prints NaN for it instead of stopping).
"""
import json


def last(path):
    """The last line of path that starts with '{', parsed; {} when there is none."""
    try:
        with open(path) as f:
            return json.loads([line for line in f if line.startswith('{')][-1])
    except Exception:
        return {}


def ref(path):
    """A PyTorch reference's output: the JSON object from its first '{' on; {} when there is none."""
    try:
        with open(path) as f:
            txt = f.read()
        return json.loads(txt[txt.index('{'):])
    except Exception:
        return {}


def num(path, key='images_per_second'):
    """The number `key` of path (a .txt read as a reference, anything else by last); NaN when absent."""
    try:
        return float((ref if path.endswith('.txt') else last)(path)[key])
    except Exception:
        return float('nan')
