"""``python -m policy ope``: a policy's value from logs, as a table with intervals and JSON.

    python -m policy ope --logs FILE_OR_DIR --policy (MODEL_DIR|bts|random|epsilon-greedy)
        [--estimators ips,snips,dr,...] [--columns item_id=action,click=reward,...]
        [--reward-spec SPEC.yaml] [--out estimates.json]

Policies:

* ``random``: the uniform random slate;
* ``bts``: Bernoulli Thompson sampling with ``--prior`` (the Open Bandit Dataset's
  ``prior_bts.yaml``) for ``--campaign``, its distribution from ``--n-sim`` draws;
* a SavedModel folder (a pushed model base path or one version): greedy over its predicted
  click per item, or softmax with ``--temperature``;
* ``epsilon-greedy``: greedy over ``--model``'s predictions, uniform with ``--epsilon``.

DM and the DR estimators need a reward model: ``--reward-spec`` names its feature spec,
and it is trained on the logs by the Trainer's ``run_fn``, cross-fitted over ``--folds``.
Without one, only IPS and SNIPS run. ``--lift`` reports the value minus the logging
policy's (the logged mean reward).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List

ESTIMATOR_HELP = 'comma-separated: ips,snips,dm,dr,sndr,switch-dr,dros (default: all that ' \
                 'can run: IPS and SNIPS, plus the rest with --reward-spec)'


def _mapping(text: str) -> Dict[str, str]:
  out = {}
  for item in filter(None, (t.strip() for t in text.split(','))):
    if '=' not in item:
      raise argparse.ArgumentTypeError(f'expected name=value pairs, got {item!r}')
    k, v = item.split('=', 1)
    out[k.strip()] = v.strip()
  return out


def add_arguments(p: argparse.ArgumentParser) -> None:
  p.add_argument('--logs', required=True, help='Parquet or CSV file, or a folder of them')
  p.add_argument('--policy', required=True,
                 help='random, bts, epsilon-greedy, or a SavedModel folder (greedy)')
  p.add_argument('--estimators', default='', help=ESTIMATOR_HELP)
  p.add_argument('--columns', type=_mapping, default={},
                 help='rename log columns to action, position, reward, propensity '
                      '(e.g. item_id=action,click=reward,propensity_score=propensity)')
  p.add_argument('--position-base', type=int, default=0,
                 help='1 when the logged positions start at 1')
  p.add_argument('--n-actions', type=int, default=None,
                 help='size of the action set (default: largest logged action + 1)')
  p.add_argument('--n-positions', type=int, default=None)
  p.add_argument('--drop', default='', help='comma-separated columns to ignore')
  p.add_argument('--prior', default='', help='bts: the Beta prior YAML')
  p.add_argument('--campaign', default='', help='bts: the prior\'s campaign')
  p.add_argument('--n-sim', type=int, default=100_000, help='bts: Monte Carlo draws')
  p.add_argument('--model', default='', help='epsilon-greedy: the SavedModel scoring items')
  p.add_argument('--epsilon', type=float, default=0.1)
  p.add_argument('--temperature', type=float, default=0.0,
                 help='model policy: softmax with this temperature instead of greedy')
  p.add_argument('--per-action', type=_mapping, default={},
                 help='feature=column_prefix: a feature read from per-action columns '
                      '(e.g. affinity=user-item_affinity_)')
  p.add_argument('--reward-spec', default='', help='feature spec of the reward model (DM, DR)')
  p.add_argument('--reward-model', default='dnn', help='the reward model\'s architecture')
  p.add_argument('--folds', type=int, default=3, help='cross-fitting folds')
  p.add_argument('--lift', action='store_true',
                 help='report the value minus the logging policy\'s')
  p.add_argument('--bootstrap', type=int, default=200, help='bootstrap resamples for the CI')
  p.add_argument('--alpha', type=float, default=0.05, help='1 - the CI level')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--out', default='', help='write the table as JSON here')


def _model_dir(path: str) -> str:
  """A SavedModel folder, or the newest numeric version under a model base path."""
  if os.path.exists(os.path.join(path, 'saved_model.pb')):
    return path
  versions = [d for d in os.listdir(path) if d.isdigit()
              and os.path.exists(os.path.join(path, d, 'saved_model.pb'))] \
      if os.path.isdir(path) else []
  if not versions:
    raise ValueError(f'{path}: not a SavedModel nor a model base path with versions')
  return os.path.join(path, max(versions, key=int))


def action_distribution(args, logs):
  from policy.ope import policies
  k = logs.n_positions
  if args.policy == 'random':
    return policies.uniform(logs.n_actions, k), 'uniform random'
  if args.policy == 'bts':
    if not args.prior or not args.campaign:
      raise ValueError('--policy bts needs --prior and --campaign')
    alpha, beta = policies.bts_prior(args.prior, args.campaign)
    if alpha.size != logs.n_actions:
      raise ValueError(f'the prior has {alpha.size} actions, the logs {logs.n_actions}')
    return (policies.bernoulli_ts(alpha, beta, k, args.n_sim, args.seed),
            f'Bernoulli TS ({args.campaign} prior, {args.n_sim} draws)')
  if args.policy == 'epsilon-greedy':
    if not args.model:
      raise ValueError('--policy epsilon-greedy needs --model, the SavedModel that scores')
    model = _model_dir(args.model)
    scores = policies.model_scores(model, logs, args.per_action)
    return (policies.epsilon_greedy(scores, args.epsilon, k),
            f'epsilon-greedy ({args.epsilon}) over {model}')
  if os.path.isdir(args.policy):
    model = _model_dir(args.policy)
    scores = policies.model_scores(model, logs, args.per_action)
    if args.temperature > 0:
      return (policies.softmax(scores, args.temperature, k, seed=args.seed),
              f'softmax (T={args.temperature}) over {model}')
    return policies.greedy(scores, k), f'greedy over {model}'
  raise ValueError(f'--policy must be random, bts, epsilon-greedy or a SavedModel folder; '
                   f'{args.policy!r} is none of these')


def table(rows: List[dict], title: str) -> str:
  lines = [title, f'{"estimator":<10} {"value":>10} {"se":>10} {"ci low":>10} '
                  f'{"ci high":>10}  params']
  for r in rows:
    params = ', '.join(f'{k}={v:.4g}' for k, v in r['params'].items())
    lines.append(f'{r["estimator"]:<10} {r["value"]:>10.6f} {r["se"]:>10.6f} '
                 f'{r["ci_low"]:>10.6f} {r["ci_high"]:>10.6f}  {params}')
  return '\n'.join(lines)


def run(args) -> int:
  from policy.ope import estimators as est
  from policy.ope import logs as logs_lib
  from policy.ope import reward_model
  logs = logs_lib.read(args.logs, args.columns, n_actions=args.n_actions,
                       n_positions=args.n_positions, position_base=args.position_base,
                       drop=[c for c in args.drop.split(',') if c])
  names = [e for e in args.estimators.split(',') if e] or (
      list(est.ALL) if args.reward_spec else ['ips', 'snips'])
  needs_model = sorted(est.NEEDS_REWARD_MODEL & set(names))
  if needs_model and not args.reward_spec:
    raise ValueError(f'{", ".join(needs_model)} need{"s" if len(needs_model) == 1 else ""} '
                     f'a reward model: give --reward-spec')
  dist, policy_name = action_distribution(args, logs)
  reward_hat = None
  if needs_model:
    from transform import feature_spec as fs
    config = reward_model.RewardModelConfig(model=args.reward_model, folds=args.folds,
                                            seed=args.seed)
    reward_hat = reward_model.cross_fit(logs, fs.load(args.reward_spec), config,
                                        args.per_action)
  fn = est.lift if args.lift else est.estimate
  results = fn(logs.feedback(reward_hat), dist, names, alpha=args.alpha,
               n_bootstrap=args.bootstrap, seed=args.seed)
  rows = [r.as_dict() for r in results]
  what = 'lift over the logging policy' if args.lift else 'value'
  print(table(rows, f'{policy_name}: estimated {what} from {len(logs)} logged rows '
                    f'({logs.n_actions} actions, {logs.n_positions} positions; logged mean '
                    f'reward {logs.frame["reward"].mean():.6f}); {100 * (1 - args.alpha):g}% '
                    f'bootstrap CI, {args.bootstrap} resamples'))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump({'policy': policy_name, 'logs': args.logs, 'quantity': what,
                 'logged_mean_reward': float(logs.frame['reward'].mean()),
                 'estimates': rows}, f, indent=1)
    print('wrote', args.out)
  return 0


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python -m policy ope', description=__doc__.split('\n')[0])
  add_arguments(p)
  args = p.parse_args(argv)
  try:
    return run(args)
  except (ValueError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
