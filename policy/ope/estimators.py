"""Off-policy estimators: the value of an evaluation policy from another policy's logs.

Notation, for logged round i (context x_i, action a_i shown at position k_i, reward r_i,
logging propensity p_i = pi_b(a_i | x_i, k_i)):

* ``pi_e(a | x_i, k)``: the evaluation policy's action distribution, shape
  (rounds, actions, positions), or (actions, positions) when it ignores the context;
* w_i = pi_e(a_i | x_i, k_i) / p_i, the importance weight;
* q_hat(x_i, a, k): the reward model's prediction, shape (rounds, actions, positions);
  q_i = q_hat(x_i, a_i, k_i) and dm_i = sum_a pi_e(a | x_i, k_i) q_hat(x_i, a, k_i).

The value is that of the logged slots: the mean reward per (round, position) the policy
would have earned, as the Open Bandit Pipeline defines it for slates.

Every estimator here has the form  V = mean(d) + mean(u) / mean(v)  (v = 1 when absent):

==========  ===========  ==================================  ====================
estimator   d            u                                   v
==========  ===========  ==================================  ====================
ips         0            w r                                 1
snips       0            w r                                 w
dm          dm           0                                   1
dr          dm           w (r - q)                           1
sndr        dm           w (r - q)                           w
switch-dr   dm           1{w <= tau} w (r - q)               1
dros        dm           lambda w / (w^2 + lambda) (r - q)   1
==========  ===========  ==================================  ====================

So one pass computes w, q and dm for all of them, and:

* the standard error is the delta method's, from the influence of each row,
  psi_i = (d_i - mean d) + (u_i - V_c v_i) / mean(v), with V_c = mean(u) / mean(v);
* the confidence interval is the percentile interval of the bootstrap: ``n_bootstrap``
  resamples of the rows with replacement, the self-normalised estimators renormalised in
  every resample. All estimators share the same resamples: each resample is a vector of
  row counts, and one matrix product of the counts with the rows' (d, u, v) columns
  gives every estimator's sums.

Switch-DR's tau and DRos's lambda are tuned per data set, like the Open Bandit
Pipeline's MSE-based tuning: from a grid (``inf``, which is DR, included), the one that minimises an
estimated MSE, bias_bound^2 + SE^2, where bias_bound is a high-probability (1 - delta)
upper bound of |mean((w - w') (r - q))| (w' the switched or shrunk weight, so the bias
against the unbiased DR). The tuned value is reported with the estimate; the bootstrap
keeps it fixed.

Inputs are checked (:func:`check`) before anything is computed; a bad row is named in
the error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

ALL = ('ips', 'snips', 'dm', 'dr', 'sndr', 'switch-dr', 'dros')
NEEDS_REWARD_MODEL = frozenset({'dm', 'dr', 'sndr', 'switch-dr', 'dros'})
CHUNK = 1 << 16            # rows per block when gathering from (rounds, actions, positions)
SUM_TOLERANCE = 1e-4       # |sum_a pi_e(a | x, k) - 1| allowed per round and position


class OPEInputError(ValueError):
  """Bad OPE input; the message names the offending rows."""


def name_rows(mask: np.ndarray, limit: int = 10) -> str:
  idx = np.flatnonzero(mask)
  shown = ', '.join(str(i) for i in idx[:limit])
  more = f' (first {limit} of {idx.size})' if idx.size > limit else ''
  return f'row{"s" if idx.size > 1 else ""} {shown}{more}'


@dataclasses.dataclass
class Feedback:
  """Logged bandit feedback and what an estimate needs besides the policy.

  ``action`` and ``position`` are 0-based indices; ``pscore`` is the logging policy's
  probability of the logged action at the logged position; ``reward_hat`` is
  q_hat(x_i, a, k) of shape (rounds, actions, positions), needed by DM and the DR family.
  """
  reward: np.ndarray
  action: np.ndarray
  pscore: np.ndarray
  position: Optional[np.ndarray] = None
  reward_hat: Optional[np.ndarray] = None
  n_actions: Optional[int] = None
  n_positions: Optional[int] = None

  def __post_init__(self):
    self.reward = np.asarray(self.reward, np.float64).ravel()
    self.action = np.asarray(self.action).ravel()
    self.pscore = np.asarray(self.pscore, np.float64).ravel()
    n = self.reward.size
    self.position = (np.zeros(n, np.int64) if self.position is None
                     else np.asarray(self.position).ravel())
    if self.reward_hat is not None:
      self.reward_hat = np.asarray(self.reward_hat)
      if self.reward_hat.ndim == 2:      # (rounds, actions): a single position
        self.reward_hat = self.reward_hat[:, :, None]

  @property
  def n(self) -> int:
    return self.reward.size


def _as_distribution(action_dist) -> np.ndarray:
  d = np.asarray(action_dist)
  if d.ndim not in (2, 3):
    raise OPEInputError(f'the action distribution must be (rounds, actions, positions) or '
                        f'(actions, positions); got shape {d.shape}')
  return d


def as_index(values: np.ndarray, name: str) -> np.ndarray:
  """``values`` as int64 indices, or :class:`OPEInputError` naming the non-integer rows."""
  v = np.asarray(values)
  if np.issubdtype(v.dtype, np.integer):
    return v.astype(np.int64, copy=False)
  num = v.astype(np.float64) if v.dtype.kind in 'fb' else np.full(v.shape, np.nan)
  whole = np.isfinite(num) & (num % 1 == 0)
  if not whole.all():
    raise OPEInputError(f'{name} must be an integer index; it is not in {name_rows(~whole)}')
  return num.astype(np.int64)


def check_rows(fb: Feedback, n_actions: int, n_positions: int) -> None:
  """The logged rows: lengths, rewards, propensities, and action and position indices
  inside their sets (made int64 in place). :class:`OPEInputError` names the bad rows."""
  n = fb.n
  if n == 0:
    raise OPEInputError('no logged rounds')
  for name in ('action', 'pscore', 'position'):
    if getattr(fb, name).size != n:
      raise OPEInputError(f'{name} has {getattr(fb, name).size} rows, reward has {n}')
  bad = ~np.isfinite(fb.reward)
  if bad.any():
    raise OPEInputError(f'reward is missing or not finite in {name_rows(bad)}')
  bad = ~((fb.pscore > 0) & (fb.pscore <= 1))     # NaN fails too
  if bad.any():
    raise OPEInputError(f'propensity must be in (0, 1]; it is not in {name_rows(bad)} '
                        f'(values {fb.pscore[bad][:5].tolist()})')
  for name, size in (('action', n_actions), ('position', n_positions)):
    v = as_index(getattr(fb, name), name)
    setattr(fb, name, v)
    bad = (v < 0) | (v >= size)
    if bad.any():
      raise OPEInputError(f'{name} outside the {name} set [0, {size}) in {name_rows(bad)} '
                          f'(values {v[bad][:5].tolist()})')


def check(fb: Feedback, action_dist, needs_reward_model: bool = False) -> Tuple[int, int]:
  """Raises :class:`OPEInputError` naming the rows of any bad input; returns (actions,
  positions)."""
  n = fb.n
  dist = _as_distribution(action_dist)
  n_actions = fb.n_actions or dist.shape[-2]
  n_positions = fb.n_positions or dist.shape[-1]
  if dist.shape[-2:] != (n_actions, n_positions):
    raise OPEInputError(f'the action distribution covers {dist.shape[-2]} actions and '
                        f'{dist.shape[-1]} positions; the logs have {n_actions} and '
                        f'{n_positions}')
  if dist.ndim == 3 and dist.shape[0] != n:
    raise OPEInputError(f'the action distribution has {dist.shape[0]} rounds, the logs {n}')
  check_rows(fb, n_actions, n_positions)
  # The evaluation policy: a distribution over actions for every round and position.
  if dist.ndim == 2:
    sums = dist.sum(axis=0, dtype=np.float64)[None, :]
    neg = (dist.min(axis=0) < 0)[None, :]
  else:                        # in row blocks: 1M x 80 x 3 at once is slow and large
    sums = np.empty((n, n_positions))
    neg = np.zeros((n, n_positions), bool)
    ones = np.ones(n_actions, dist.dtype if dist.dtype.kind == 'f' else np.float64)
    for s in range(0, n, CHUNK):
      block = dist[s:s + CHUNK]
      sums[s:s + CHUNK] = ones @ block       # a sum over actions, as a (fast) product
      if block.min() < 0:
        neg[s:s + CHUNK] = (block < 0).any(axis=1)
  bad = (np.abs(sums - 1) > SUM_TOLERANCE) | neg | ~np.isfinite(sums)
  if bad.any():
    if dist.ndim == 2:
      raise OPEInputError(f'the action distribution does not sum to 1 over actions at '
                          f'position(s) {np.flatnonzero(bad[0]).tolist()} (sums '
                          f'{sums[0][bad[0]][:5].tolist()})')
    raise OPEInputError(f'the action distribution does not sum to 1 over actions (or has '
                        f'a negative entry) in {name_rows(bad.any(axis=1))}')
  if needs_reward_model:
    if fb.reward_hat is None:
      raise OPEInputError('DM and the DR estimators need reward_hat, the reward model\'s '
                          'predictions of shape (rounds, actions, positions)')
    if fb.reward_hat.shape != (n, n_actions, n_positions):
      raise OPEInputError(f'reward_hat has shape {fb.reward_hat.shape}; expected '
                          f'{(n, n_actions, n_positions)}')
  return n_actions, n_positions


@dataclasses.dataclass
class Factual:
  """What every estimator reads, computed once: the rewards, importance weights, and
  (with a reward model) q_i and dm_i."""
  r: np.ndarray
  w: np.ndarray
  q: Optional[np.ndarray]
  dm: Optional[np.ndarray]


def factual(fb: Feedback, action_dist) -> Factual:
  """Gathers pi_e(a_i | x_i, k_i), q_i and dm_i, in row blocks (a (rounds, actions)
  slice of 1M x 80 doubles would be 640 MB)."""
  dist = _as_distribution(action_dist)
  n = fb.n
  if dist.ndim == 2:
    pi = dist[fb.action, fb.position].astype(np.float64)
  else:
    pi = dist[np.arange(n), fb.action, fb.position].astype(np.float64)
  q = dm = None
  if fb.reward_hat is not None:
    q = fb.reward_hat[np.arange(n), fb.action, fb.position].astype(np.float64)
    dm = np.empty(n)
    for s in range(0, n, CHUNK):
      e = min(n, s + CHUNK)
      rows = np.arange(s, e)
      k = fb.position[s:e]
      q_at_k = fb.reward_hat[rows, :, k]                      # (block, actions)
      pi_at_k = dist[:, k].T if dist.ndim == 2 else dist[rows, :, k]
      dm[s:e] = np.einsum('ij,ij->i', pi_at_k, q_at_k, dtype=np.float64)
  return Factual(fb.reward, pi / fb.pscore, q, dm)


@dataclasses.dataclass(frozen=True)
class Estimate:
  """One estimator's result. ``ci`` is the (1 - alpha) percentile bootstrap interval."""
  estimator: str
  value: float
  se: float
  ci_low: float
  ci_high: float
  alpha: float
  n: int
  params: Dict[str, float] = dataclasses.field(default_factory=dict)

  def as_dict(self) -> Dict[str, object]:
    return dataclasses.asdict(self)


@dataclasses.dataclass
class _Parts:
  d: Optional[np.ndarray]
  u: Optional[np.ndarray]
  v: Optional[np.ndarray]
  params: Dict[str, float]


def _value(p: _Parts) -> float:
  d = p.d.mean() if p.d is not None else 0.0
  if p.u is None:
    return float(d)
  mv = p.v.mean() if p.v is not None else 1.0
  return float(d + p.u.mean() / mv) if mv > 0 else float('nan')


def _se(p: _Parts, n: int) -> float:
  psi = np.zeros(n) if p.d is None else p.d - p.d.mean()
  if p.u is not None:
    if p.v is None:
      psi = psi + p.u - p.u.mean()
    else:
      mv = p.v.mean()
      if mv <= 0:
        return float('nan')
      psi = psi + (p.u - p.u.mean() / mv * p.v) / mv
  return float(psi.std(ddof=1) / math.sqrt(n)) if n > 1 else float('nan')


def _bias_bound(b: np.ndarray, delta: float) -> float:
  """A (1 - delta) upper bound of |E b| from its sample: |mean| + z * SE."""
  from statistics import NormalDist
  z = NormalDist().inv_cdf(1 - delta / 2)
  return float(abs(b.mean()) + z * b.std(ddof=1) / math.sqrt(b.size)) if b.size > 1 else 0.0


def _tuned(name: str, f: Factual, grid: Sequence[float], weight_fn, delta: float) -> _Parts:
  """The grid value that minimises bias_bound^2 + SE^2 (see the module docstring)."""
  resid = f.r - f.q
  dr_u = f.w * resid
  best, best_mse = None, float('inf')
  for h in grid:
    u = dr_u if math.isinf(h) else weight_fn(f.w, h) * resid
    parts = _Parts(f.dm, u, None, {})
    bias = 0.0 if math.isinf(h) else _bias_bound(dr_u - u, delta)
    mse = bias ** 2 + _se(parts, f.r.size) ** 2
    if mse < best_mse:
      best, best_mse = (h, parts), mse
  h, parts = best
  parts.params = {'tau' if name == 'switch-dr' else 'lambda': h, 'estimated_mse': best_mse}
  return parts


def _grid(values: np.ndarray, size: int) -> List[float]:
  qs = np.unique(np.quantile(values, np.linspace(0.5, 1.0, size)))
  return [float(x) for x in qs if x > 0] + [float('inf')]


def parts(name: str, f: Factual, delta: float = 0.05,
          hyper: Optional[Dict[str, Sequence[float]]] = None) -> _Parts:
  """The (d, u, v) columns of estimator ``name`` (see the module docstring)."""
  hyper = hyper or {}
  if name == 'ips':
    return _Parts(None, f.w * f.r, None, {})
  if name == 'snips':
    return _Parts(None, f.w * f.r, f.w, {})
  if f.q is None:
    raise OPEInputError(f'{name} needs the reward model\'s predictions (reward_hat)')
  if name == 'dm':
    return _Parts(f.dm, None, None, {})
  if name == 'dr':
    return _Parts(f.dm, f.w * (f.r - f.q), None, {})
  if name == 'sndr':
    return _Parts(f.dm, f.w * (f.r - f.q), f.w, {})
  if name == 'switch-dr':
    grid = hyper.get('switch-dr') or _grid(f.w, 12)
    return _tuned(name, f, grid, lambda w, tau: np.where(w <= tau, w, 0.0), delta)
  if name == 'dros':
    grid = hyper.get('dros') or _grid(f.w ** 2, 12)
    return _tuned(name, f, grid, lambda w, lam: lam * w / (w * w + lam), delta)
  raise OPEInputError(f'unknown estimator {name!r}; choose from {", ".join(ALL)}')


def _bootstrap(all_parts: Dict[str, _Parts], n: int, n_bootstrap: int,
               seed: int) -> Dict[str, np.ndarray]:
  """Every estimator's value on the same ``n_bootstrap`` Poisson resamples of the rows."""
  columns, index = [np.ones(n)], {}

  def col(a):
    if a is None:
      return None
    for j, c in enumerate(columns):
      if c is a:
        return j
    columns.append(a)
    return len(columns) - 1

  for name, p in all_parts.items():
    index[name] = (col(p.d), col(p.u), col(p.v))
  rng = np.random.default_rng(seed)
  matrix = np.stack(columns, axis=1)                        # (rows, columns)
  sums = np.empty((n_bootstrap, len(columns)))
  per_block = max(1, (1 << 24) // n)                        # about 16M counts per block
  for b0 in range(0, n_bootstrap, per_block):
    b1 = min(n_bootstrap, b0 + per_block)
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                       for _ in range(b0, b1)]).astype(np.float64)
    sums[b0:b1] = counts @ matrix
  total = sums[:, 0]
  out = {}
  with np.errstate(divide='ignore', invalid='ignore'):
    for name, (jd, ju, jv) in index.items():
      value = sums[:, jd] / total if jd is not None else np.zeros(n_bootstrap)
      if ju is not None:
        value = value + sums[:, ju] / (sums[:, jv] if jv is not None else total)
      out[name] = value
  return out


def estimate(fb: Feedback, action_dist, estimators: Iterable[str] = ALL,
             alpha: float = 0.05, n_bootstrap: int = 200, seed: int = 0,
             delta: float = 0.05,
             hyper: Optional[Dict[str, Sequence[float]]] = None) -> List[Estimate]:
  """Estimates the evaluation policy's value with each of ``estimators``.

  ``action_dist``: pi_e, (rounds, actions, positions) or (actions, positions).
  ``hyper``: optional grids for ``switch-dr`` (tau) and ``dros`` (lambda).
  """
  return _run(fb, action_dist, estimators, alpha, n_bootstrap, seed, delta, hyper,
              lift=False)


def lift(fb: Feedback, action_dist, estimators: Iterable[str] = ('dr',),
         alpha: float = 0.05, n_bootstrap: int = 200, seed: int = 0, delta: float = 0.05,
         hyper: Optional[Dict[str, Sequence[float]]] = None) -> List[Estimate]:
  """The evaluation policy's value minus the logging policy's (the logged mean reward),
  per estimator: V_hat(pi_e) - mean(r). Its standard error and interval account for
  both being measured on the same rows (each row's d column becomes d_i - r_i)."""
  return _run(fb, action_dist, estimators, alpha, n_bootstrap, seed, delta, hyper,
              lift=True)


def _run(fb, action_dist, estimators, alpha, n_bootstrap, seed, delta, hyper, lift):
  names = list(dict.fromkeys(estimators))
  unknown = [e for e in names if e not in ALL]
  if unknown:
    raise OPEInputError(f'unknown estimator(s) {unknown}; choose from {", ".join(ALL)}')
  if not 0 < alpha < 1:
    raise OPEInputError(f'alpha must be in (0, 1), got {alpha}')
  check(fb, action_dist, needs_reward_model=bool(NEEDS_REWARD_MODEL & set(names)))
  f = factual(fb, action_dist)
  all_parts = {name: parts(name, f, delta, hyper) for name in names}
  if lift:
    for p in all_parts.values():
      p.d = -f.r if p.d is None else p.d - f.r
  boot = _bootstrap(all_parts, fb.n, n_bootstrap, seed) if n_bootstrap > 0 else {}
  out = []
  for name, p in all_parts.items():
    lo = hi = float('nan')
    if name in boot:
      b = boot[name][np.isfinite(boot[name])]
      if b.size:
        lo, hi = (float(x) for x in np.quantile(b, [alpha / 2, 1 - alpha / 2]))
    out.append(Estimate(name, _value(p), _se(p, fb.n), lo, hi, alpha, fb.n, p.params))
  return out
