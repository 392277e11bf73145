"""The main job as a new user runs it: the pipeline on the default data, per data seed.

    python -m bench.main_job [--seeds 0 1 2] [--repeats 3] [--train-seeds T ...]
                             [--trainer-config JSON] [--out main_job] [--rows 200000]
                             [--no-docs]

Each run is ``python -m pipeline.local_runner --seed S`` (what ``make run`` runs) in a
fresh work folder (``CTR_WORKDIR``, so nothing is cached and the data is generated anew),
one after the other. The first seed runs ``--repeats`` times, the others once. With
``--train-seeds``, the first seed's repeats are one run per Trainer seed
(``--train-seed``), so their spread is that of the training's randomness rather than
none at all. ``--trainer-config`` (a JSON object of trainer sections) runs every run with
those settings (a variant, for an A/B beside the defaults). Recorded per run:

* the wall time of the whole command (data generation included) and each component's
  seconds, from ML Metadata;
* the candidate's test AUC and logloss, the GBDT baseline's on the same test rows, the
  difference (the GBDT gate's margin), the Trainer's examples per second;
* whether the final gate blessed it and whether the Pusher pushed it.

Summary rows: the margin over the GBDT baseline per seed; over the repeats of the first
seed, the spread of the candidate's test AUC and of the margin (standard deviation and
largest minus smallest), which the margin must exceed, and the largest AUC difference
between two runs of the same seed (reproducibility). The table goes to docs/BENCHMARKS.md
between the ``bench.main_job`` markers, the numbers to ``bench/results/main_job.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.common import machine, write_docs_block, write_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPONENTS = ('ExampleGen', 'StatisticsGen', 'Transform', 'Trainer', 'GbdtTrainer',
              'Evaluator', 'GbdtEvaluator', 'OffPolicyEvaluator', 'ServingInfraValidator')


def runner_args(train_seed=None, trainer_config=None, workdir=''):
  """local_runner's arguments for a Trainer seed and a trainer config (a dict, written to
  ``workdir``/trainer_config.json for ``--trainer-config``)."""
  extra = []
  if train_seed is not None:
    extra += ['--train-seed', str(train_seed)]
  if trainer_config:
    path = os.path.join(workdir, 'trainer_config.json')
    with open(path, 'w') as f:
      json.dump(trainer_config, f)
    extra += ['--trainer-config', path]
  return extra


def run_once(seed: int, rows: int, workdir: str, extra=(), repo: str = REPO):
  """One main-job run in ``workdir`` of the checkout ``repo`` (another commit's, to time
  it beside this one): (report, wall seconds, {component: seconds})."""
  from pipeline import local_runner
  report_path = os.path.join(workdir, 'report.json')
  env = dict(os.environ, CTR_WORKDIR=workdir, TF_USE_LEGACY_KERAS='1',
             TF_CPP_MIN_LOG_LEVEL='2', PYTHONWARNINGS='ignore::FutureWarning')
  cmd = [sys.executable, '-m', 'pipeline.local_runner', '--seed', str(seed), '--rows',
         str(rows), '--report-json', report_path,
         '--experiments-dir', os.path.join(workdir, 'experiments'), *extra]
  start = time.perf_counter()
  proc = subprocess.run(cmd, env=env, cwd=repo, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
  with open(report_path) as f:
    report = json.load(f)
  metadata = os.path.join(workdir, 'tfx', report['pipeline'], 'metadata.db')
  seconds = {}
  for _, name, _, s in local_runner.executions(metadata):
    seconds[name] = seconds.get(name, 0.0) + s
  return report, wall, seconds


def rows_of(seed: int, repeat: int, report, wall, seconds, train_seed=None):
  m, g = report['metrics'], report.get('gbdt') or {}
  wide = report['trainer'].get('wide_fit') or {}
  values = {
      'wall_s': wall, 'auc': m['auc'], 'logloss': m['logloss'],
      'gbdt_auc': (g.get('metrics') or {}).get('auc'),
      'gbdt_logloss': (g.get('metrics') or {}).get('logloss'),
      'auc_margin': g.get('auc_diff'), 'logloss_margin': g.get('logloss_diff'),
      'examples_per_second': report['trainer']['train_examples_per_second'],
      # The wide part's fit inside the Trainer (trainer.wide_fit; backfit by default).
      'wide_fit_s': wide.get('seconds'),
      'wide_fit_kept': None if 'kept' not in wide else float(bool(wide['kept'])),
      'gbdt_trees': (g.get('trainer') or {}).get('trees'),
      'blessed': float(bool(report.get('blessed'))),
      'pushed': float(bool(report.get('pushed'))),
      **{f'seconds_{k}': v for k, v in seconds.items() if k in COMPONENTS}}
  if train_seed is not None:
    values['train_seed'] = train_seed
  return [{'seed': seed, 'run': repeat, 'metric': k, 'value': v,
           'unit': 's' if k.endswith('_s') or k.startswith('seconds_') else ''}
          for k, v in values.items() if v is not None]


def summarize(results, first_seed: int):
  out = []
  by = {}
  for r in results:
    by.setdefault((r['seed'], r['run']), {})[r['metric']] = r['value']
  repeats = [v for (s, _), v in sorted(by.items()) if s == first_seed]
  for metric in ('auc', 'auc_margin', 'wall_s'):
    vals = np.array([v[metric] for v in repeats if metric in v], np.float64)
    if len(vals) > 1:
      out += [{'seed': first_seed, 'run': 'all', 'metric': f'{metric}_std',
               'value': float(vals.std(ddof=1)), 'unit': ''},
              {'seed': first_seed, 'run': 'all', 'metric': f'{metric}_range',
               'value': float(vals.max() - vals.min()), 'unit': ''}]
  return out


def markdown(results, command, date):
  by = {}
  for r in results:
    by.setdefault((r['seed'], r['run']), {})[r['metric']] = r['value']
  lines = [f'Machine: {machine()}. Command: `{command}` ({date}).', '',
           '| data seed | run | wall (min) | AUC | logloss | GBDT AUC | GBDT logloss | '
           'AUC − GBDT | logloss − GBDT | Trainer ex/s | GbdtTrainer s | blessed | pushed |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  f = lambda v, d=4: '' if v is None else f'{v:.{d}f}'  # noqa: E731
  sg = lambda v: '' if v is None else f'{v:+.4f}'  # noqa: E731
  summary = {}
  for (seed, run), v in sorted(by.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
    if run == 'all':
      summary.update({(seed, k): x for k, x in v.items()})
      continue
    run_cell = f'{run} (train seed {v["train_seed"]:.0f})' if 'train_seed' in v else run
    lines.append(
        f'| {seed} | {run_cell} | {v["wall_s"] / 60:.1f} | {f(v.get("auc"))} | '
        f'{f(v.get("logloss"))} | {f(v.get("gbdt_auc"))} | {f(v.get("gbdt_logloss"))} | '
        f'{sg(v.get("auc_margin"))} | {sg(v.get("logloss_margin"))} | '
        f'{v.get("examples_per_second", 0):,.0f} | {f(v.get("seconds_GbdtTrainer"), 0)} | '
        f'{"yes" if v.get("blessed") else "no"} | {"yes" if v.get("pushed") else "no"} |')
  if summary:
    lines += [''] + [f'- {k[1]} (seed {k[0]} repeats): {x:.4f}'
                     for k, x in sorted(summary.items())]
  return '\n'.join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.main_job',
                              description=__doc__.split('\n')[0])
  p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
  p.add_argument('--repeats', type=int, default=3, help='runs of the first seed')
  p.add_argument('--train-seeds', nargs='+', type=int, default=None,
                 help='the first seed\'s repeats: one run per Trainer seed (replaces '
                      '--repeats)')
  p.add_argument('--trainer-config', default='',
                 help='JSON object of trainer sections (model_config, optimizer, ...) for '
                      'every run: a variant of the defaults')
  p.add_argument('--out', default='main_job',
                 help='results file bench/results/<out>.json (docs only for main_job)')
  p.add_argument('--repo', default=REPO,
                 help='run the pipeline of this checkout (e.g. a worktree of an older '
                      'commit; its extra packages through PYTHONPATH)')
  p.add_argument('--rows', type=int, default=200_000)
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  if args.repeats < 1:
    p.error('--repeats must be at least 1')
  try:
    trainer_config = json.loads(args.trainer_config) if args.trainer_config else None
    assert trainer_config is None or isinstance(trainer_config, dict)
  except (ValueError, AssertionError):
    p.error('--trainer-config: a JSON object of trainer sections')
  if not os.path.isfile(os.path.join(args.repo, 'pipeline', 'local_runner.py')):
    p.error(f'--repo {args.repo}: no pipeline/local_runner.py there')
  if not args.out.replace('_', '').isalnum():
    p.error('--out: letters, digits and underscores')
  train_seeds = args.train_seeds or [None] * args.repeats
  results = []
  plan = [(args.seeds[0], i, t) for i, t in enumerate(train_seeds)] + \
      [(s, 0, None) for s in args.seeds[1:]]
  for seed, repeat, train_seed in plan:
    with tempfile.TemporaryDirectory(prefix=f'main_job_{seed}_{repeat}_') as workdir:
      extra = runner_args(train_seed, trainer_config, workdir)
      report, wall, seconds = run_once(seed, args.rows, workdir, extra, args.repo)
    results += rows_of(seed, repeat, report, wall, seconds, train_seed)
    by = {r['metric']: r['value'] for r in results if (r['seed'], r['run']) == (seed, repeat)}
    print(f'seed {seed} run {repeat}: {wall / 60:.1f} min, AUC {by["auc"]:.4f}, GBDT '
          f'{by.get("gbdt_auc", float("nan")):.4f}, blessed {bool(by["blessed"])}',
          flush=True)
    path = write_results(args.out, results + summarize(results, args.seeds[0]))
  with open(path) as f:
    doc = json.load(f)
  print('wrote', path)
  if not args.no_docs and args.out == 'main_job':
    write_docs_block('main_job', markdown(doc['results'], doc['command'], doc['date']),
                     'The main job (`make run`) per data seed')


if __name__ == '__main__':
  main()
