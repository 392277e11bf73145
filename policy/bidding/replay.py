"""Replays auction logs against a bidder: the outcome had it bid in those auctions.

Second-price rules, as in the RLB paper's evaluation: the bidder wins an auction when its
bid is positive and at least the market price, and pays the market price. Its bid is
capped at the budget left, so it can never spend more than the budget. Each episode
starts with a fresh budget.

The replay is vectorised over episodes: a loop over the T auction positions, each step a
few NumPy operations on (E,) arrays. Episodes run side by side; a bidder that learns
across episodes (a Thompson-sampling posterior) runs them in chronological waves and
updates after each (:attr:`policy.bidding.bidders.Bidder.wave`), so no episode sees a
later one.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np

from policy.bidding.auctions import AuctionDataError, Auctions
from policy.bidding.bidders import Bidder


@dataclasses.dataclass
class Outcome:
  clicks: np.ndarray           # (E,) realised clicks won
  expected_clicks: np.ndarray  # (E,) sum of pCTR over the auctions won
  cost: np.ndarray             # (E,)
  wins: np.ndarray             # (E,)
  auctions: np.ndarray         # (E,)
  budget: np.ndarray           # (E,)
  spend: Optional[np.ndarray] = None       # (E, T) cumulative spend, with trace=True
  multiplier: Optional[np.ndarray] = None  # (E, T) lambda after each auction
  won_clicks: Optional[np.ndarray] = None  # (E, T) cumulative clicks

  def totals(self) -> Dict[str, float]:
    """RLB's table columns: clicks, cost, win rate, eCPC and CPM. Prices are CPM (per
    1000 impressions), so CPM = cost / impressions and eCPC = cost / 1000 / clicks."""
    clicks, cost, wins = float(self.clicks.sum()), float(self.cost.sum()), float(self.wins.sum())
    auctions = float(self.auctions.sum())
    return {'auctions': auctions, 'impressions': wins, 'clicks': clicks,
            'expected_clicks': float(self.expected_clicks.sum()), 'cost': cost,
            'budget': float(self.budget.sum()),
            'win_rate': wins / auctions if auctions else float('nan'),
            'ecpc': cost / 1000 / clicks if clicks else float('nan'),
            'cpm': cost / wins if wins else float('nan'),
            'overspent_episodes': int((self.cost > self.budget + 1e-6).sum())}


def auction(bidder: Bidder, state: dict, t: int, pctr, price, click, remaining, valid=True):
  """One second-price auction per episode: the bid (capped at the budget left) wins when
  positive and at least the market price, and pays the price; the bidder observes the
  result. Returns (won, cost)."""
  bid = np.minimum(bidder.bid(state, t, pctr, remaining), remaining)
  won = valid & (bid > 0) & (bid >= price)
  cost = np.where(won, price, 0.0)
  bidder.observe(state, t, won, cost, click, pctr)
  return won, cost


def replay(a: Auctions, bidder: Bidder, budget, trace: bool = False) -> Outcome:
  """Runs ``bidder`` over every episode of ``a`` with ``budget`` each (scalar or (E,))."""
  budget = np.broadcast_to(np.asarray(budget, np.float64), (a.episodes,)).copy()
  if not np.all(budget > 0):
    raise AuctionDataError(f'budget must be > 0, got {budget.min()}')
  wave = bidder.wave or a.episodes
  parts = []
  for lo in range(0, a.episodes, wave):
    hi = min(lo + wave, a.episodes)
    parts.append(_run(a.take(slice(lo, hi)), bidder, budget[lo:hi], trace))
  if len(parts) == 1:
    return parts[0]
  cat = lambda name: (None if getattr(parts[0], name) is None  # noqa: E731
                      else np.concatenate([getattr(p, name) for p in parts]))
  return Outcome(**{f.name: cat(f.name) for f in dataclasses.fields(Outcome)})


def _run(a: Auctions, bidder: Bidder, budget: np.ndarray, trace: bool) -> Outcome:
  e, horizon = a.episodes, a.horizon
  state = bidder.start(e, horizon, budget)
  remaining = budget.copy()
  clicks = np.zeros(e)
  expected = np.zeros(e)
  wins = np.zeros(e)
  won_all = np.zeros((e, horizon), bool)
  spend = np.zeros((e, horizon)) if trace else None
  lam = np.zeros((e, horizon)) if trace else None
  cum_clicks = np.zeros((e, horizon)) if trace else None
  for t in range(horizon):
    valid = a.valid[:, t]
    pctr, price, click = a.pctr[:, t], a.price[:, t], a.click[:, t]
    won, cost = auction(bidder, state, t, pctr, price, click, remaining, valid)
    remaining -= cost
    clicks += won * click
    expected += won * pctr
    wins += won
    won_all[:, t] = won
    if trace:
      spend[:, t] = budget - remaining
      m = bidder.multiplier(state)
      lam[:, t] = np.nan if m is None else m
      cum_clicks[:, t] = clicks
  bidder.end_wave(state, {'won': won_all, 'click': a.click, 'pctr': a.pctr})
  return Outcome(clicks=clicks, expected_clicks=expected, cost=budget - remaining, wins=wins,
                 auctions=a.valid.sum(axis=1).astype(float), budget=budget, spend=spend,
                 multiplier=lam, won_clicks=cum_clicks)
