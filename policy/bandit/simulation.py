"""Bandits on the generated data, where every arm's true click probability is known.

The generated impressions (``datagen.synthetic``) come with a creative (``action``, one of
6) whose effect on the click depends on the inventory and the age group; the world gives
q(x, a), the true click probability of every impression x under every creative a
(:func:`datagen.synthetic.action_click_probabilities`). A simulation draws impressions from
a pool, lets the policy pick creatives in batches, draws clicks from q and feeds them back
(batched posterior updates). Regret is measured exactly, not from the sampled clicks:
the sum over rounds of max_a q(x, a) - q(x, chosen), against the per-impression oracle.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence

import numpy as np

from policy.bandit.thompson import BetaBernoulli


@dataclasses.dataclass
class World:
  table: object             # pyarrow.Table of the pool's impressions
  q: np.ndarray             # (rows, arms) true click probabilities
  columns: Dict[str, np.ndarray]

  @property
  def n_arms(self) -> int:
    return self.q.shape[1]


def world(rows: int, seed: int = 0) -> World:
  """A pool of ``rows`` generated impressions with q under every creative."""
  from datagen import synthetic
  w = synthetic.SyntheticWorld(seed)
  table = synthetic.generate(rows, seed=seed, world=w)
  return World(table, synthetic.action_click_probabilities(table, w),
               synthetic.table_columns(table))


def context_features(wd: World):
  """Linear TS's features: per creative, an intercept and one-hots of the inventory and
  the age group (the columns the creative effects depend on)."""
  from datagen import synthetic
  from policy.bandit import features
  return features.one_hot({'inventory_id': wd.columns['inventory_id'],
                           'age_group': wd.columns['age_group']},
                          {'inventory_id': synthetic.N_INVENTORY,
                           'age_group': synthetic.N_AGE_GROUPS}, wd.n_arms)


@dataclasses.dataclass
class Run:
  rounds: np.ndarray        # checkpoints (rounds played)
  regret: np.ndarray        # cumulative expected regret at each checkpoint
  reward: np.ndarray        # cumulative expected reward (sum of q of the arms chosen)


def best_fixed_arm(wd: World) -> np.ndarray:
  """The reference of a context-free policy: the arm with the best mean, for every row."""
  return np.full(wd.q.shape[0], int(np.argmax(wd.q.mean(axis=0))))


def best_in_class(wd: World, features) -> np.ndarray:
  """The reference of a linear policy: greedy on the least-squares fit of q on its
  features (the best the model class can do when the world is not linear in them)."""
  phi = features(np.arange(wd.q.shape[0]))
  fit = np.stack([phi[:, a] @ np.linalg.lstsq(phi[:, a], wd.q[:, a], rcond=None)[0]
                  for a in range(wd.n_arms)], axis=1)
  return np.argmax(fit, axis=1)


def simulate(policy, wd: World, rounds: int, batch: int = 500, seed: int = 0,
             reference=None) -> Run:
  """Plays ``rounds`` impressions drawn from the pool in batches of ``batch``. Regret is
  against ``reference`` ((rows,) arm per pool row; default the oracle, argmax_a q)."""
  rng = np.random.default_rng([seed, 11])
  best = (wd.q.max(axis=1) if reference is None
          else wd.q[np.arange(wd.q.shape[0]), reference])
  regret, reward, marks = [], [], []
  total_regret = total_reward = 0.0
  played = 0
  while played < rounds:
    n = min(batch, rounds - played)
    rows = rng.integers(0, wd.q.shape[0], n)
    if isinstance(policy, BetaBernoulli):
      arms = policy.select(n=n)
    else:
      arms = policy.select(rows)
    q = wd.q[rows, arms]
    clicks = (rng.random(n) < q).astype(np.float64)
    if isinstance(policy, BetaBernoulli):
      policy.update(arms, clicks)
    else:
      policy.update(rows, arms, clicks)
    total_regret += float((best[rows] - q).sum())
    total_reward += float(q.sum())
    played += n
    marks.append(played)
    regret.append(total_regret)
    reward.append(total_reward)
  return Run(np.asarray(marks), np.asarray(regret), np.asarray(reward))


def growth(run: Run) -> float:
  """Regret over the second half of the rounds / regret over the first half: 1 for
  linear growth, < 1 for sublinear (sqrt(T) growth gives 0.41)."""
  half = np.searchsorted(run.rounds, run.rounds[-1] / 2)
  first = run.regret[half]
  return float((run.regret[-1] - first) / max(first, 1e-12))


def compare(make_policies: Dict[str, object], wd: World, rounds: int, batch: int = 500,
            seeds: Sequence[int] = (0,), reference=None) -> List[dict]:
  """Every policy (a factory ``seed -> policy``) over the same impressions per seed."""
  out = []
  for name, make in make_policies.items():
    for s in seeds:
      r = simulate(make(s), wd, rounds, batch, seed=s, reference=reference)
      out.append({'policy': name, 'seed': s, 'rounds': r.rounds, 'regret': r.regret,
                  'final_regret': float(r.regret[-1]), 'growth': growth(r),
                  'reward_per_round': float(r.reward[-1] / r.rounds[-1])})
  return out
