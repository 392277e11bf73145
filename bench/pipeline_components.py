"""Times each pipeline component on generated data of several sizes.

    python -m bench.pipeline_components [--rows 100000 1000000] [--train-steps 2000]

For each size: generates the default dataset (timed as ``datagen``), runs the whole local
pipeline once with caching off, and reads each component's wall time from ML Metadata
(execution create -> last update). Writes bench/results/pipeline_components.json and
prints a Markdown table with seconds and rows per second, plus the ratio between the
largest and the smallest size (1.0 per 10x would be linear scaling).
"""
import argparse
import os
import shutil
import tempfile
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from bench.common import write_results


def component_seconds(metadata_path):
  from pipeline.local_runner import executions
  return {name: seconds for _, name, _, seconds in executions(metadata_path)}


def run_size(rows, train_steps, workdir):
  from datagen import synthetic
  from pipeline import configs, local_runner
  t = time.time()
  synthetic.write(synthetic.generate(rows, seed=0), os.path.join(workdir, 'data'), ('csv',))
  gen_s = time.time() - t
  config = configs.PipelineConfig(
      data_root=os.path.join(workdir, 'data', 'csv'), pipeline_root=os.path.join(workdir, 'tfx'),
      serving_model_dir=os.path.join(workdir, 'serving'), train_steps=train_steps,
      eval_steps=200, enable_cache=False,
      # Timed end to end: no gate may stop the Pusher.
      min_auc=0.0, max_calibration_gap=1.0, max_ece=1.0)
  t = time.time()
  report = local_runner.run(config)
  total = time.time() - t
  secs = {'datagen': gen_s, **component_seconds(config.metadata), 'pipeline_total': total}
  return secs, report


def main():
  p = argparse.ArgumentParser(prog='python -m bench.pipeline_components',
                              description='Wall time of each pipeline component.')
  p.add_argument('--rows', type=int, nargs='+', default=[100_000, 1_000_000])
  p.add_argument('--train-steps', type=int, default=2000)
  a = p.parse_args()
  results, table = [], {}
  for rows in a.rows:
    workdir = tempfile.mkdtemp(prefix=f'bench_{rows}_')
    try:
      secs, report = run_size(rows, a.train_steps, workdir)
    finally:
      shutil.rmtree(workdir, ignore_errors=True)
    table[rows] = secs
    for comp, s in secs.items():
      results.append({'dataset': f'default_{rows}', 'component': comp, 'metric': 'wall_time',
                      'value': round(s, 2), 'unit': 's'})
    for k in ('auc', 'logloss', 'ece_10_width'):
      if k in report.get('metrics', {}):
        results.append({'dataset': f'default_{rows}', 'component': 'Evaluator', 'metric': k,
                        'value': round(report['metrics'][k], 4), 'unit': ''})
    write_results('pipeline_components', results)  # keep partial results
  sizes = sorted(table)
  comps = [c for c in table[sizes[0]] if 'resolver' not in c.lower()]
  print('| component | ' + ' | '.join(f'{r:,} rows (s)' for r in sizes)
        + (f' | ratio {sizes[-1] // sizes[0]}x rows' if len(sizes) > 1 else '') + ' |')
  print('|---|' + '---|' * (len(sizes) + (len(sizes) > 1)))
  for c in comps:
    cells = [f'{table[r].get(c, float("nan")):.1f}' for r in sizes]
    ratio = (f' | {table[sizes[-1]][c] / max(table[sizes[0]][c], 1e-9):.2f}'
             if len(sizes) > 1 else '')
    print(f'| {c} | ' + ' | '.join(cells) + ratio + ' |')
  print(write_results('pipeline_components', results))


if __name__ == '__main__':
  main()
