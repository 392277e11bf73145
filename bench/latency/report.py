"""bench.latency's results: the rows of bench/results/latency.json and the markdown tables
of docs/BENCHMARKS.md and docs/ARCHITECTURE.md."""
from __future__ import annotations

import numpy as np

from bench.latency.model import PARTS, SHOWN, TERMS


def markdown(models, coef, checks, load, command, machine):
  lines = [f'Command: `{command}`. Machine: {machine}. Client and server share the machine\'s '
           'cores; latencies are medians of sequential requests (one in flight).', '',
           'Fitted parts (ms):', '', '| part | coefficients |', '|---|---|']
  for part in PARTS + ('network',):
    lines.append(f'| {part} | ' + ', '.join(f'{name} = {v:.3g}' for name, v in
                                           zip(TERMS[part], coef[part])) + ' |')
  lines += ['', 'Measured (ms, medians; the fit\'s input):', '',
            '| model | features | dense parameters | batch | request bytes | decode | graph '
            '| encode | end to end |', '|---|---|---|---|---|---|---|---|---|']
  for name, m in models.items():
    for b, p in m['parts'].items():
      lines.append(f'| {name} | {m["features"]} | {m["dense_parameters"]:,} | {b} | '
                   f'{p["request_bytes"]:,} | {p["decode"]:.3f} | {p["graph"]:.2f} | '
                   f'{p["encode"]:.3f} | {m["e2e"][b]:.2f} |')
  lines += ['', 'Predicted against measured (gRPC Predict, end to end, ms). The breakdown and '
            '"predicted" are the fit on all four models; "held out" predicts each model from '
            'the fit on the other three alone:', '',
            '| model | batch | decode | graph run | transform | model | encode | network '
            '| predicted | error | held out | error | measured |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for c in checks:
    p = c['predicted']
    lines.append(f'| {c["model"]} | {c["batch"]} | ' + ' | '.join(
        f'{p[k]:.2f}' for k in SHOWN) +
        f' | {p["total"]:.2f} | {c["error"]:+.0%} | {c["held_out"]:.2f} | '
        f'{c["held_out_error"]:+.0%} | {c["measured"]:.2f} |')
  errs = np.abs([c['error'] for c in checks])
  held = np.abs([c['held_out_error'] for c in checks])
  lines += ['', f'Mean absolute error {errs.mean():.0%} (largest {errs.max():.0%}) for the fit, '
            f'{held.mean():.0%} (largest {held.max():.0%}) held out, over {len(checks)} cells.',
            '',
            'Load against the 100 ms p99 target (open-loop Poisson, DNN):', '',
            '| batch | capacity mu (req/s) | predicted break (req/s) | offered req/s '
            '| achieved req/s | p50 ms | p99 ms (median) | p99 of the 3 rounds | predicted p99 ms '
            '| failed requests |', '|---|---|---|---|---|---|---|---|---|---|']
  for b, l in load.items():
    for r in l['rates']:
      lines.append(f'| {b} | {l["mu"]:.0f} | {l["break_predicted"]:.0f} | {r["offered"]:.0f} '
                   f'| {r["achieved_per_s"]:.0f} | {r["p50_ms"]:.1f} | {r["p99_ms"]:.1f} | '
                   + ', '.join(f'{v:.0f}' for v in r.get('p99_runs_ms', [])) + ' | '
                   + (f'{r["predicted_p99_ms"]:.1f}' if np.isfinite(r['predicted_p99_ms'])
                      else 'unstable') + f' | {r.get("failed", 0)} |')
    lines.append(f'| {b} | | measured break: '
                 + (f'{l["break_measured"]:.0f} req/s' if l['break_measured'] else
                    'not reached') + ' | | | | | | | |')
  return '\n'.join(lines)


def result_rows(models, coef, checks, load):
  """The rows of bench/results/latency.json."""
  rows = []
  for part, values in coef.items():
    rows += [{'dataset': 'default_generated', 'model': 'latency_model',
              'metric': f'{part}: {name}', 'value': v, 'unit': 'ms'}
             for name, v in zip(TERMS[part], values)]
  for name, m in models.items():
    for b, p in m['parts'].items():
      rows += [{'dataset': 'default_generated', 'model': name, 'batch': b,
                'metric': f'{part}_ms', 'value': round(p[part], 4), 'unit': 'ms'}
               for part in PARTS]
      rows += [{'dataset': 'default_generated', 'model': name, 'batch': b, 'metric': k,
                'value': p[k], 'unit': 'bytes'} for k in ('request_bytes', 'response_bytes')]
    rows += [{'dataset': 'default_generated', 'model': name, 'metric': 'dense_parameters',
              'value': m['dense_parameters'], 'unit': 'parameters'},
             {'dataset': 'default_generated', 'model': name, 'metric': 'features',
              'value': m['features'], 'unit': 'features'}]
  for c in checks:
    for metric, value in (('predicted_ms', c['predicted']['total']),
                          ('measured_ms', c['measured']), ('error', c['error']),
                          ('held_out_predicted_ms', c['held_out']),
                          ('held_out_error', c['held_out_error'])):
      rows.append({'dataset': 'default_generated', 'model': c['model'], 'batch': c['batch'],
                   'metric': metric, 'value': round(float(value), 4),
                   'unit': 'ratio' if metric.endswith('error') else 'ms'})
  for b, l in load.items():
    rows += [{'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'saturated_requests_per_s', 'value': l['mu'], 'unit': 'requests/s'},
             {'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'break_100ms_predicted', 'value': l['break_predicted'],
              'unit': 'requests/s'},
             {'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'break_100ms_measured', 'value': l['break_measured'],
              'unit': 'requests/s'}]
    for r in l['rates']:
      rows += [{'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
                'metric': f'{k}_at_offered_rate', 'offered_per_s': round(r['offered'], 1),
                'value': r[k], 'unit': 'requests/s' if k == 'achieved_per_s' else 'ms'}
               for k in ('p50_ms', 'p99_ms', 'predicted_p99_ms', 'achieved_per_s')]
  return rows
