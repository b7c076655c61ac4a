#!/usr/bin/env bash
# run.sh [OUT]: Inverting Gradients inside real federated runs ([attack] kind = invert), plain FL
# against FL behind a defence, on MNIST with LeNet-5. Each cell: 50 clients of B images (B = 1 and
# 4), one plain-SGD step of batch B at lr 0.05 per round (the engine replays it exactly), 2 rounds,
# the attack on the round-2 upload of client k for each k in VICTIMS (one run each, so B x victims
# images per cell), iters=4000, restarts=2. Settings (SETTINGS, default "plain vmix vmix09"):
#   plain   no defence
#   dp      central DP-FedAvg ([dp] clip 1, noise_multiplier 1; the server clips and noises after
#           it has seen each upload)
#   vmix    VisualMixer at its defaults (vfe_target 0.5)
#   vmix09  VisualMixer with vfe_target 0.9 (conflict = privacy: windows up to 8 x 8; 0.94 is the
#           largest target a 28 x 28 image can reach)
#   shuf4, shuf8  [obfuscation] kind = shuffle, uniform 4 x 4 / 8 x 8 windows
#   noise   [obfuscation] kind = noise, sigma 0.25
# VICTIMS (default "0 1 2") picks the victim clients, BATCHES (default "1 4") the batch sizes.
# INVERTER=E adds the learned inverter to the VisualMixer settings' chain (E epochs over 4,000
# held-out images, mixed by the attacker at the public settings: README, "The chain with the
# learned inverter"); the reassembly steps of the chain run on every VisualMixer run.
# Needs FEDVIM (default build/fedvim) and the MNIST files (scripts/setup.sh). Writes OUT (default
# results/) with one results folder per run and summary.json (python3 summarize.py OUT); runs
# whose attacks.jsonl exists are kept (a rerun completes a partial OUT).
# The leakage table of the README ("The leakage table, five victims"):
#   SETTINGS="plain dp vmix shuf4 shuf8 noise" VICTIMS="0 1 2 3 4" INVERTER=3 bash run.sh OUT
# Measured: 23 minutes on the busy 2-core box as two run.sh processes side by side (SETTINGS split
# "plain dp vmix" / "shuf4 shuf8 noise" into one OUT); about 10 for the original three settings, 3 victims.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${FEDVIM:-$root/build/fedvim}
out=${1:-$here/results}
mkdir -p "$out/ini"
export FEDVIM_DATA=${FEDVIM_DATA:-$root/data}
for B in ${BATCHES:-1 4}; do
  for setting in ${SETTINGS:-plain vmix vmix09}; do
    for k in ${VICTIMS:-0 1 2}; do
      name=${setting}_b${B}_c${k}
      ini=$out/ini/$name.ini
      {
        printf '[data]\ndataset = mnist\ntrain_size = %d\n' $((50 * B))
        printf '[partition]\nscheme = iid\n[model]\nname = lenet5\n'
        printf '[training]\noptimizer = sgd\nlr = 0.05\nbatch_size = %d\nlocal_epochs = 1\n' "$B"
        printf '[fl]\nclients = 50\nfraction = 1\nrounds = 2\nworkers = 2\nseed = 1\n'
        inv=
        [[ $setting == vmix* && -n ${INVERTER:-} ]] && inv=,inverter_epochs=$INVERTER
        printf '[attack]\nkind = invert\nclient = %d\nrounds = 2\nsettings = iters=4000,restarts=2%s\n' "$k" "$inv"
        case $setting in
          vmix) printf '[visualmixer]\nenabled = true\n' ;;
          vmix09) printf '[visualmixer]\nenabled = true\nvfe_target = 0.9\nconflict = privacy\n' ;;
          shuf4) printf '[obfuscation]\nkind = shuffle\nwindow = 4\n' ;;
          shuf8) printf '[obfuscation]\nkind = shuffle\nwindow = 8\n' ;;
          noise) printf '[obfuscation]\nkind = noise\nsigma = 0.25\n' ;;
          dp) printf '[dp]\nenabled = true\nclip = 1\nnoise_multiplier = 1\n' ;;
          plain) ;;
          *) echo "run.sh: unknown setting $setting" >&2; exit 2 ;;
        esac
        printf '[output]\ndir = %s\nname = %s\n' "$out" "$name"
      } > "$ini"
      [[ -s $out/$name/attacks.jsonl ]] && { echo "== $name: done before"; continue; }
      echo "== $name"
      "$bin" run "$ini" --quiet --overwrite
    done
  done
done
python3 "$here/summarize.py" "$out"
