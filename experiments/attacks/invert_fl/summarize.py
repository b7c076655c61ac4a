#!/usr/bin/env python3
"""summarize.py OUT: the table of run.sh's runs (OUT/<setting>_b<B>_c<k>/attacks.jsonl) as
Markdown on stdout and OUT/summary.json: per setting and batch, the median PSNR / SSIM of the
reconstructions against the originals and (VisualMixer, [obfuscation]) against the mixed /
obfuscated images the client trained on, the quartiles of the SSIM against the originals, the inferred labels' accuracy, and seconds per attack; and, for the runs whose result
holds the chain (VisualMixer with the key file: invert, then reassemble), a second table: per
step, the median SSIM / PSNR against the originals and against the mixed images."""
import glob, json, os, statistics, sys

out = sys.argv[1]
STEPS = ['recovered', 'reassembled_estimated_map', 'reassembled_true_map', 'mixed_reassembled_true_map']
# with INVERTER set in run.sh: the learned inverter on the reconstructions and on the mixed images
INVERTER_STEPS = ['inverter', 'mixed_inverter']
cells = {}
for path in sorted(glob.glob(os.path.join(out, '*_b*_c*', 'attacks.jsonl'))):
    name = os.path.basename(os.path.dirname(path))
    setting, b, _ = name.rsplit('_', 2)
    for line in open(path):
        d = json.loads(line)
        if d.get('status') != 'ok':
            continue
        r = d['result']
        c = cells.setdefault((setting, int(b[1:])), {'psnr': [], 'ssim': [], 'psnr_mixed': [], 'ssim_mixed': [],
                                                     'labels': [], 'seconds': [], 'base': [], 'chain': {},
                                                     'agree': [], 'chain_s': []})
        c['psnr'] += [float('inf') if isinstance(v, str) else v for v in r['psnr_original']]
        c['ssim'] += r['ssim_original']
        c['psnr_mixed'] += r.get('psnr_mixed', [])
        c['ssim_mixed'] += r.get('ssim_mixed', [])
        if 'ssim_mixed_to_original_median' in r:
            c['base'].append(r['ssim_mixed_to_original_median'])
        ch = r.get('chain')
        if ch:
            c['agree'] += [ch['map_agreement_median']]
            c['chain_s'] += [ch['seconds']]
            for step in STEPS + [s for s in INVERTER_STEPS if s in ch]:
                t = c['chain'].setdefault(step, {'ssim_original': [], 'ssim_mixed': [], 'psnr_original': [],
                                                 'psnr_mixed': []})
                t['ssim_original'] += ch[step]['ssim_original']
                t['ssim_mixed'] += ch[step]['ssim_mixed']
                t['psnr_original'].append(ch[step]['psnr_original_median'])  # per run: medians only
                t['psnr_mixed'].append(ch[step]['psnr_mixed_median'])
        c['labels'].append(r['label_accuracy'])
        c['seconds'].append(r['seconds'])
med = lambda v: statistics.median(v) if v else None
quart = lambda v: statistics.quantiles(v, n=4, method='inclusive') if len(v) >= 2 else [None, None, None]
ORDER = ['plain', 'dp', 'vmix', 'vmix09', 'shuf4', 'shuf8', 'noise']  # the table's rows, in this order
rank = lambda s: ORDER.index(s) if s in ORDER else len(ORDER)
rows, summary = [], []
for (setting, b), c in sorted(cells.items(), key=lambda kv: (kv[0][1], rank(kv[0][0]), kv[0][0])):
    s = {'setting': setting, 'batch': b, 'images': len(c['ssim']), 'psnr_median': med(c['psnr']),
         'ssim_median': med(c['ssim']), 'ssim_q1': quart(c['ssim'])[0], 'ssim_q3': quart(c['ssim'])[2],
         'victims': len(c['seconds']), 'psnr_mixed_median': med(c['psnr_mixed']),
         'ssim_mixed_median': med(c['ssim_mixed']), 'ssim_mixed_to_original': med(c['base']),
         'label_accuracy': statistics.mean(c['labels']),
         'seconds_median': med(c['seconds'])}
    if c['chain']:
        s['chain'] = {step: {k: med(v) for k, v in t.items()} for step, t in c['chain'].items()}
        s['chain']['map_agreement_median'] = med(c['agree'])
        s['chain']['seconds_median'] = med(c['chain_s'])
    summary.append(s)
    f = lambda v, p='%.2f': '' if v is None else p % v
    rows.append(f"| {setting} | {b} | {s['victims']} | {s['images']} | {f(s['psnr_median'], '%.1f')} | {f(s['ssim_median'])} | "
                f"{f(s['ssim_q1'])}-{f(s['ssim_q3'])} | "
                f"{f(s['psnr_mixed_median'], '%.1f')} | {f(s['ssim_mixed_median'])} | {f(s['ssim_mixed_to_original'])} | "
                f"{f(s['label_accuracy'])} | "
                f"{f(s['seconds_median'], '%.0f')} |")
json.dump(summary, open(os.path.join(out, 'summary.json'), 'w'), indent=1)
print('| setting | batch | victims | images | median PSNR vs original (dB) | median SSIM vs original | '
      'SSIM vs original, quartiles | median PSNR vs trained | median SSIM vs trained | '
      'trained image vs original (SSIM, no attack) | labels right | s per attack |')
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
print('\n'.join(rows))
chained = [s for s in summary if 'chain' in s]
if chained:
    print('\nThe chain (SSIM / PSNR: medians over the images; PSNR the median of the runs\' medians):\n')
    print('| setting | batch | step | SSIM vs original | SSIM vs mixed | PSNR vs original (dB) | PSNR vs mixed (dB) |')
    print('| --- | ---: | --- | ---: | ---: | ---: | ---: |')
    for s in chained:
        for step in [x for x in STEPS + INVERTER_STEPS if x in s['chain']]:
            t = s['chain'][step]
            print(f"| {s['setting']} | {s['batch']} | {step} | {t['ssim_original']:.2f} | {t['ssim_mixed']:.2f} | "
                  f"{t['psnr_original']:.1f} | {t['psnr_mixed']:.1f} |")
    print('\nWindow-map agreement (estimated vs true, median fraction of pixels): ' +
          ', '.join(f"{s['setting']} b{s['batch']} {s['chain']['map_agreement_median']:.2f}" for s in chained))
