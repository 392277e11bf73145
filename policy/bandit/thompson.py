"""Bandit policies: Thompson sampling and the baselines it is measured against.

Two posteriors, each usable with four ways of choosing (``strategy``):

* ``thompson``: draw the parameters from the posterior, play the best arm under the draw
  (one draw per decision, so a batch of contexts explores independently);
* ``greedy``: play the best arm under the posterior mean;
* ``epsilon``: greedy, but a uniformly random arm with probability ``epsilon``;
* ``ucb``: the mean plus ``alpha`` posterior standard deviations (UCB1-style for
  Beta-Bernoulli, LinUCB for the linear model).

:class:`BetaBernoulli`
    One Beta(a, b) per arm over its click rate, no context: the cold-start default.
:class:`LinearBandit`
    Bayesian linear regression of the reward on features phi(x, a) (:mod:`policy.bandit.features`),
    theta ~ N(mu, A^-1) with A = prior_precision I + Phi^T Phi / noise
                   and mu = A^-1 Phi^T r / noise.
    With one-hot context features per arm it is linear TS (Agrawal and Goyal, 2013); with
    phi from the CTR model's last hidden layer it is neural-linear TS (Riquelme et al., 2018).
:class:`CalibrationTS`
    Gamma-Poisson posteriors over the calibration of a pCTR, per pCTR bucket: clicks ~
    Poisson(kappa_k sum pCTR). The bidder's exploration (:mod:`policy.bidding.bidders`).

Every policy takes batched updates (``update`` with arrays), gives its action
distribution by Monte Carlo (``action_distribution``, what off-policy evaluation needs:
:mod:`policy.ope`), and saves and restores its posterior (``save`` / ``load``: one
``.npz`` file holding the arrays and the settings).
"""

from __future__ import annotations

import json
from typing import Optional

import numpy as np
from scipy.linalg import solve_triangular

STRATEGIES = ('thompson', 'greedy', 'epsilon', 'ucb')


class BanditStateError(ValueError):
  """A saved posterior that does not fit the policy it is loaded into."""


def _check_strategy(strategy: str) -> None:
  if strategy not in STRATEGIES:
    raise ValueError(f'strategy must be one of {STRATEGIES}, got {strategy!r}')


class _Policy:
  """Shared: seeding, epsilon mixing, Monte Carlo action distributions, save/load."""

  strategy: str
  epsilon: float
  n_arms: int

  def _scores(self, contexts, n: int) -> np.ndarray:
    raise NotImplementedError

  def select(self, contexts=None, n: Optional[int] = None) -> np.ndarray:
    """One arm per context (or ``n`` arms for a context-free policy), shape (n,)."""
    n = len(contexts) if contexts is not None else int(n or 1)
    arms = np.argmax(self._scores(contexts, n), axis=1)
    if self.strategy == 'epsilon':
      explore = self.rng.random(n) < self.epsilon
      arms = np.where(explore, self.rng.integers(0, self.n_arms, n), arms)
    return arms

  def action_distribution(self, contexts=None, n: Optional[int] = None,
                          samples: int = 1000) -> np.ndarray:
    """P(arm | context) by Monte Carlo over ``samples`` decisions, shape (n, arms);
    exact for greedy and epsilon (ties go to the lowest arm, as in ``select``)."""
    n = len(contexts) if contexts is not None else int(n or 1)
    if self.strategy in ('greedy', 'ucb', 'epsilon'):
      best = np.argmax(self._scores(contexts, n), axis=1)
      dist = np.zeros((n, self.n_arms))
      dist[np.arange(n), best] = 1.0
      if self.strategy == 'epsilon':
        dist = (1 - self.epsilon) * dist + self.epsilon / self.n_arms
      return dist
    counts = np.zeros((n, self.n_arms))
    for _ in range(samples):
      counts[np.arange(n), np.argmax(self._scores(contexts, n), axis=1)] += 1
    return counts / samples

  def _settings(self) -> dict:
    raise NotImplementedError

  def _arrays(self) -> dict:
    raise NotImplementedError

  def save(self, path: str) -> None:
    """The posterior and settings as one ``.npz``."""
    np.savez(path, _kind=type(self).__name__, _settings=json.dumps(self._settings()),
             **self._arrays())

  def _check_arms(self, arms: np.ndarray) -> None:
    if arms.size and (arms.min() < 0 or arms.max() >= self.n_arms):
      raise ValueError(f'arms must be in [0, {self.n_arms}), got {arms.min()}..{arms.max()}')

  def _refresh(self) -> None:
    """Recomputes what derives from the posterior arrays (none by default)."""

  def load(self, path: str):
    """Restores the posterior saved by ``save``; returns the policy."""
    z = self._restore(path)
    for name in self._arrays():
      setattr(self, name, z[name].astype(np.float64))
    self._refresh()
    return self

  def _restore(self, path: str) -> dict:
    with np.load(path, allow_pickle=False) as z:
      kind = str(z['_kind'])
      if kind != type(self).__name__:
        raise BanditStateError(f'{path} holds a {kind} posterior, not a {type(self).__name__}')
      settings = json.loads(str(z['_settings']))
      arrays = {k: z[k] for k in z.files if not k.startswith('_')}
    mine = self._arrays()
    for k, v in mine.items():
      if k not in arrays or arrays[k].shape != v.shape:
        raise BanditStateError(f'{path}: {k} has shape '
                               f'{arrays[k].shape if k in arrays else None}, this policy '
                               f'needs {v.shape} (settings saved: {settings})')
    return arrays


class BetaBernoulli(_Policy):
  """Beta-Bernoulli Thompson sampling (and baselines) over ``n_arms`` click rates."""

  def __init__(self, n_arms: int, strategy: str = 'thompson', prior=(1.0, 1.0),
               epsilon: float = 0.1, alpha: float = 1.0, seed: int = 0):
    _check_strategy(strategy)
    if n_arms < 1:
      raise ValueError(f'n_arms must be >= 1, got {n_arms}')
    if min(prior) <= 0:
      raise ValueError(f'Beta prior must be positive, got {prior}')
    self.n_arms, self.strategy, self.epsilon, self.alpha = n_arms, strategy, epsilon, alpha
    self.prior = tuple(float(p) for p in prior)
    self.a = np.full(n_arms, self.prior[0])
    self.b = np.full(n_arms, self.prior[1])
    self.rng = np.random.default_rng(seed)

  @property
  def mean(self) -> np.ndarray:
    return self.a / (self.a + self.b)

  def _scores(self, contexts, n):
    if self.strategy == 'thompson':
      return self.rng.beta(self.a, self.b, (n, self.n_arms))
    m = self.mean
    if self.strategy == 'ucb':
      sd = np.sqrt(self.a * self.b / ((self.a + self.b) ** 2 * (self.a + self.b + 1)))
      m = m + self.alpha * sd
    return np.broadcast_to(m, (n, self.n_arms))

  def update(self, arms, rewards) -> None:
    """Batched: ``arms`` and ``rewards`` (0/1 or in [0, 1]) of any number of rounds."""
    arms, rewards = np.asarray(arms), np.asarray(rewards, np.float64)
    if arms.shape != rewards.shape:
      raise ValueError(f'arms {arms.shape} and rewards {rewards.shape} differ in shape')
    self._check_arms(arms)
    if rewards.size and (rewards.min() < 0 or rewards.max() > 1):
      raise ValueError('Beta-Bernoulli rewards must be in [0, 1]')
    self.a += np.bincount(arms, rewards, self.n_arms)
    self.b += np.bincount(arms, 1 - rewards, self.n_arms)

  def _settings(self):
    return {'n_arms': self.n_arms, 'strategy': self.strategy, 'prior': self.prior,
            'epsilon': self.epsilon, 'alpha': self.alpha}

  def _arrays(self):
    return {'a': self.a, 'b': self.b}



class LinearBandit(_Policy):
  """Bayesian linear regression over phi(x, a), with TS, greedy, epsilon or LinUCB.

  Args:
    features: a feature map (:mod:`policy.bandit.features`): ``features(contexts)`` ->
      (n, arms, d). Its ``n_arms`` and ``dim`` size the posterior.
    noise: the reward noise variance (p (1 - p) at the typical click rate).
    prior_precision: the Gaussian prior's precision on every weight.
  """

  def __init__(self, features, strategy: str = 'thompson', noise: float = 0.02,
               prior_precision: float = 1.0, epsilon: float = 0.1, alpha: float = 1.0,
               seed: int = 0):
    _check_strategy(strategy)
    if noise <= 0 or prior_precision <= 0:
      raise ValueError(f'noise and prior_precision must be > 0, got {noise}, {prior_precision}')
    self.features, self.strategy = features, strategy
    self.n_arms, self.dim = features.n_arms, features.dim
    self.noise, self.prior_precision = float(noise), float(prior_precision)
    self.epsilon, self.alpha = epsilon, alpha
    self.precision = np.eye(self.dim) * self.prior_precision
    self.xty = np.zeros(self.dim)
    self.rng = np.random.default_rng(seed)
    self._refresh()

  def _refresh(self) -> None:
    self._chol_precision = np.linalg.cholesky(self.precision)
    self.mean = np.linalg.solve(self.precision, self.xty)

  def _scores(self, contexts, n):
    phi = self.features(contexts)                              # (n, arms, d)
    if self.strategy == 'thompson':
      # theta = mu + L^-T z with L L^T = A: one posterior draw per decision.
      z = self.rng.standard_normal((n, self.dim))
      draws = self.mean + solve_triangular(self._chol_precision, z.T, lower=True,
                                           trans='T').T
      return np.einsum('nad,nd->na', phi, draws)
    scores = phi @ self.mean
    if self.strategy == 'ucb':
      w = solve_triangular(self._chol_precision, phi.reshape(-1, self.dim).T, lower=True)
      scores = scores + self.alpha * np.sqrt((w * w).sum(axis=0)).reshape(n, self.n_arms)
    return scores

  def update(self, contexts, arms, rewards) -> None:
    """Batched: one posterior update from any number of (context, arm, reward) rounds."""
    arms, rewards = np.asarray(arms), np.asarray(rewards, np.float64)
    if arms.shape != rewards.shape or len(arms) != len(contexts):
      raise ValueError(f'{len(contexts)} contexts, arms {arms.shape}, rewards '
                       f'{rewards.shape}: one of each per round')
    self._check_arms(arms)
    phi = self.features(contexts)[np.arange(len(arms)), arms]  # (n, d)
    self.precision += phi.T @ phi / self.noise
    self.xty += phi.T @ rewards / self.noise
    self._refresh()

  def _settings(self):
    return {'n_arms': self.n_arms, 'dim': self.dim, 'strategy': self.strategy,
            'noise': self.noise, 'prior_precision': self.prior_precision,
            'epsilon': self.epsilon, 'alpha': self.alpha}

  def _arrays(self):
    return {'precision': self.precision, 'xty': self.xty}



class CalibrationTS:
  """Thompson sampling over how far a pCTR is off, per pCTR bucket.

  Bucket k's clicks are Poisson(kappa_k * sum of its pCTRs) with kappa_k ~ Gamma(a_k, b_k),
  prior Gamma(s, s) (mean 1: trust the model, worth ``s`` expected clicks). ``sample``
  draws kappa for each pCTR from its bucket, ``update`` adds the clicks and pCTRs of the
  auctions won (the only ones whose click is seen). ``wave`` is how many episodes run on
  one posterior snapshot before the batched update.
  """

  def __init__(self, edges, prior_strength: float = 5.0, wave: int = 10, seed: int = 0):
    self.edges = np.asarray(edges, np.float64)
    if self.edges.ndim != 1 or np.any(np.diff(self.edges) <= 0):
      raise ValueError('edges must be increasing')
    if prior_strength <= 0 or wave < 1:
      raise ValueError(f'prior_strength must be > 0 and wave >= 1, got {prior_strength}, {wave}')
    k = len(self.edges) + 1
    self.shape = np.full(k, float(prior_strength))
    self.rate = np.full(k, float(prior_strength))
    self.wave = int(wave)
    self.rng = np.random.default_rng(seed)

  @classmethod
  def from_quantiles(cls, pctr: np.ndarray, buckets: int = 10, **kwargs) -> 'CalibrationTS':
    """Buckets at the quantiles of ``pctr`` (e.g. the validation episodes')."""
    q = np.unique(np.quantile(pctr, np.linspace(0, 1, buckets + 1)[1:-1]))
    return cls(q, **kwargs)

  def bucket(self, pctr) -> np.ndarray:
    return np.searchsorted(self.edges, pctr, side='right')

  def sample(self, pctr) -> np.ndarray:
    k = self.bucket(pctr)
    return self.rng.gamma(self.shape[k], 1.0 / self.rate[k])

  @property
  def mean(self) -> np.ndarray:
    return self.shape / self.rate

  def update(self, pctr, clicks) -> None:
    k = self.bucket(np.asarray(pctr))
    n = len(self.shape)
    self.shape += np.bincount(k, np.asarray(clicks, np.float64), n)
    self.rate += np.bincount(k, np.asarray(pctr, np.float64), n)

  def save(self, path: str) -> None:
    np.savez(path, _kind='CalibrationTS', edges=self.edges, shape=self.shape, rate=self.rate,
             wave=self.wave)

  @classmethod
  def load(cls, path: str, seed: int = 0) -> 'CalibrationTS':
    with np.load(path, allow_pickle=False) as z:
      if str(z['_kind']) != 'CalibrationTS':
        raise BanditStateError(f'{path} holds a {z["_kind"]} posterior, not a CalibrationTS')
      out = cls(z['edges'], wave=int(z['wave']), seed=seed)
      out.shape, out.rate = z['shape'].astype(np.float64), z['rate'].astype(np.float64)
    return out
