"""Knowledge distillation with VisualMixer (issue 19; the pattern of the paper's Table V, at
Colored-MNIST scale): a ResNet-20 teacher trained on plain or on mixed images, a MobileNet or
LeNet-5 student distilled from it (`fedvim distill`, T 4, alpha 0.9) on plain or mixed images,
all four combinations, beside each student trained alone on the same data. Every student is
tested on the test split of its own domain (plain, or mixed with the same key) and of the other.

Data: the first 12,000 Colored-MNIST training and 5,000 test images; the mixed copy is
`fedvim mix` with a key file kept in results/ (so a rerun mixes identically). Teachers and
students train 2 epochs of Adam (lr 1e-3, batch 64) on 2 threads, seed 1.

    python3 experiments/distill/distill.py                # all runs (about 15 min on 2 busy cores)
    python3 experiments/distill/distill.py --report-only  # the table from the saved rows
Writes results/distill_cpu.{json,csv} (finished runs are kept on a rerun) and README's table.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fvexp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RES = os.path.join(HERE, "results")
COMMON = ["--dataset", "cmnist", "--limit", "12000", "--test-limit", "5000", "--epochs", "2", "--batch", "64",
          "--optimizer", "adam", "--lr", "0.001", "--threads", "2", "--seed", "1", "--json"]


def prepare(work, log):
    key = os.path.join(RES, "experiment.key")
    if not os.path.exists(key):
        fvexp.run(["keygen", "--out", key], log)
    mixed = os.path.join(work, "mixed")
    if not os.path.exists(os.path.join(mixed, "t10k-labels-idx1-ubyte")):
        fvexp.run(["mix", "--dataset", "cmnist", "--limit", "12000", "--test-limit", "5000", "--key", key,
                   "--out", mixed, "--threads", "2", "--preview", "0"], log)
    return {"plain": os.path.join(fvexp.ROOT, "data", "mnist"), "mixed": mixed}  # cmnist colours grey MNIST


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--work", default="/tmp/fedvim_distill")
    a = ap.parse_args()
    rows = fvexp.load_rows(RES, "distill_cpu")
    if not a.report_only:
        os.makedirs(a.work, exist_ok=True)
        os.makedirs(RES, exist_ok=True)
        done = {(r["role"], r["model"], r["teacher_data"], r["student_data"]) for r in rows}
        with open(os.path.join(a.work, "log.txt"), "a") as log:
            dirs = prepare(a.work, log)
            other = {"plain": "mixed", "mixed": "plain"}

            def data_args(dom, flag="--data-dir"):
                return [flag, dirs[dom]]

            def keep(row):
                rows.append(row)
                fvexp.save(RES, "distill_cpu", rows, {"common": " ".join(COMMON)})
            teachers = {}
            for dom in ("plain", "mixed"):
                path = os.path.join(a.work, "teacher_%s.safetensors" % dom)
                teachers[dom] = path
                if ("teacher", "resnet20", dom, "") in done and os.path.exists(path):
                    continue
                j, dt = fvexp.run(["train", "--model", "resnet20", "--save", path] + data_args(dom) + COMMON, log)
                keep({"role": "teacher", "model": "resnet20", "teacher_data": dom, "student_data": "",
                      "test_accuracy": j["test_accuracy"], "seconds": round(dt, 1)})
            for student in ("mobilenet", "lenet5"):
                for sdom in ("plain", "mixed"):
                    if ("alone", student, "", sdom) not in done:
                        j, dt = fvexp.run(["train", "--model", student] + data_args(sdom) + COMMON, log)
                        keep({"role": "alone", "model": student, "teacher_data": "", "student_data": sdom,
                              "test_accuracy": j["test_accuracy"], "seconds": round(dt, 1)})
                    for tdom in ("plain", "mixed"):
                        if ("student", student, tdom, sdom) in done:
                            continue
                        j, dt = fvexp.run(["distill", "--teacher", teachers[tdom], "--student", student,
                                           "--temperature", "4", "--alpha", "0.9"] + data_args(sdom) +
                                          data_args(other[sdom], "--eval-data-dir") + COMMON, log)
                        keep({"role": "student", "model": student, "teacher_data": tdom, "student_data": sdom,
                              "teacher_accuracy_on_student_data": j["teacher_test_accuracy"],
                              "test_accuracy": j["student_test_accuracy"], "agreement": j["agreement"],
                              "other_domain_accuracy": j["eval_student_accuracy"],
                              "teacher_other_domain_accuracy": j["eval_teacher_accuracy"],
                              "seconds": round(dt, 1)})
    print(table(rows))


def table(rows):
    pct = lambda x: "%.1f" % (100 * x)  # noqa: E731
    t = {r["teacher_data"]: r for r in rows if r["role"] == "teacher"}
    alone = {(r["model"], r["student_data"]): r for r in rows if r["role"] == "alone"}
    out = ["| teacher (ResNet-20) trained on | its test accuracy | student | student data | teacher on the "
           "student's test data | student, own domain | agreement with the teacher | student alone, own domain "
           "| student, other domain |", "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if r["role"] != "student":
            continue
        al = alone.get((r["model"], r["student_data"]))
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["teacher_data"], pct(t[r["teacher_data"]]["test_accuracy"]) if r["teacher_data"] in t else "-",
            r["model"], r["student_data"], pct(r["teacher_accuracy_on_student_data"]), pct(r["test_accuracy"]),
            pct(r["agreement"]), pct(al["test_accuracy"]) if al else "-", pct(r["other_domain_accuracy"])))
    return "\n".join(out)


if __name__ == "__main__":
    main()
