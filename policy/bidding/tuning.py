"""Fits each bidder's free parameters on a campaign's validation episodes.

Every rule's parameter is chosen from a grid on the validation episodes at the same
budget ratio. Constant and Lin take the grid point that wins the most clicks (expected
clicks, the sum of pCTR won, break ties), as the RLB paper tunes Lin. The pacers take
the one with the most expected clicks (realised clicks break ties): a validation
campaign has a few dozen clicks, and the sum of pCTRs is far less noisy. On the eight
campaigns without a test file (tuned on validation episodes 0-49, scored on 50-99, 40
campaign x budget cells) it wins more held-out clicks than tuning the dual pacer on
realised clicks (``python -m bench.bidding --parts tuning``; docs/BENCHMARKS.md). The
grid is evaluated in one replay: the episodes are tiled once per grid point and each copy
gets its own parameter, since every bidder takes (E,) parameter arrays.

The Lagrangian pacer's start u0 = log(1 + lambda0) is not searched: it is the median over
validation episodes of the hindsight optimum's multiplier (:mod:`policy.bidding.hindsight`),
the value that would have spent each budget exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from policy.bidding import hindsight
from policy.bidding.auctions import Auctions
from policy.bidding.bidders import ConstantBid, LagrangianBid, LinearBid
from policy.bidding.replay import replay

CONSTANT_GRID = tuple(range(2, 301, 6))        # RLB's Lin grid, also used for b0
ETA_GRID = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
PID_GRID = tuple((kp, ki) for kp in (1.0, 3.0, 10.0) for ki in (0.0, 3.0, 10.0))


def _grid_search(val: Auctions, budget: float, grid: Sequence, make: Callable,
                 criterion: str = 'clicks'):
  """(best grid value, {value: (clicks, expected)}): ``make(params)`` builds a bidder
  from per-row parameter arrays (one entry of ``grid`` per tiled copy); ``criterion``
  ``clicks`` or ``expected`` ranks the grid points, the other breaks ties."""
  g, e = len(grid), val.episodes
  tiled = val.tile(g * e)
  params = [np.repeat(np.asarray([p[i] if isinstance(p, tuple) else p for p in grid],
                                 np.float64), e)
            for i in range(len(grid[0]) if isinstance(grid[0], tuple) else 1)]
  out = replay(tiled, make(*params), budget)
  clicks = out.clicks.reshape(g, e).sum(axis=1)
  expected = out.expected_clicks.reshape(g, e).sum(axis=1)
  if criterion == 'clicks':
    best = max(range(g), key=lambda i: (clicks[i], expected[i]))
  else:
    best = max(range(g), key=lambda i: (expected[i], clicks[i]))
  return grid[best], {grid[i]: (float(clicks[i]), float(expected[i])) for i in range(g)}


def tune_constant(val: Auctions, budget: float, grid=CONSTANT_GRID) -> ConstantBid:
  best, _ = _grid_search(val, budget, grid, lambda b: ConstantBid(b))
  return ConstantBid(float(best))


def tune_linear(val: Auctions, budget: float, base_ctr: float, grid=CONSTANT_GRID) -> LinearBid:
  best, _ = _grid_search(val, budget, grid, lambda b: LinearBid(b, base_ctr))
  return LinearBid(float(best), base_ctr)


def start_multiplier(val: Auctions, budget: float, value: float, max_u: float = 20.0) -> float:
  """u0 = median over validation episodes of log(v r*), r* the hindsight threshold."""
  r = hindsight.optimum(val, budget).ratio
  u = np.where(np.isfinite(r), np.log(np.maximum(value * r, 1e-300)), -max_u)
  return float(np.clip(np.median(u), -max_u, max_u))


def tune_lagrangian(val: Auctions, budget: float, value: float, pacing: str = 'dual',
                    criterion: str = 'expected', **kwargs) -> LagrangianBid:
  """The pacer with u0 from the hindsight median and its step (dual) or gains (PID)
  from the grid. ``kwargs`` pass to :class:`LagrangianBid` (max_cpc, objective, ...)."""
  u0 = start_multiplier(val, budget, value)
  kwargs = {k: v for k, v in kwargs.items() if k != 'calibration'}
  if pacing == 'dual':
    best, _ = _grid_search(val, budget, ETA_GRID, lambda eta: LagrangianBid(
        value, u0, 'dual', eta=eta, **kwargs), criterion)
    return LagrangianBid(value, u0, 'dual', eta=float(best), **kwargs)
  best, _ = _grid_search(val, budget, PID_GRID, lambda kp, ki: LagrangianBid(
      value, u0, 'pid', kp=kp, ki=ki, **kwargs), criterion)
  return LagrangianBid(value, u0, 'pid', kp=best[0], ki=best[1], **kwargs)
