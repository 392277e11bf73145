"""A report per pipeline run: ``experiments/<model>_<YYYYmmdd_HHMMSS>/``.

* ``metrics.json``: every overall metric of every output, the per-slice metrics of the
  primary output, the gates (pass or fail and why), the trainer's summary, and the
  baselines (the GBDT baseline's test metrics beside the candidate's, from the
  ``GbdtEvaluator``);
* ``reliability.png``: the reliability diagram (mean label against mean prediction in 20
  equal-width bins, from TFMA's calibration plot), one line per output, with the share of
  examples per bin beneath;
* ``report.html``: one static page with all of it, readable without Jupyter.

Written by ``python -m pipeline.local_runner`` after each run (``--experiments-dir``).
"""

from __future__ import annotations

import datetime
import html
import json
import os
from typing import Dict, List, Optional

import numpy as np

from pipeline import evaluation
from serving import signatures as sig

SLICE_COLUMNS = ('example_count', 'auc', 'gauc', 'logloss', 'calibration', 'ece_10_width')


def _slice_name(key) -> str:
  return 'overall' if not key else ', '.join(f'{k} = {v}' for k, v in key)


def slice_metrics(result) -> List[Dict[str, object]]:
  """One row per slice of the primary output of ``result`` (``tfma.load_eval_result``)."""
  rows = []
  for key, metrics in result.slicing_metrics:
    values = {}
    for output, by_sub in metrics.items():
      if output not in ('', evaluation.PRIMARY_OUTPUT):
        continue
      for _, named in by_sub.items():
        values.update({n: float(v['doubleValue']) for n, v in named.items()
                       if 'doubleValue' in v})
    rows.append({'slice': _slice_name(key), **values})
  rows.sort(key=lambda r: (r['slice'] != 'overall', r['slice']))
  return rows


def reliability(evaluation_uri: str, bins: int = 20) -> Dict[str, Dict[str, list]]:
  """Per output: mean prediction, mean label and example count in ``bins`` equal-width
  bins of the prediction, merged from TFMA's calibration-plot buckets (overall slice)."""
  import tensorflow_model_analysis as tfma
  out = {}
  for plots in tfma.load_plots(evaluation_uri):
    if tfma.slicer.deserialize_slice_key(plots.slice_key) != ():
      continue
    for kv in plots.plot_keys_and_values:
      if not kv.value.HasField('calibration_histogram_buckets'):
        continue
      n, label, pred = np.zeros(bins), np.zeros(bins), np.zeros(bins)
      for b in kv.value.calibration_histogram_buckets.buckets:
        w = b.num_weighted_examples.value
        if not w:
          continue
        i = min(max(int(b.total_weighted_refined_prediction.value / w * bins), 0), bins - 1)
        n[i] += w
        label[i] += b.total_weighted_label.value
        pred[i] += b.total_weighted_refined_prediction.value
      ok = n > 0
      out[kv.key.output_name or evaluation.PRIMARY_OUTPUT] = {
          'mean_prediction': (pred[ok] / n[ok]).tolist(),
          'mean_label': (label[ok] / n[ok]).tolist(), 'count': n[ok].tolist()}
  return out


def _failure_text(failure, against: str = 'the blessed model') -> str:
  """Why TFMA refused: the measured value (or change) and the bound it crossed."""
  value = failure.metric_value.double_value.value
  name = failure.metric_key.name
  t = failure.metric_threshold
  if t.HasField('change_threshold'):
    c = t.change_threshold
    return (f'{name} changed by {value:+.4f} against {against}; allowed '
            f'{"at least" if c.direction == 2 else "at most"} {c.absolute.value:+.4f}')
  v = t.value_threshold
  bounds = []
  if v.HasField('lower_bound'):
    bounds.append(f'>= {v.lower_bound.value:g}')
  if v.HasField('upper_bound'):
    bounds.append(f'<= {v.upper_bound.value:g}')
  return f'{name} = {value:.4f}, needs {" and ".join(bounds)}'


def gate_results(evaluation_uri: str, gates: evaluation.Gates, metrics: Dict[str, float],
                 result) -> Dict[str, object]:
  """Each gate with its condition, the measured value and pass/fail, from TFMA's
  validation result. Without a blessed model to compare with (no baseline in the
  evaluation's config), the change gates are not applied."""
  import tensorflow_model_analysis as tfma
  has_baseline = any(s.is_baseline for s in result.config.model_specs)
  validation = tfma.load_validation_result(evaluation_uri)
  failures = [(f.metric_key.name, f.metric_key.is_diff, _failure_text(f))
              for s in validation.metric_validations_per_slice for f in s.failures]

  def failed(name, diff):
    return [m for n, d, m in failures if n == name and d == diff]

  rows = []
  for name, metric, diff, condition in (
      ('AUC lower bound', 'auc', False, f'AUC >= {gates.min_auc}'),
      ('calibration', 'calibration', False,
       f'|calibration - 1| <= {gates.max_calibration_gap}'),
      ('ECE', evaluation.ECE_GATE_METRIC, False,
       f'ECE (10 equal-width bins) <= {gates.max_ece}'),
      ('no AUC regression', 'auc', True,
       f'AUC >= blessed model\'s - {gates.max_auc_drop}'),
      ('no logloss regression', 'logloss', True,
       f'logloss <= blessed model\'s + {gates.max_logloss_rise}'),
  ):
    why = failed(metric, diff)
    applied = has_baseline or not diff
    # A change gate's value is the difference to the blessed model, which TFMA reports
    # only where it fails (its reason says it).
    rows.append({'gate': name, 'condition': condition, 'metric': metric,
                 'value': None if diff else metrics.get(metric), 'applied': applied,
                 'passed': (not why) if applied else None,
                 'why': '; '.join(why) if why else (
                     'no blessed model to compare with yet' if not applied else 'within bound')})
  return {'blessed': bool(validation.validation_ok),
          'rubber_stamp': bool(validation.rubber_stamp),
          'gates': rows}


def gbdt_results(gbdt_evaluation_uri: str, gates: evaluation.Gates):
  """The GBDT gates (rows as :func:`gate_results`'), their verdict, and the baselines
  table: the candidate and the GBDT baseline on the same test rows."""
  candidate = evaluation.overall_metrics(gbdt_evaluation_uri, model_name=evaluation.CANDIDATE)
  gbdt = evaluation.overall_metrics(gbdt_evaluation_uri, model_name=evaluation.GBDT_BASELINE)
  verdict = evaluation.gbdt_verdict(candidate, gates)
  columns = ('auc', 'logloss', 'auc_pr', 'brier', 'calibration', 'ece_10_width')
  baselines = [{'model': 'candidate', **{k: candidate.get(k) for k in columns},
                'source': 'GbdtEvaluator (same test rows)'},
               {'model': 'GBDT (LightGBM, tuned)', **{k: gbdt.get(k) for k in columns},
                'source': 'GbdtEvaluator (same test rows)'}]
  return verdict['gates'], verdict['blessed'], baselines


def _plot(curves: Dict[str, Dict[str, list]], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 7), sharex=True,
                                    gridspec_kw={'height_ratios': [3, 1]})
  hi = max([max(c['mean_prediction'] + c['mean_label']) for c in curves.values()] + [0.05])
  hi = min(1.0, hi * 1.1)
  top.plot([0, hi], [0, hi], color='grey', linestyle='--', linewidth=1, label='perfect')
  for name, c in curves.items():
    top.plot(c['mean_prediction'], c['mean_label'], marker='o', markersize=3, label=name)
    total = sum(c['count'])
    bottom.plot(c['mean_prediction'], [x / total for x in c['count']], marker='.', label=name)
  top.set_xlim(0, hi)
  top.set_ylim(0, hi)
  top.set_ylabel('observed rate (mean label)')
  top.set_title('Reliability diagram (test split, 20 equal-width bins)')
  top.legend(fontsize=8)
  bottom.set_xlabel('mean predicted probability')
  bottom.set_ylabel('share of examples')
  bottom.set_yscale('log')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def _fmt(v) -> str:
  if v is None:
    return ''
  if isinstance(v, float):
    return f'{v:,.0f}' if abs(v) >= 1000 else f'{v:.4f}'
  return html.escape(str(v))


def _table(rows: List[Dict[str, object]], columns) -> str:
  head = ''.join(f'<th>{html.escape(c)}</th>' for c in columns)
  body = ''.join('<tr>' + ''.join(f'<td>{_fmt(r.get(c))}</td>' for c in columns) + '</tr>'
                 for r in rows)
  return f'<table><tr>{head}</tr>{body}</table>'


def _html(model: str, stamp: str, content: Dict[str, object]) -> str:
  gates = content['gates']
  verdict = 'BLESSED' if content.get('verdict', gates['blessed']) else 'NOT BLESSED'
  gate_rows = [{**g, 'result': ('pass' if g['passed'] else 'FAIL') if g['applied'] else
                'not applied'} for g in gates['gates']]
  outputs = sorted({k.split('/')[0] for k in content['metrics'] if '/' in k})
  primary = evaluation.PRIMARY_OUTPUT
  if content.get('primary_task'):   # a multi-task model: probability is this task's output
    primary += f' ({content["primary_task"]})'
  overall = [{'output': primary,
              **{k: v for k, v in content['metrics'].items() if '/' not in k}}]
  overall += [{'output': o, **{k.split('/', 1)[1]: v for k, v in content['metrics'].items()
                               if k.startswith(o + '/')}} for o in outputs]
  cols = ['output', 'example_count', 'auc', 'gauc', 'auc_pr', 'logloss', 'brier',
          'calibration', 'ece_10_width', 'ece_20_width', 'ece_10_mass', 'ece_20_mass']
  baselines = content.get('baselines') or []
  base_html = (_table(baselines, ['model', 'auc', 'logloss', 'auc_pr', 'brier',
                                  'calibration', 'ece_10_width', 'source'])
               if baselines else '<p>No baseline results were given for this run.</p>')
  cvr = sig.probability('cvr')
  cvr_note = (f'<p>CVR (<code>{cvr}</code>) is measured on clicked rows only.</p>'
              if cvr in outputs else '')
  style = ('body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:'
           'collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:'
           'right}th{background:#f3f3f3}td:first-child{text-align:left}')
  return f'''<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(model)} {stamp}</title><style>{style}</style></head><body>
<h1>{html.escape(model)}: run {stamp}</h1>
<p>Pipeline <b>{html.escape(str(content.get('pipeline', '')))}</b>. Verdict of the
gates: <b>{verdict}</b>. Test split.</p>
<h2>Gates</h2>{_table(gate_rows, ['gate', 'condition', 'value', 'result', 'why'])}
<h2>Metrics per output</h2>{_table(overall, cols)}
{cvr_note}
<h2>Reliability</h2><img src="reliability.png" alt="reliability diagram">
<h2>Slices (primary output)</h2>{_table(content['slices'], ('slice',) + SLICE_COLUMNS)}
<h2>Baselines</h2>{base_html}
{_ope_html(content.get('ope'))}
</body></html>
'''


def ope_gate_row(ope: Dict[str, object]) -> Dict[str, object]:
  """The OffPolicyEvaluator's verdict as a gate row (applied only with a min_lift)."""
  c, lift = ope['config'], ope['lift']
  return {'gate': 'off-policy lift', 'applied': bool(c['gate']),
          'condition': f'lower {100 * (1 - c["alpha"]):g}% bound of the {c["estimator"]} '
                       f'lift > {c["min_lift"]:g}',
          'metric': 'ope_lift_ci_low', 'value': lift['ci_low'],
          'passed': bool(ope['blessed']), 'why': ope['why']}


def _ope_html(ope: Optional[Dict[str, object]]) -> str:
  if not ope:
    return ''
  c = ope['config']
  rows = [{'quantity': f'value of the candidate\'s {c["policy"]} policy',
           **{k: ope['value'][k] for k in ('value', 'se', 'ci_low', 'ci_high')}},
          {'quantity': 'lift over the logging policy',
           **{k: ope['lift'][k] for k in ('value', 'se', 'ci_low', 'ci_high')}}]
  return (f'<h2>Off-policy evaluation</h2><p>{ope["rows"]} logged rows of the '
          f'{html.escape(str(ope.get("split", "test")))} split, {ope["n_actions"]} actions, '
          f'logged mean reward {ope["logged_mean_reward"]:.5f}; estimator '
          f'{html.escape(c["estimator"])}, {c["bootstrap"]} bootstrap resamples. '
          f'{html.escape(ope["why"])}.</p>'
          + _table(rows, ['quantity', 'value', 'se', 'ci_low', 'ci_high']))


def write(evaluation_uri: str, model: str, gates: evaluation.Gates,
          out_root: str = 'experiments', extra: Optional[Dict[str, object]] = None,
          baselines: Optional[List[Dict[str, object]]] = None,
          now: Optional[datetime.datetime] = None,
          gbdt_evaluation_uri: Optional[str] = None) -> str:
  """Writes the run's folder and returns its path. With ``gbdt_evaluation_uri`` (the
  GbdtEvaluator's output) the GBDT gates join the gates, the verdict needs them too, and
  the baselines table compares the candidate with the GBDT baseline; ``baselines`` adds
  rows to that table."""
  stamp = (now or datetime.datetime.now()).strftime('%Y%m%d_%H%M%S')
  folder = os.path.join(out_root, f'{model}_{stamp}')
  os.makedirs(folder, exist_ok=False)
  import tensorflow_model_analysis as tfma
  result = tfma.load_eval_result(evaluation_uri)     # read once for all that follows
  metrics = evaluation.overall_metrics(evaluation_uri, result)
  content = {'model': model, 'created': stamp, **(extra or {}), 'metrics': metrics,
             'gates': gate_results(evaluation_uri, gates, metrics, result),
             'slices': slice_metrics(result),
             'reliability': reliability(evaluation_uri),
             'baselines': list(baselines or [])}
  content['verdict'] = content['gates']['blessed']
  if content.get('ope'):
    content['gates']['gates'].append(ope_gate_row(content['ope']))
    content['verdict'] = content['verdict'] and content['ope']['blessed']
  if gbdt_evaluation_uri:
    rows, ok, table = gbdt_results(gbdt_evaluation_uri, gates)
    content['gates']['gates'] += rows
    content['verdict'] = content['verdict'] and ok
    content['baselines'] = table + content['baselines']
  with open(os.path.join(folder, 'metrics.json'), 'w') as f:
    json.dump(content, f, indent=2, default=str)
  _plot(content['reliability'], os.path.join(folder, 'reliability.png'))
  with open(os.path.join(folder, 'report.html'), 'w', encoding='utf-8') as f:
    f.write(_html(model, stamp, content))
  return folder
