#!/usr/bin/env python3
"""summarize.py OUT: the table of run.sh's runs (OUT/<setting>_b<B>_c<k>/attacks.jsonl) as
Markdown on stdout and OUT/summary.json: per setting and batch, the median PSNR / SSIM of the
reconstructions against the originals and (VisualMixer) against the mixed images the client
trained on, the inferred labels' accuracy, and seconds per attack."""
import glob, json, os, statistics, sys

out = sys.argv[1]
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
                                                     'labels': [], 'seconds': [], 'base': []})
        c['psnr'] += [float('inf') if isinstance(v, str) else v for v in r['psnr_original']]
        c['ssim'] += r['ssim_original']
        c['psnr_mixed'] += r.get('psnr_mixed', [])
        c['ssim_mixed'] += r.get('ssim_mixed', [])
        if 'ssim_mixed_to_original_median' in r:
            c['base'].append(r['ssim_mixed_to_original_median'])
        c['labels'].append(r['label_accuracy'])
        c['seconds'].append(r['seconds'])
med = lambda v: statistics.median(v) if v else None
rows, summary = [], []
for (setting, b), c in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    s = {'setting': setting, 'batch': b, 'images': len(c['ssim']), 'psnr_median': med(c['psnr']),
         'ssim_median': med(c['ssim']), 'psnr_mixed_median': med(c['psnr_mixed']),
         'ssim_mixed_median': med(c['ssim_mixed']), 'ssim_mixed_to_original': med(c['base']),
         'label_accuracy': statistics.mean(c['labels']),
         'seconds_median': med(c['seconds'])}
    summary.append(s)
    f = lambda v, p='%.2f': '' if v is None else p % v
    rows.append(f"| {setting} | {b} | {s['images']} | {f(s['psnr_median'], '%.1f')} | {f(s['ssim_median'])} | "
                f"{f(s['psnr_mixed_median'], '%.1f')} | {f(s['ssim_mixed_median'])} | {f(s['ssim_mixed_to_original'])} | "
                f"{f(s['label_accuracy'])} | "
                f"{f(s['seconds_median'], '%.0f')} |")
json.dump(summary, open(os.path.join(out, 'summary.json'), 'w'), indent=1)
print('| setting | batch | images | median PSNR vs original (dB) | median SSIM vs original | median PSNR vs mixed | '
      'median SSIM vs mixed | mixed image vs original (SSIM, no attack) | labels right | s per attack |')
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
print('\n'.join(rows))
