"""The main job as a new user runs it: the pipeline on the default data, per data seed.

    python -m bench.main_job [--seeds 0 1 2] [--repeats 3] [--train-seeds T ...]
                             [--trainer-config JSON] [--out main_job] [--rows 200000]
                             [--no-docs]
    python -m bench.main_job --against DIR [--against-path SITE] [--rounds 2] [--seeds 0]

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

With ``--against DIR`` (another checkout, e.g. a worktree of an older commit, its extra
packages on ``--against-path``), the wall-time A/B instead: ``--rounds`` rounds of one run
of ``DIR`` and one of this checkout on the first seed, the order alternating (ABBA), so
that the machine's speed drifting within the day weighs on both sides alike. Recorded per
round: this checkout's wall time over the other's (and per component); summary: the mean
ratio and its smallest and largest round.
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


def run_once(seed: int, rows: int, workdir: str, extra=(), repo: str = REPO,
             pythonpath: str = ''):
  """One main-job run in ``workdir`` of the checkout ``repo`` (another commit's, to time
  it beside this one; ``pythonpath`` for packages only it needs): (report, wall seconds,
  {component: seconds})."""
  from pipeline import local_runner
  report_path = os.path.join(workdir, 'report.json')
  env = dict(os.environ, CTR_WORKDIR=workdir, TF_USE_LEGACY_KERAS='1',
             TF_CPP_MIN_LOG_LEVEL='2', PYTHONWARNINGS='ignore::FutureWarning')
  if pythonpath:
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [pythonpath, env.get('PYTHONPATH')]))
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


def _grouped(results, *keys):
  """The result rows as ``{(row[k] for k in keys): {metric: value}}``."""
  by = {}
  for r in results:
    by.setdefault(tuple(r[k] for k in keys), {})[r['metric']] = r['value']
  return by


def summarize(results, first_seed: int):
  out = []
  by = _grouped(results, 'seed', 'run')
  repeats = [v for (s, _), v in sorted(by.items()) if s == first_seed]
  for metric in ('auc', 'auc_margin', 'wall_s'):
    vals = np.array([v[metric] for v in repeats if metric in v], np.float64)
    if len(vals) > 1:
      out += [{'seed': first_seed, 'run': 'all', 'metric': f'{metric}_std',
               'value': float(vals.std(ddof=1)), 'unit': ''},
              {'seed': first_seed, 'run': 'all', 'metric': f'{metric}_range',
               'value': float(vals.max() - vals.min()), 'unit': ''}]
  return out


def ab_plan(rounds: int):
  """The order of an A/B's runs: ``[(round, side), ...]``, ABBA-alternating so that a
  drift of the machine's speed within the day weighs on both sides alike."""
  order = []
  for r in range(rounds):
    order += [(r, 'against'), (r, 'this')] if r % 2 == 0 else [(r, 'this'), (r, 'against')]
  return order


def ab_summary(results):
  """Per round, this checkout's seconds over the other's (wall and per component); over
  rounds, the mean ratio and its smallest and largest."""
  by = _grouped(results, 'run', 'side')
  rounds = sorted({run for run, _ in by})
  out, ratios = [], {}
  for run in rounds:
    this, other = by.get((run, 'this')), by.get((run, 'against'))
    if not this or not other:
      continue
    for k in ['wall_s'] + [f'seconds_{c}' for c in COMPONENTS]:
      if this.get(k) and other.get(k):
        ratio = this[k] / other[k]
        ratios.setdefault(k, []).append(ratio)
        out.append({'seed': None, 'run': run, 'side': 'ratio', 'metric': f'{k}_ratio',
                    'value': ratio, 'unit': ''})
  for k, vals in ratios.items():
    for stat, v in (('mean', np.mean(vals)), ('min', min(vals)), ('max', max(vals))):
      out.append({'seed': None, 'run': 'all', 'side': 'ratio',
                  'metric': f'{k}_ratio_{stat}', 'value': float(v), 'unit': ''})
  return out


def ab_markdown(results, command, date):
  """The A/B's table: per round and side, the wall time and the slowest components."""
  by = _grouped(results, 'run', 'side')
  cols = ('Transform', 'Trainer', 'GbdtTrainer', 'Evaluator')
  lines = [f'Machine: {machine()}. Command: `{command}` ({date}).', '',
           '| round | checkout | wall (min) | ' + ' | '.join(f'{c} s' for c in cols) +
           ' | AUC | blessed |', '|---|---|---|' + '---|' * len(cols) + '---|---|']
  for (run, side), v in sorted(by.items(), key=lambda kv: str(kv[0])):
    if side == 'ratio' or run == 'all':
      continue
    cells = ' | '.join(f'{v.get(f"seconds_{c}", 0):.0f}' for c in cols)
    lines.append(f'| {run} | {side} | {v["wall_s"] / 60:.1f} | {cells} | '
                 f'{v.get("auc", float("nan")):.4f} | {"yes" if v.get("blessed") else "no"} |')
  stats = {r['metric']: r['value'] for r in results if r['run'] == 'all'}
  lines.append('')
  for k in ['wall_s'] + [f'seconds_{c}' for c in cols]:
    if f'{k}_ratio_mean' in stats:
      lines.append(f'- this / other, {k}: mean {stats[f"{k}_ratio_mean"]:.2f} (rounds '
                   f'{stats[f"{k}_ratio_min"]:.2f}–{stats[f"{k}_ratio_max"]:.2f})')
  return '\n'.join(lines)


def run_ab(args):
  """The wall-time A/B of this checkout against ``args.against`` (see the docstring)."""
  results = []
  for run, side in ab_plan(args.rounds):
    repo, path = (args.against, args.against_path) if side == 'against' else (args.repo, '')
    with tempfile.TemporaryDirectory(prefix=f'main_job_ab_{run}_{side}_') as workdir:
      report, wall, seconds = run_once(args.seeds[0], args.rows, workdir, (), repo, path)
    rows = rows_of(args.seeds[0], run, report, wall, seconds)
    results += [dict(r, side=side) for r in rows]
    print(f'round {run} {side}: {wall / 60:.1f} min', flush=True)
    path = write_results(args.out, results + ab_summary(results), module='main_job')
  with open(path) as f:
    doc = json.load(f)
  print(ab_markdown(doc['results'], doc['command'], doc['date']))
  return path


def markdown(results, command, date):
  by = _grouped(results, 'seed', 'run')
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
  p.add_argument('--against', default='',
                 help='the wall-time A/B: alternate runs of this other checkout and of '
                      '--repo on the first seed (ABBA), --rounds rounds')
  p.add_argument('--against-path', default='',
                 help='PYTHONPATH entries for the --against checkout only (packages the '
                      'lock no longer has)')
  p.add_argument('--rounds', type=int, default=2, help='rounds of the A/B')
  p.add_argument('--rows', type=int, default=200_000)
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  if args.repeats < 1:
    p.error('--repeats must be at least 1')
  if args.rounds < 1:
    p.error('--rounds must be at least 1')
  try:
    trainer_config = json.loads(args.trainer_config) if args.trainer_config else None
    assert trainer_config is None or isinstance(trainer_config, dict)
  except (ValueError, AssertionError):
    p.error('--trainer-config: a JSON object of trainer sections')
  if not os.path.isfile(os.path.join(args.repo, 'pipeline', 'local_runner.py')):
    p.error(f'--repo {args.repo}: no pipeline/local_runner.py there')
  if not args.out.replace('_', '').isalnum():
    p.error('--out: letters, digits and underscores')
  if args.against:
    if not os.path.isfile(os.path.join(args.against, 'pipeline', 'local_runner.py')):
      p.error(f'--against {args.against}: no pipeline/local_runner.py there')
    if args.out == 'main_job':
      p.error('--against: name the A/B\'s results file with --out')
    run_ab(args)
    return
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
    path = write_results(args.out, results + summarize(results, args.seeds[0]),
                         module='main_job')
  with open(path) as f:
    doc = json.load(f)
  print('wrote', path)
  if not args.no_docs and args.out == 'main_job':
    write_docs_block('main_job', markdown(doc['results'], doc['command'], doc['date']),
                     'The main job (`make run`) per data seed')


if __name__ == '__main__':
  main()
