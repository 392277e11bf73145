"""The hindsight optimum: the upper bound no online bidder can beat.

Knowing every market price of an episode in advance, and paying exactly the price of each
auction won, the most expected clicks a budget B buys is the linear programme

    max  sum_i pCTR_i x_i   s.t.  sum_i price_i x_i <= B,  0 <= x_i <= 1,

a fractional knapsack, solved exactly by taking auctions in decreasing pCTR / price order
until the budget runs out, the last one fractionally. Its threshold ratio r* is the
LP's dual: an online bidder with ``bid = pCTR / r*`` would win exactly that set, which is
why value bidding with the right multiplier can come close to it (``bid = v pCTR / (1 +
lambda)`` with 1 + lambda* = v r*).

The realised clicks of the same set (clicks_i x_i) are reported too; the bound holds for
expected clicks, which is what a bidder that sees only pCTR can optimise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from policy.bidding.auctions import Auctions


@dataclasses.dataclass
class Hindsight:
  expected_clicks: np.ndarray   # (E,) sum of pCTR x over the optimal fractional set
  clicks: np.ndarray            # (E,) realised clicks of that set (fractional last item)
  cost: np.ndarray              # (E,)
  wins: np.ndarray              # (E,)
  ratio: np.ndarray             # (E,) r*: pCTR / price of the marginal auction (inf: budget slack)


def optimum(a: Auctions, budget) -> Hindsight:
  """The fractional-knapsack optimum of every episode; ``budget`` scalar or (E,)."""
  budget = np.broadcast_to(np.asarray(budget, np.float64), (a.episodes,))
  with np.errstate(divide='ignore', invalid='ignore'):
    ratio = np.where(a.price > 0, a.pctr / np.where(a.price > 0, a.price, 1), np.inf)
  ratio = np.where(a.valid & (a.pctr > 0), ratio, -1.0)   # padding and pCTR 0: never taken
  order = np.argsort(-ratio, axis=1, kind='stable')
  rows = np.arange(a.episodes)[:, None]
  r = ratio[rows, order]
  price = np.where(r >= 0, a.price[rows, order], 0.0)
  cum = np.cumsum(price, axis=1)
  before = cum - price
  take = np.clip((budget[:, None] - before) / np.where(price > 0, price, 1), 0, 1)
  take = np.where(r >= 0, np.where(price > 0, take, (before <= budget[:, None]) * 1.0), 0)
  pctr, click = a.pctr[rows, order], a.click[rows, order]
  marginal = np.argmax(take < 1, axis=1)
  has_marginal = (take < 1).any(axis=1) & (r[np.arange(a.episodes), marginal] >= 0)
  ratio_star = np.where(has_marginal, r[np.arange(a.episodes), marginal], np.inf)
  return Hindsight(expected_clicks=(take * pctr).sum(axis=1), clicks=(take * click).sum(axis=1),
                   cost=(take * price).sum(axis=1), wins=take.sum(axis=1), ratio=ratio_star)
