"""Off-policy evaluation: accuracy on real logs, exactness on generated logs, and speed.

    python -m bench.ope [--parts obd exact speed] [--resamples 200] [--no-docs]

* ``obd``: the Open Bandit Pipeline paper's protocol on the Open Bandit Dataset
  (``../shared/data/open_bandit_dataset``). For each campaign (all, men, women), the
  Bernoulli TS policy's value is estimated from the uniform random policy's logs and
  compared with BTS's own on-policy click rate (the ground truth). The logs are
  resampled with replacement ``--resamples`` times; each estimator's relative error
  |V_hat - V| / V is reported as mean, median and interquartile range. BTS's distribution:
  its production prior (``prior_bts.yaml``), 100,000 Monte Carlo draws. The reward model
  (DM, DR family): the project's DNN trained by ``run_fn`` on the random logs
  (``specs/open_bandit.yaml``), cross-fitted over 3 folds once; each resample keeps its
  rows' cross-fitted predictions (the paper refits per resample: 200 x 3 trainings here
  would take hours).
* ``exact``: the generated dataset as a bandit (:mod:`policy.ope.simulation`): a pool of
  2M contexts with the exact click probability under each of the 6 creatives; logs of n
  = 1k .. 1M rounds drawn from it; each estimator's bias, RMSE and interval coverage
  against the exact value of an epsilon-greedy policy over a reward model with logit noise
  0.3 (the same model serves DM and DR).
* ``speed``: every estimator, with a 200-resample bootstrap interval, on 1M logged rows
  with 80 actions and 3 positions (random propensities, evaluation distribution and reward
  model, float32 as a model would give them); the target is under 10 s on this machine.

Results: ``bench/results/ope.json`` and the ``bench.ope`` block of docs/BENCHMARKS.md.
"""
import argparse
import os
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from bench.common import machine, write_docs_block, write_results
from policy.ope import estimators as est

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OBD_ROOT = os.path.join(REPO, '..', 'shared', 'data', 'open_bandit_dataset')
SPEED_TARGET_S = 10.0


def _row(dataset, policy, estimator, metric, value, unit=''):
  return {'dataset': dataset, 'policy': policy, 'estimator': estimator, 'metric': metric,
          'value': float(value), 'unit': unit}


def obd(resamples, seed=0):
  from policy.ope import obd as obd_lib
  from policy.ope import policies, reward_model
  from transform import feature_spec as fs
  spec = fs.load(os.path.join(REPO, 'specs', 'open_bandit.yaml'))
  rows = []
  for campaign in obd_lib.CAMPAIGNS:
    logs = obd_lib.load(OBD_ROOT, 'random', campaign)
    truth = obd_lib.on_policy_value(OBD_ROOT, 'bts', campaign)
    alpha, beta = policies.bts_prior(os.path.join(OBD_ROOT, 'prior_bts.yaml'), campaign)
    dist = policies.bernoulli_ts(alpha, beta, obd_lib.N_POSITIONS, 100_000, seed)
    t = time.time()
    q_hat = reward_model.cross_fit(logs, spec, reward_model.RewardModelConfig(seed=seed),
                                   per_action={'affinity': 'user-item_affinity_'})
    fit_s = time.time() - t
    fb = logs.feedback(q_hat)
    rng = np.random.default_rng(seed)
    errors = {e: [] for e in est.ALL}
    for _ in range(resamples):
      idx = rng.integers(0, fb.n, fb.n)
      sample = est.Feedback(reward=fb.reward[idx], action=fb.action[idx],
                            position=fb.position[idx], pscore=fb.pscore[idx],
                            reward_hat=q_hat[idx], n_actions=fb.n_actions,
                            n_positions=fb.n_positions)
      for r in est.estimate(sample, dist, est.ALL, n_bootstrap=0):
        errors[r.estimator].append(abs(r.value - truth) / truth)
    full = {r.estimator: r for r in est.estimate(fb, dist, est.ALL, n_bootstrap=200,
                                                   seed=seed)}
    d = f'obd/{campaign}'
    rows += [_row(d, 'bts', '', 'ground_truth', truth, 'clicks per slot'),
             _row(d, 'random', '', 'logged_rows', fb.n, 'rows'),
             _row(d, 'random', '', 'logged_clicks', fb.reward.sum(), 'clicks'),
             _row(d, 'bts', '', 'reward_model_fit_s', fit_s, 's')]
    for e, v in errors.items():
      v = np.asarray(v)
      q25, q50, q75 = np.quantile(v, [0.25, 0.5, 0.75])
      rows += [_row(d, 'bts', e, 'relative_error_mean', v.mean()),
               _row(d, 'bts', e, 'relative_error_median', q50),
               _row(d, 'bts', e, 'relative_error_q25', q25),
               _row(d, 'bts', e, 'relative_error_q75', q75),
               _row(d, 'bts', e, 'estimate_full_logs', full[e].value, 'clicks per slot'),
               _row(d, 'bts', e, 'ci_low_full_logs', full[e].ci_low, 'clicks per slot'),
               _row(d, 'bts', e, 'ci_high_full_logs', full[e].ci_high, 'clicks per slot')]
    print(f'obd/{campaign}: truth {truth:.5f}; ' + ', '.join(
        f'{e} {np.mean(v):.3f}' for e, v in errors.items()), flush=True)
  return rows


def exact(sizes=(1_000, 10_000, 100_000, 1_000_000), pool_rows=2_000_000, seed=0):
  from policy.ope import simulation as sim
  pool = sim.pool(pool_rows, seed=seed, reward_model_noise=0.3)
  dist = sim.policies_for(pool)['epsilon-greedy']
  rows = [_row('generated', 'epsilon-greedy', '', 'true_value', pool.value(dist),
               'clicks per round'),
          _row('generated', 'logging', '', 'true_value', pool.value(pool.logging),
               'clicks per round')]
  reps = {1_000: 400, 10_000: 200, 100_000: 100, 1_000_000: 50}
  for n in sizes:
    t = time.time()
    for r in sim.bias_rmse(pool, dist, [n], reps.get(n, 20), seed=seed):
      for metric in ('bias', 'bias_se', 'rmse', 'sd', 'coverage'):
        rows.append(dict(_row('generated', 'epsilon-greedy', r['estimator'], metric,
                              r[metric], '' if metric == 'coverage' else 'clicks per round'),
                         n=n, reps=r['reps']))
    print(f'exact n={n}: {time.time() - t:.1f}s', flush=True)
  return rows


def speed(n=1_000_000, n_actions=80, n_positions=3, n_bootstrap=200, seed=0, repeats=3):
  rng = np.random.default_rng(seed)
  dist = rng.random((n, n_actions, n_positions), dtype=np.float32)
  dist /= dist.sum(axis=1, keepdims=True)
  q_hat = (rng.random((n, n_actions, n_positions), dtype=np.float32) * 0.02)
  fb = est.Feedback(reward=(rng.random(n) < 0.005).astype(np.float64),
                    action=rng.integers(0, n_actions, n),
                    position=rng.integers(0, n_positions, n),
                    pscore=rng.uniform(0.5, 1.5, n) / n_actions, reward_hat=q_hat)
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    est.estimate(fb, dist, est.ALL, n_bootstrap=n_bootstrap, seed=seed)
    times.append(time.perf_counter() - t)
  best, median = min(times), float(np.median(times))
  print(f'speed: {n} rows x {n_actions} actions x {n_positions} positions, all estimators, '
        f'{n_bootstrap} resamples: median {median:.2f}s (best {best:.2f}s) of {repeats}',
        flush=True)
  d = f'random {n} x {n_actions} x {n_positions}'
  return [_row(d, '', 'all', 'seconds_median', median, 's'),
          _row(d, '', 'all', 'seconds_best', best, 's'),
          _row(d, '', 'all', 'target_s', SPEED_TARGET_S, 's'),
          _row(d, '', 'all', 'median_over_target', median / SPEED_TARGET_S, 'ratio')]


def markdown(results, commands):
  """The docs tables; ``commands``: dataset -> {'command', 'date'} that produced it."""
  by = {}
  for r in results:
    by[(r['dataset'], r.get('estimator', ''), r['metric'], r.get('n'))] = r['value']

  def made_by(datasets):
    runs = sorted({(commands.get(d, {}).get('command'), commands.get(d, {}).get('date'))
                   for d in datasets})
    return 'Command: ' + '; '.join(f'`{c}` ({t})' for c, t in runs) + '.'

  lines = [f'Machine: {machine()}.', '']
  campaigns = sorted({r['dataset'] for r in results if r['dataset'].startswith('obd/')})
  if campaigns:
    lines += ['**Open Bandit Dataset**: BTS\'s value from the random policy\'s logs, relative '
              'error |V̂ − V| / V over bootstrap resamples of the logs (mean / median '
              '[interquartile range]). ' + made_by(campaigns), '',
              '| campaign | ground truth V | logged clicks | ' + ' | '.join(est.ALL) + ' |',
              '|---|---|---|' + '---|' * len(est.ALL)]
    for d in campaigns:
      cells = [f'{by[(d, e, "relative_error_mean", None)]:.3f} / '
               f'{by[(d, e, "relative_error_median", None)]:.3f} '
               f'[{by[(d, e, "relative_error_q25", None)]:.3f}, '
               f'{by[(d, e, "relative_error_q75", None)]:.3f}]' for e in est.ALL]
      lines.append(f'| {d[4:]} | {by[(d, "", "ground_truth", None)]:.5f} | '
                   f'{int(by[(d, "", "logged_clicks", None)])} | ' + ' | '.join(cells) + ' |')
    lines.append('')
  sizes = sorted({r['n'] for r in results if r.get('n')})
  if sizes:
    truth = next(r['value'] for r in results if r['metric'] == 'true_value'
                 and r['policy'] == 'epsilon-greedy')
    logging = next(r['value'] for r in results if r['metric'] == 'true_value'
                   and r['policy'] == 'logging')
    lines += [f'**Generated data, exact truth**: the epsilon-greedy policy\'s true value is '
              f'{truth:.5f} clicks per round (the logging policy\'s {logging:.5f}). Per n: '
              'bias ± its standard error over the repeated logs, RMSE, and the share of '
              'logs whose ±1.96 SE interval held the truth. ' + made_by(['generated']), '',
              '| n | ' + ' | '.join(est.ALL) + ' |', '|---|' + '---|' * len(est.ALL)]
    for n in sizes:
      cells = [f'{by[("generated", e, "bias", n)]:+.5f} ± {by[("generated", e, "bias_se", n)]:.5f}'
               f', RMSE {by[("generated", e, "rmse", n)]:.5f}, '
               f'cov. {by[("generated", e, "coverage", n)]:.2f}' for e in est.ALL]
      lines.append(f'| {n:,} | ' + ' | '.join(cells) + ' |')
    lines.append('')
  speed_rows = [r for r in results if r['metric'] == 'seconds_median']
  for r in speed_rows:
    lines += [f'**Speed**: all seven estimators with a 200-resample bootstrap interval on '
              f'{r["dataset"]} (rows x actions x positions): median '
              f'{r["value"]:.2f} s, {r["value"] / SPEED_TARGET_S:.2f} of the '
              f'{SPEED_TARGET_S:.0f} s target. ' + made_by([r['dataset']]), '']
  return '\n'.join(lines)


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.ope', description=__doc__.split('\n')[0])
  p.add_argument('--parts', nargs='+', default=['obd', 'exact', 'speed'],
                 choices=['obd', 'exact', 'speed'])
  p.add_argument('--resamples', type=int, default=200)
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  results = []
  if 'obd' in args.parts:
    if os.path.isdir(OBD_ROOT):
      results += obd(args.resamples)
    else:
      print(f'Open Bandit Dataset not found at {OBD_ROOT}; obd skipped', flush=True)
  if 'exact' in args.parts:
    results += exact()
  if 'speed' in args.parts:
    results += speed()
  # Merged by dataset: --parts reruns some tables and keeps the others' rows.
  path = write_results('ope', results, merge_by='dataset')
  print('wrote', path)
  if not args.no_docs:
    import json
    with open(path) as f:
      doc = json.load(f)
    write_docs_block('ope', markdown(doc['results'], doc['commands']),
                     'Off-policy evaluation (`bench/ope`)')


if __name__ == '__main__':
  main()
