"""RLB (Cai et al., "Real-Time Bidding by Reinforcement Learning in Display Advertising",
WSDM 2017): bidding as a Markov decision process over (auctions left, budget left),
solved exactly by dynamic programming. Our implementation of the paper's small-scale
method, as the reference our pacers are compared with at every budget (the paper's
README reports only c0 = 1/32). Set up as the paper's code sets it up, it reproduces that
row for campaign 2997 exactly (39,680 impressions, 78 clicks, cost 304,375; a test
asserts it).

With t auctions left and budget b (whole price units), V(t, b) is the most expected
clicks still to win. A bid a wins every market price delta <= a (pmf m: the campaign's
training histogram over 0..300 with add-one smoothing) and pays delta, so

    V(t, b) = V(t-1, b) + sum_{delta <= a*(t, b)} m(delta) (theta - D(t-1, b, delta))
    D(t-1, b, delta) = V(t-1, b) - V(t-1, b - delta),

where theta is the campaign's training click rate, and the bid for an auction of pCTR x
is the largest delta <= min(b, 300) with D(t-1, b, delta) <= x. ``value_function`` also
takes a distribution of theta (e.g. the validation pCTRs: E[(theta - D)^+] inside the
sum); on 2997 that variant wins fewer clicks (74 at c0 = 1/32), so the paper's choice is
the default. One pass costs O(T * B * 300): about 10 s at c0 = 1/32 on 2997 here and
proportionally more at larger budgets.
"""

from __future__ import annotations

import json
import os

import numpy as np

from policy.bidding.auctions import AuctionDataError
from policy.bidding.bidders import Bidder


MAX_PRICE = 300          # the paper's max_market_price: bids and prices are capped here


def price_pmf(data_dir: str, campaign: str, laplace: float = 1.0) -> np.ndarray:
  """m(delta), delta = 0..300: the training market-price histogram, add-one smoothed as
  the paper's code does."""
  path = os.path.join(data_dir, 'info', f'{campaign}.info.json')
  with open(path) as f:
    counts = np.asarray(json.load(f)['price_counter_train'], np.float64)
  if counts.sum() <= 0:
    raise AuctionDataError(f'{path}: empty price_counter_train')
  counts = np.concatenate([counts, np.zeros(max(0, MAX_PRICE + 1 - len(counts)))])
  counts = counts[:MAX_PRICE + 1] + laplace
  return counts / counts.sum()


def _expected_excess(theta: np.ndarray):
  """d -> E[(theta - d)^+] over the empirical theta, exact, as a vectorised function."""
  s = np.sort(np.asarray(theta, np.float64))
  n = len(s)
  tail_sum = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])   # sum of s[i:]

  def f(d: np.ndarray) -> np.ndarray:
    i = np.searchsorted(s, d, side='right')        # theta > d are s[i:]
    return (tail_sum[i] - d * (n - i)) / n
  return f


def value_function(horizon: int, budget: int, pmf: np.ndarray, theta: np.ndarray,
                   grid: int = 20_000) -> np.ndarray:
  """V, shape (horizon + 1, budget + 1); V[t, b] for t auctions left and budget b.

  E[(theta - d)^+] is piecewise linear in d; it is tabulated exactly at ``grid`` + 1
  points on [0, max theta] and interpolated linearly between them (the error is below
  (max theta / grid)^2 times the density, negligible against pCTRs)."""
  if budget < 0 or horizon < 0:
    raise ValueError(f'horizon and budget must be >= 0, got {horizon}, {budget}')
  excess = _expected_excess(theta)
  top = float(np.max(theta))
  knots = np.linspace(0.0, top, grid + 1)
  table = np.append(excess(knots), 0.0)
  scale = grid / top if top > 0 else 0.0
  B = int(budget)
  V = np.zeros((horizon + 1, B + 1))
  deltas = [d for d in range(min(len(pmf), B + 1)) if pmf[d] > 0]
  point = len(np.unique(theta)) == 1
  for t in range(1, horizon + 1):
    prev = V[t - 1]
    acc = np.zeros(B + 1)
    if point:                                  # one theta: (theta - D)^+ directly
      for d in deltas:
        acc[d:] += pmf[d] * np.maximum(top - (prev[d:] - prev[:B + 1 - d]), 0.0)
      V[t] = prev + acc
      continue
    for d in deltas:
      # D(t-1, b, d) for b >= d, then E[(theta - D)^+] by linear interpolation.
      x = np.minimum((prev[d:] - prev[:B + 1 - d]) * scale, grid)
      i = x.astype(np.int64)
      frac = x - i
      acc[d:] += pmf[d] * (table[i] * (1 - frac) + table[i + 1] * frac)
    V[t] = prev + acc
  return V


class RLBBid(Bidder):
  """Bids by the value function: the largest delta <= min(b, max price) with
  V(t-1, b) - V(t-1, b - delta) <= pCTR, t the auctions left (budget in whole units)."""
  name = 'rlb'

  def __init__(self, V: np.ndarray, max_price: int):
    self.V = V
    self.max_price = int(max_price)

  @classmethod
  def fit(cls, horizon: int, budget: float, pmf: np.ndarray, theta) -> 'RLBBid':
    """``theta``: the training click rate (the paper) or an array of pCTRs."""
    theta = np.atleast_1d(np.asarray(theta, np.float64))
    return cls(value_function(horizon, int(budget), pmf, theta), len(pmf) - 1)

  def bid(self, state, t, pctr, remaining):
    horizon = state['horizon']
    left = horizon - t                      # auctions left, this one included
    prev = self.V[max(left - 1, 0)]
    b = np.minimum(np.floor(remaining + 1e-9).astype(np.int64), self.V.shape[1] - 1)
    delta = np.arange(self.max_price + 1)
    lower = b[:, None] - delta[None, :]
    ok = lower >= 0
    D = prev[b][:, None] - prev[np.maximum(lower, 0)]
    allowed = ok & (D <= pctr[:, None] + 1e-15)
    # The won set is a prefix: the bid is the last delta before D first exceeds pCTR.
    first_bad = np.where((~allowed).any(axis=1), np.argmax(~allowed, axis=1), allowed.shape[1])
    return (first_bad - 1).astype(np.float64)
