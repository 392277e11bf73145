"""Evaluation policies as action distributions for the OPE estimators.

A policy fills a slate of ``n_positions`` slots with distinct actions (items). Its action
distribution pi(a | x, k) is the probability that action a is shown at position k: shape
(rounds, actions, positions), or (actions, positions) for a policy that ignores the
context. Each position's column sums to 1 over the actions.

* :func:`uniform`: every slate equally likely, so 1 / actions everywhere;
* :func:`greedy`: the top-``n_positions`` actions by score, best first;
* :func:`epsilon_greedy`: greedy with probability 1 - epsilon, a uniform random slate
  otherwise;
* :func:`softmax`: a Plackett-Luce slate, drawn without replacement with probabilities
  softmax(score / temperature). Exact marginals for the first three positions (O(actions^2)
  per round at the third), Monte Carlo (Gumbel top-k) beyond;
* :func:`bernoulli_ts`: Bernoulli Thompson sampling with a Beta(alpha, beta) posterior per
  action (the Open Bandit Dataset's production prior by :func:`bts_prior`): draw one
  click rate per action, show the top ``n_positions``. Its distribution is estimated by
  Monte Carlo with ``n_sim`` draws.

Scores are a CTR model's predicted clicks per (round, action), shape (rounds, actions):
:func:`model_scores` computes them with a pushed SavedModel.
"""

from __future__ import annotations

from dataclasses import replace as dataclasses_replace
from typing import Tuple

import numpy as np


def _check_slate(n_actions: int, n_positions: int) -> None:
  if n_positions < 1 or n_actions < n_positions:
    raise ValueError(f'a slate of {n_positions} distinct actions needs at least that many '
                     f'actions; got {n_actions}')


def _scores(scores) -> np.ndarray:
  s = np.asarray(scores, np.float64)
  if s.ndim != 2:
    raise ValueError(f'scores must be (rounds, actions); got shape {s.shape}')
  bad = ~np.isfinite(s)
  if bad.any():
    rows = np.flatnonzero(bad.any(axis=1))
    raise ValueError(f'scores are not finite in rows {rows[:10].tolist()}')
  return s


def uniform(n_actions: int, n_positions: int = 1) -> np.ndarray:
  """The uniform random slate: (actions, positions) of 1 / actions."""
  _check_slate(n_actions, n_positions)
  return np.full((n_actions, n_positions), 1.0 / n_actions)


def greedy(scores, n_positions: int = 1) -> np.ndarray:
  """The top ``n_positions`` actions of each round by score, best at position 0 (ties go
  to the lower action index)."""
  s = _scores(scores)
  n, a = s.shape
  _check_slate(a, n_positions)
  top = np.argsort(-s, axis=1, kind='stable')[:, :n_positions]        # (rounds, positions)
  dist = np.zeros((n, a, n_positions))
  dist[np.arange(n)[:, None], top, np.arange(n_positions)[None, :]] = 1.0
  return dist


def epsilon_greedy(scores, epsilon: float, n_positions: int = 1) -> np.ndarray:
  """Greedy with probability 1 - epsilon, a uniform random slate with epsilon."""
  if not 0 <= epsilon <= 1:
    raise ValueError(f'epsilon must be in [0, 1], got {epsilon}')
  g = greedy(scores, n_positions)
  return (1 - epsilon) * g + epsilon / g.shape[1]


def softmax(scores, temperature: float = 1.0, n_positions: int = 1, n_sim: int = 10_000,
            seed: int = 0) -> np.ndarray:
  """Plackett-Luce slates with item probabilities softmax(scores / temperature)."""
  if not temperature > 0:
    raise ValueError(f'temperature must be > 0, got {temperature}')
  s = _scores(scores) / temperature
  n, a = s.shape
  _check_slate(a, n_positions)
  order = np.argsort(-s, axis=1, kind='stable')
  exact = _plackett_luce_sorted(np.take_along_axis(s, order, axis=1), min(n_positions, 3))
  dist = np.zeros((n, a, n_positions))
  rows = np.arange(n)[:, None]
  dist[rows, order, :exact.shape[2]] = exact
  if n_positions > 3:
    dist[:, :, 3:] = _plackett_luce_mc(s, n_positions, n_sim, seed)[:, :, 3:]
  return dist


def _logsumexp(x: np.ndarray, axis) -> np.ndarray:
  m = np.max(x, axis=axis, keepdims=True)
  m = np.where(np.isfinite(m), m, 0.0)
  with np.errstate(divide='ignore'):
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _log1m(x: np.ndarray) -> np.ndarray:
  """log(1 - x) for 0 <= x < 1."""
  with np.errstate(divide='ignore'):
    return np.log1p(-np.minimum(x, 1.0))


def _plackett_luce_sorted(logits: np.ndarray, k: int) -> np.ndarray:
  """Exact position marginals (positions 0 .. k - 1, k <= 3) of Plackett-Luce for logits
  sorted in decreasing order, computed in log space so that a nearly greedy policy (a
  tiny temperature) stays exact. With E_b = exp(logit_b - logit_0) and T = sum E:

  * P(a first) = E_a / T;
  * P(a second) = P(a first) sum_{b != a} r_b, with r_b = E_b / (T - E_b);
  * P(a third) = P(a first) sum_{b != c; b, c != a} r_b E_c / (T - E_b - E_c)
    (each term: b first, c second, a third).

  Every "T minus some items" is a sum over the remaining items, taken without
  cancellation: the item removed is never the largest of what remains, except for the
  leader(s), whose complements are suffix sums."""
  n, a = logits.shape
  le = logits - logits[:, :1]                                   # log E, E_0 = 1
  suffix = np.full((n, a + 1), -np.inf)                         # log sum_{i >= j} E_i
  for j in range(a - 1, -1, -1):
    suffix[:, j] = np.logaddexp(suffix[:, j + 1], le[:, j])
  log_t = suffix[:, 0]
  out = np.zeros((n, a, k))
  log_p = le - log_t[:, None]
  out[:, :, 0] = np.exp(log_p)
  if k == 1:
    return out
  # log(T - E_b): the suffix from 1 for the leader, else log T + log(1 - E_b / T).
  log_others = log_t[:, None] + _log1m(np.exp(le - log_t[:, None]))
  log_others[:, 0] = suffix[:, 1]
  log_r = le - log_others
  log_r_total = _logsumexp(log_r, axis=1)
  # sum_{b != a} r_b: r_0 is the largest term, so only a = 0 needs the direct sum.
  log_r_rest = log_r_total[:, None] + _log1m(np.exp(log_r - log_r_total[:, None]))
  log_r_rest[:, 0] = _logsumexp(log_r[:, 1:], axis=1)
  out[:, :, 1] = np.exp(log_p + log_r_rest)
  if k == 2:
    return out
  block = max(1, (1 << 21) // (a * a))
  idx = np.arange(a)
  for s0 in range(0, n, block):
    sl = slice(s0, s0 + block)
    e = np.exp(le[sl])                                          # (m, a)
    lt = log_t[sl][:, None, None]
    # log(T - E_b - E_c), for b != c.
    log_rest = lt + _log1m((e[:, :, None] + e[:, None, :]) / np.exp(lt))
    s1 = suffix[sl, 1][:, None]                                 # log(T - E_0)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
      lead = s1 + _log1m(np.exp(le[sl] - s1))                   # log(T - E_0 - E_c)
    lead[:, 1] = suffix[sl, 2]                                  # T - E_0 - E_1
    log_rest[:, 0, :] = lead
    log_rest[:, :, 0] = lead
    log_m = log_r[sl][:, :, None] + le[sl][:, None, :] - log_rest
    log_m[:, idx, idx] = -np.inf                                # b != c
    top = np.max(log_m, axis=(1, 2), keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    m = np.exp(log_m - top)
    total = m.sum(axis=(1, 2))
    rest = total[:, None] - m.sum(axis=2) - m.sum(axis=1)       # terms without a
    for lead_item in (0, 1):                                    # their terms dominate
      keep = np.ones(a, bool)
      keep[lead_item] = False
      rest[:, lead_item] = m[:, keep][:, :, keep].sum(axis=(1, 2))
    with np.errstate(divide='ignore'):
      out[sl, :, 2] = np.exp(log_p[sl] + np.log(np.maximum(rest, 0.0)) + top[:, :, 0])
  return out


def _plackett_luce_mc(logits: np.ndarray, n_positions: int, n_sim: int,
                      seed: int) -> np.ndarray:
  """Position marginals of Plackett-Luce by Gumbel top-k sampling."""
  rng = np.random.default_rng(seed)
  n, a = logits.shape
  out = np.zeros((n, a, n_positions))
  for i in range(n):
    g = logits[i][None, :] + rng.gumbel(size=(n_sim, a))
    top = np.argsort(-g, axis=1)[:, :n_positions]
    for k in range(n_positions):
      out[i, :, k] = np.bincount(top[:, k], minlength=a) / n_sim
  return out


def bernoulli_ts(alpha, beta, n_positions: int = 1, n_sim: int = 100_000,
                 seed: int = 0, batch: int = 10_000) -> np.ndarray:
  """Bernoulli Thompson sampling's (actions, positions) distribution by Monte Carlo:
  ``n_sim`` draws of one click rate per action from Beta(alpha, beta), the top
  ``n_positions`` shown. Context-free, as the Open Bandit Dataset's BTS policy."""
  a = np.asarray(alpha, np.float64).ravel()
  b = np.asarray(beta, np.float64).ravel()
  if a.shape != b.shape:
    raise ValueError(f'alpha and beta differ in length: {a.size} and {b.size}')
  bad = ~((a > 0) & (b > 0))
  if bad.any():
    raise ValueError(f'Beta parameters must be > 0; not for actions '
                     f'{np.flatnonzero(bad)[:10].tolist()}')
  if n_sim < 1:
    raise ValueError(f'n_sim must be >= 1, got {n_sim}')
  _check_slate(a.size, n_positions)
  rng = np.random.default_rng(seed)
  counts = np.zeros((a.size, n_positions))
  done = 0
  while done < n_sim:
    m = min(batch, n_sim - done)
    theta = rng.beta(a[None, :], b[None, :], size=(m, a.size))
    top = np.argpartition(-theta, n_positions - 1, axis=1)[:, :n_positions]
    order = np.argsort(-np.take_along_axis(theta, top, axis=1), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    for k in range(n_positions):
      counts[:, k] += np.bincount(top[:, k], minlength=a.size)
    done += m
  return counts / n_sim


def bts_prior(path: str, campaign: str) -> Tuple[np.ndarray, np.ndarray]:
  """(alpha, beta) per action of the Open Bandit Dataset's BTS prior file
  (``prior_bts.yaml``: ``<campaign>: {alpha: [...], beta: [...]}``)."""
  import yaml
  with open(path) as f:
    prior = yaml.safe_load(f)
  if campaign not in prior:
    raise ValueError(f'{path} has no campaign {campaign!r}; it has {sorted(prior)}')
  return (np.asarray(prior[campaign]['alpha'], np.float64),
          np.asarray(prior[campaign]['beta'], np.float64))


def model_scores(saved_model_dir: str, logs, per_action=None, position: int = 0) -> np.ndarray:
  """A CTR model's predicted click for every (round, action) of ``logs``: the
  SavedModel's ``predict_raw`` signature on each candidate, at slate position
  ``position`` when the model reads the position (it ranks the items by their click
  rate in one slot). (rounds, actions)."""
  from policy.ope import reward_model
  fn = reward_model.predict_raw(saved_model_dir)          # loaded once
  single = dataclasses_replace(logs, n_positions=1)
  cand = reward_model.candidate_features(single, np.arange(len(logs)),
                                         reward_model.model_features(fn), per_action)
  if 'position' in cand:
    cand['position'] = np.full_like(cand['position'], position)
  return reward_model.score(fn, cand).reshape(len(logs), logs.n_actions)
