"""Thompson-sampling bandits on the generated data: cumulative regret against
epsilon-greedy, UCB and greedy, with exact click probabilities.

    python -m bench.bandit [--seeds 0 1 2] [--no-docs]

Three settings (:mod:`policy.bandit.simulation`; a pool of 50,000 generated impressions,
6 creatives, clicks drawn from the true q(x, a)):

* ``beta``: context-free Beta-Bernoulli policies, 2M rounds in batches of 10,000, regret
  against the best fixed creative (their own class);
* ``linear``: Bayesian linear models on one-hot (inventory, age group) per creative, 400k
  rounds in batches of 2,000, regret against the best linear policy (the least-squares
  fit of q, played greedily), and against the per-impression oracle;
* ``neural``: neural-linear TS on the last hidden layer of a DNN trained by the Trainer's
  ``run_fn`` on the clicks and 5% of the other impressions of 300k generated rows
  (``bench.fixtures.write_ctr_model``, 150 steps), 100k rounds on a
  pool of 5,000 impressions, regret against the oracle; beside it linear TS on the same pool.

Writes ``bench/results/bandit.json``, the regret curves to ``docs/figures/bandit_regret.png``
and the ``bench.bandit`` block of docs/BENCHMARKS.md.
"""
import argparse
import os
import tempfile

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from bench.common import machine, write_docs_block, write_results
from policy.bandit import features as feats
from policy.bandit import simulation as sim
from policy.bandit.thompson import BetaBernoulli, LinearBandit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURE = os.path.join(REPO, 'docs', 'figures', 'bandit_regret.png')
STRATEGIES = ('thompson', 'epsilon', 'ucb', 'greedy')


def settings(seeds):
  wd = sim.world(50_000, seed=0)
  out = {}
  out['beta'] = (sim.compare({s: (lambda st: lambda seed: BetaBernoulli(6, st, seed=seed))(s)
                              for s in STRATEGIES}, wd, 2_000_000, 10_000, seeds,
                             sim.best_fixed_arm(wd)), 'best fixed creative')
  f = sim.context_features(wd)
  make = {s: (lambda st: lambda seed: LinearBandit(f, st, seed=seed))(s) for s in STRATEGIES}
  out['linear'] = (sim.compare(make, wd, 400_000, 2000, seeds, sim.best_in_class(wd, f)),
                   'best linear policy')
  out['linear-vs-oracle'] = (sim.compare({'thompson': make['thompson'],
                                          'epsilon': make['epsilon']}, wd, 400_000, 2000,
                                         seeds), 'oracle')
  from bench.fixtures import write_ctr_model
  with tempfile.TemporaryDirectory() as tmp:
    model_dir, _, spec = write_ctr_model(tmp, rows=300_000, train_steps=150)
    small = sim.world(5000, seed=2)
    nf = feats.standardize(feats.neural(model_dir, small.table, spec, 'action', 6))
  lf = sim.context_features(small)
  out['neural'] = (sim.compare({
      'neural-linear thompson': lambda seed: LinearBandit(nf, 'thompson', seed=seed),
      'neural-linear epsilon': lambda seed: LinearBandit(nf, 'epsilon', seed=seed),
      'linear thompson': lambda seed: LinearBandit(lf, 'thompson', seed=seed)},
      small, 100_000, 1000, seeds), 'oracle')
  return out


def plot(out):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  os.makedirs(os.path.dirname(FIGURE), exist_ok=True)
  keys = ['beta', 'linear', 'neural']
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  for ax, key in zip(axes, keys):
    runs, ref = out[key]
    for name in dict.fromkeys(r['policy'] for r in runs):
      rs = [r for r in runs if r['policy'] == name]
      ax.plot(rs[0]['rounds'], np.mean([r['regret'] for r in rs], axis=0), label=name)
    ax.set_title(f'{key}: regret vs {ref} (mean of {len(rs)} seeds)', fontsize=9)
    ax.set_xlabel('rounds')
    ax.set_ylabel('cumulative expected regret (clicks)')
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(FIGURE, dpi=90)
  plt.close(fig)


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.bandit', description=__doc__.split('\n')[0])
  p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  out = settings(args.seeds)
  plot(out)
  results = []
  lines = []
  for key, (runs, ref) in out.items():
    for r in runs:
      for m, unit in (('final_regret', 'clicks'), ('growth', 'ratio'),
                      ('reward_per_round', 'clicks/round')):
        results.append({'dataset': f'generated-{key}', 'policy': r['policy'], 'seed': r['seed'],
                        'metric': m, 'value': float(r[m]), 'unit': unit,
                        'rounds': int(r['rounds'][-1]), 'regret_against': ref})
    lines += [f'**{key}** (regret against the {ref}, {int(runs[0]["rounds"][-1]):,} rounds)', '',
              '| policy | final regret per seed | mean | growth (2nd half / 1st half) | '
              'clicks per round |', '|---|---|---|---|---|']
    for name in dict.fromkeys(r['policy'] for r in runs):
      rs = [r for r in runs if r['policy'] == name]
      regrets = ', '.join('%.0f' % r['final_regret'] for r in rs)
      growths = ', '.join('%.2f' % r['growth'] for r in rs)
      mean_regret = np.mean([r['final_regret'] for r in rs])
      per_round = np.mean([r['reward_per_round'] for r in rs])
      lines.append(f'| {name} | {regrets} | {mean_regret:.0f} | {growths} | {per_round:.5f} |')
    lines.append('')
  path = write_results('bandit', results)
  print('wrote', path)
  print('\n'.join(lines))
  if not args.no_docs:
    import json
    with open(path) as f:
      doc = json.load(f)
    text = (f"Command: `{doc['command']}` ({doc['date']}; {machine()}). Curves: "
            f"[docs/figures/bandit_regret.png](figures/bandit_regret.png). Growth is the "
            f"regret added in the second half of the rounds over the first half's: 1 is "
            f"linear, sqrt(T) gives 0.41.\n\n" + '\n'.join(lines).rstrip())
    write_docs_block('bandit', text, 'Bandits (`bench/bandit`)')


if __name__ == '__main__':
  main()
