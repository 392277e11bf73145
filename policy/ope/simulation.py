"""OPE where the truth is exact: the generated default dataset as a contextual bandit.

``datagen.synthetic`` logs a creative (``action``, one of 6) chosen by a known logging
policy, and its world gives the true click probability of every row under every action
(:meth:`datagen.synthetic.SyntheticWorld.click_logit`). So for a pool of contexts:

* q(x, a): the true click probability of each context under each action, (rows, actions);
* any evaluation policy's true value, V = mean over the pool of sum_a pi(a | x) q(x, a),
  is exact (no sampling);
* a log of n rounds is drawn from it as the data would be: contexts with replacement
  from the pool, the action from the logging policy, the click from q. Repeating the
  draw gives each estimator's bias and RMSE against the exact V.

``reward_model_noise`` makes a reward model of known quality: q_hat = sigmoid(logit(q) +
noise), a fixed perturbation per (context, action).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Sequence

import numpy as np

from policy.ope import estimators as est


@dataclasses.dataclass
class Pool:
  """Contexts of the generated data with their exact click probabilities."""
  q: np.ndarray              # (rows, actions): true click probability under each action
  logging: np.ndarray        # (rows, actions): the logging policy's distribution
  q_hat: np.ndarray          # (rows, actions): a reward model of known quality

  @property
  def n_actions(self) -> int:
    return self.q.shape[1]

  def value(self, dist: np.ndarray) -> float:
    """The exact value of a policy, (rows, actions) or (actions,), on this pool."""
    return float(np.mean(np.sum(np.broadcast_to(dist, self.q.shape) * self.q, axis=1)))


def pool(rows: int, seed: int = 0, reward_model_noise: float = 0.3) -> Pool:
  """``rows`` contexts of the generated dataset of ``seed``, with q under every action."""
  from datagen import synthetic
  world = synthetic.SyntheticWorld(seed)
  table = synthetic.generate(rows, seed=seed, world=world)
  q = synthetic.action_click_probabilities(table, world)
  logits = np.log(q / (1 - q))
  rng = np.random.default_rng([seed, 7])
  noisy = logits + reward_model_noise * rng.standard_normal(logits.shape)
  return Pool(q=q, logging=world.logging_policy(synthetic.table_columns(table)),
              q_hat=1 / (1 + np.exp(-noisy)))


def draw_log(p: Pool, n: int, rng: np.random.Generator, rows: np.ndarray = None):
  """A log of ``n`` rounds: (rows of the pool, feedback with the reward model)."""
  rows = rng.integers(0, p.q.shape[0], n) if rows is None else rows
  pi_b = p.logging[rows]
  action = (rng.random(n)[:, None] > np.cumsum(pi_b, axis=1)).sum(axis=1)
  action = np.minimum(action, p.n_actions - 1)
  reward = (rng.random(n) < p.q[rows, action]).astype(np.float64)
  fb = est.Feedback(reward=reward, action=action, pscore=pi_b[np.arange(n), action],
                    reward_hat=p.q_hat[rows][:, :, None])
  return rows, fb


def policies_for(p: Pool, epsilon: float = 0.2, temperature: float = 0.5) -> Dict[str, np.ndarray]:
  """Evaluation policies over the reward model's scores, (rows, actions): epsilon-greedy
  and softmax, plus the uniform random policy."""
  from policy.ope import policies
  logit_hat = np.log(p.q_hat / (1 - p.q_hat))
  return {'epsilon-greedy': policies.epsilon_greedy(logit_hat, epsilon)[:, :, 0],
          'softmax': policies.softmax(logit_hat, temperature)[:, :, 0],
          'uniform': np.full(p.q.shape, 1.0 / p.n_actions)}


def bias_rmse(p: Pool, dist: np.ndarray, sizes: Sequence[int], reps: int,
              estimators: Iterable[str] = est.ALL, seed: int = 0) -> List[Dict[str, float]]:
  """Per size n and estimator, over ``reps`` logs drawn from the pool: the mean estimate
  minus the exact value (bias), its standard error, the RMSE, and how often the
  estimator's own normal interval (value +- 1.96 SE) held the truth."""
  truth = p.value(dist)
  names = list(estimators)
  rng = np.random.default_rng(seed)
  out = []
  for n in sizes:
    values = {e: [] for e in names}
    covered = {e: 0 for e in names}
    for _ in range(reps):
      rows, fb = draw_log(p, n, rng)
      for r in est.estimate(fb, dist[rows][:, :, None], names, n_bootstrap=0):
        values[r.estimator].append(r.value)
        covered[r.estimator] += abs(r.value - truth) <= 1.96 * r.se
    for e in names:
      v = np.asarray(values[e])
      out.append({'n': n, 'estimator': e, 'truth': truth, 'mean': float(v.mean()),
                  'bias': float(v.mean() - truth),
                  'bias_se': float(v.std(ddof=1) / np.sqrt(reps)) if reps > 1 else float('nan'),
                  'rmse': float(np.sqrt(np.mean((v - truth) ** 2))),
                  'sd': float(v.std(ddof=1)) if reps > 1 else float('nan'),
                  'coverage': covered[e] / reps, 'reps': reps})
  return out
