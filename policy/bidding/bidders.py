"""Bidding rules for second-price auctions under a per-episode budget.

Every bidder is vectorised over episodes (and, for tuning, over parameter settings laid
along the same axis): :mod:`policy.bidding.replay` calls

    state = bidder.start(episodes, horizon, budget)
    bid   = bidder.bid(state, t, pctr, remaining)          # (E,) for auction t
    bidder.observe(state, t, won, cost, click, pctr)        # after it

so that episode e's bid at t sees only its own auctions before t. Parameters may be
scalars or (E,) arrays.

* :class:`ConstantBid`: the same bid for every auction.
* :class:`LinearBid` (Lin, Perlich et al. 2012): ``bid = b0 * pCTR / base_ctr``; b0 is tuned
  on validation data (:mod:`policy.bidding.tuning`).
* :class:`LagrangianBid`: value bidding with a budget multiplier,
  ``bid = v * pCTR / (1 + lambda)``. For a budget-constrained click maximiser this is the
  optimal rule (the LP's dual, :mod:`policy.bidding.hindsight`); lambda is learnt online,
  so that the budget is spent evenly over the episode rather than exhausted early:

  - ``pacing='dual'``: a dual (sub)gradient step after every auction on
    u = log(1 + lambda): ``u += eta * (cost_t - rho_t) / rho_t``, where rho_t = remaining
    budget / remaining auctions is the spend rate that would land exactly on the budget.
    A win above the rate raises lambda (lower bids), auctions without spend lower it.
  - ``pacing='pid'``: a PID controller on the spend error against the ideal pace,
    e_t = (spent_t - B t / T) / B: ``u = u0 + kp e_t + ki mean(e) + kd (e_t - e_{t-1})``.

  u starts at ``u0`` (tuning sets it to the median hindsight multiplier of the
  validation episodes). ``objective='clicks'`` (the default) lets lambda go below 0 (bid
  above v when the budget is slack: all that is wanted is clicks); ``'surplus'`` keeps
  lambda >= 0, the rule for maximising v * clicks - cost.

  Ratio constraints get a pacer of their own: ``max_cpc`` C keeps the expected cost per
  click at most C (``sum cost <= C sum pCTR``). A second multiplier beta, starting at C,
  bids ``beta pCTR`` and takes a dual step in log space after every win on the
  violation (cost - C pCTR) / rho_t: it falls while the wins cost more than C per
  expected click and rises while they cost less. The bid is the lower of the two,
  ``pCTR min(v / (1 + lambda), beta)``: whichever constraint binds sets it (when the
  ratio binds, the budget is left partly unspent, as the constrained optimum does).
  ``min_roi`` R (value over cost, v clicks >= R cost) is the same with C = v / R.

  ``carry=True`` makes the start learnt across episodes, as a campaign that runs day after
  day would: episodes run in chronological waves of ``carry_wave`` (10 by default; the
  waves run one after another, the episodes of a wave side by side), and each wave starts
  from the mean, over the episodes already run, of each episode's mean u, the tuned u0
  counting as one more episode. Waves of one episode are the strict online rule but
  replay at about 37 s per 1M auctions; waves of 10 replay at about 3 s
  (``python -m bench.bidding --parts speed``). Tuning fixes u0 from the validation
  episodes; when the test traffic differs from them (campaign 2997: its test pCTRs average
  0.0039 against 0.0064 in validation), the pacer otherwise re-learns the same multiplier
  in every episode. Like the Thompson posterior, the carried start persists across
  ``replay`` calls on one bidder; ``dataclasses.replace`` gives a fresh one.

  ``calibration`` (a :class:`policy.bandit.thompson.CalibrationTS`) makes it explore:
  each bid uses pCTR times a Thompson sample of that pCTR bucket's calibration, learnt
  from the clicks of the auctions won.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

PACINGS = ('dual', 'pid')
OBJECTIVES = ('clicks', 'surplus')


class Bidder:
  name = 'bidder'
  #: episodes run side by side share nothing, so all run at once; a learning bidder
  #: (one with a posterior across episodes) sets how many consecutive episodes share a
  #: posterior snapshot (its batched update happens after each such wave).
  wave: Optional[int] = None

  def start(self, episodes: int, horizon: int, budget: np.ndarray) -> dict:
    return {'budget': budget, 'horizon': horizon}

  def bid(self, state: dict, t: int, pctr: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    raise NotImplementedError

  def observe(self, state: dict, t: int, won, cost, click, pctr) -> None:
    pass

  def end_wave(self, state: dict, log: dict) -> None:
    """Called after each wave with its (E, T) won/click/pctr arrays."""

  def multiplier(self, state: dict) -> Optional[np.ndarray]:
    """lambda of each episode now, for traces (None: the rule has none)."""
    return None


@dataclasses.dataclass
class ConstantBid(Bidder):
  value: float
  name = 'constant'

  def bid(self, state, t, pctr, remaining):
    return np.broadcast_to(np.asarray(self.value, np.float64), pctr.shape)


@dataclasses.dataclass
class LinearBid(Bidder):
  b0: float
  base_ctr: float
  name = 'lin'

  def __post_init__(self):
    if not self.base_ctr > 0:
      raise ValueError(f'base_ctr must be > 0, got {self.base_ctr}')

  def bid(self, state, t, pctr, remaining):
    return np.asarray(self.b0) * pctr / self.base_ctr


@dataclasses.dataclass
class LagrangianBid(Bidder):
  value: float                       # v: value of a click, in price units
  u0: float = 0.0                    # initial log(1 + lambda)
  pacing: str = 'dual'
  eta: float = 0.005                 # dual step
  kp: float = 2.0                    # PID gains
  ki: float = 4.0
  kd: float = 0.0
  objective: str = 'clicks'
  max_cpc: Optional[float] = None
  min_roi: Optional[float] = None
  eta_ratio: float = 0.2             # step of the ratio pacer's log(beta / C)
  calibration: Optional[object] = None   # policy.bandit.thompson.CalibrationTS
  max_u: float = 20.0
  carry: bool = False                # learn the start u0 across episodes
  carry_wave: int = 10

  def __post_init__(self):
    if self.pacing not in PACINGS:
      raise ValueError(f'pacing must be one of {PACINGS}, got {self.pacing!r}')
    if self.objective not in OBJECTIVES:
      raise ValueError(f'objective must be one of {OBJECTIVES}, got {self.objective!r}')
    if not np.all(np.asarray(self.value) > 0):
      raise ValueError(f'value per click must be > 0, got {self.value}')
    if self.max_cpc is not None and self.min_roi is not None:
      raise ValueError('give max_cpc or min_roi, not both')
    for name in ('max_cpc', 'min_roi'):
      v = getattr(self, name)
      if v is not None and not v > 0:
        raise ValueError(f'{name} must be > 0, got {v}')
    if self.carry_wave < 1:
      raise ValueError(f'carry_wave must be >= 1, got {self.carry_wave}')
    waves = ([self.calibration.wave] if self.calibration is not None else []) + (
        [self.carry_wave] if self.carry else [])
    if waves:
      self.wave = min(waves)
    self._episode_u = []           # carry: each finished episode's mean u

  @property
  def name(self):
    base = 'lagrangian' if self.pacing == 'dual' else 'pid'
    return base + ('+ts' if self.calibration is not None else '')

  def start_u(self) -> np.ndarray:
    """The u each new episode starts from: u0, or with ``carry`` the running mean."""
    if not (self.carry and self._episode_u):
      return np.asarray(self.u0, np.float64)
    past = np.concatenate(self._episode_u)
    return np.asarray((np.sum(past) + np.mean(self.u0)) / (len(past) + 1))

  @property
  def cpc_cap(self) -> Optional[float]:
    if self.max_cpc is not None:
      return float(self.max_cpc)
    if self.min_roi is not None:
      return float(self.value) / float(self.min_roi)
    return None

  def start(self, episodes, horizon, budget):
    u = np.broadcast_to(self.start_u(), (episodes,)).copy()
    s = {'budget': budget, 'horizon': horizon, 'u': u, 'u0': u.copy(),
         'log_beta': np.zeros(episodes), 'spent': np.zeros(episodes),
         'err': np.zeros(episodes), 'err_sum': np.zeros(episodes), 'u_sum': np.zeros(episodes)}
    if self.calibration is not None:
      s['kappa'] = None
    return s

  def _floor(self):
    return 0.0 if self.objective == 'surplus' else -self.max_u

  def bid(self, state, t, pctr, remaining):
    p = pctr
    if self.calibration is not None:
      p = pctr * self.calibration.sample(pctr)
    paced = np.asarray(self.value, np.float64) * np.exp(-state['u'])
    cap = self.cpc_cap
    if cap is None:
      return paced * p
    return p * np.minimum(paced, cap * np.exp(state['log_beta']))

  def observe(self, state, t, won, cost, click, pctr):
    budget, horizon = state['budget'], state['horizon']
    state['spent'] += cost
    remaining = np.maximum(budget - state['spent'] + cost, 0.0)
    rho = np.maximum(remaining / (horizon - t), 1e-9)
    if self.pacing == 'dual':
      step = np.asarray(self.eta) * (cost - rho) / rho
      state['u'] = np.clip(state['u'] + np.minimum(step, 5.0), self._floor(), self.max_u)
    else:
      err = (state['spent'] - budget * (t + 1) / horizon) / budget
      state['err_sum'] += err
      d = err - state['err']
      state['err'] = err
      u = (state['u0'] + np.asarray(self.kp) * err
           + np.asarray(self.ki) * state['err_sum'] / horizon + np.asarray(self.kd) * d * horizon)
      state['u'] = np.clip(u, self._floor(), self.max_u)
    if self.carry:
      state['u_sum'] += state['u']
    cap = self.cpc_cap
    if cap is not None:
      # log(beta / C) falls by the violation of cost <= C pCTR on this win, in units of
      # the spend rate.
      g = np.where(won, (cost - cap * pctr) / rho, 0.0)
      state['log_beta'] = np.clip(state['log_beta'] - self.eta_ratio * g, -self.max_u,
                                  self.max_u)

  def end_wave(self, state, log):
    if self.carry:
      self._episode_u.append(state['u_sum'] / state['horizon'])
    if self.calibration is not None:
      self.calibration.update(log['pctr'][log['won']], log['click'][log['won']])

  def multiplier(self, state):
    return np.exp(state['u']) - 1.0
