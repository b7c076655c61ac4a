#!/usr/bin/env python3
# table.py RESULTS.json...: the Markdown table of compare.py's results files (one row per case).
import json, sys
print('| model | weights | BN statistics | batch | fedvim PSNR dB / SSIM | PyTorch PSNR dB / SSIM | fedvim s / attack | PyTorch s / attack | PyTorch / fedvim time |')
print('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for path in sys.argv[1:]:
    for name, r in json.load(open(path))['cases'].items():
        model, tr, bn, b = name.split('/')
        f, p = r['fedvim'], r['pytorch']
        print(f"| {model} | {tr} | {bn[3:]} | {b[1:]} | {f['psnr_median']:.1f} / {f['ssim_median']:.3f} | "
              f"{p['psnr_median']:.1f} / {p['ssim_median']:.3f} | {f['seconds_per_attack']:.1f} | "
              f"{p['seconds_per_attack']:.1f} | {p['seconds_per_attack'] / f['seconds_per_attack']:.2f}x |")
