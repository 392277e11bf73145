"""policy/bidding/bidders.py: the carried start of the pacer, and the surplus objective."""
import numpy as np
import pytest

from policy.bidding import auctions as auc
from policy.bidding import hindsight, tuning
from policy.bidding.bidders import LagrangianBid
from policy.bidding.replay import replay

from helpers import synthetic_auctions


def test_carried_start_follows_traffic_that_differs_from_tuning():
  """Test prices 1.6 times the tuning episodes': the tuned start bids too much at first in
  every episode. Carrying the start across episodes learns the test multiplier, so it
  ends nearer the test episodes' hindsight multiplier and wins more expected clicks."""
  import dataclasses
  val, test = synthetic_auctions(40, 400, seed=1), synthetic_auctions(60, 400, seed=2)
  test = auc.Auctions(test.click, np.round(test.price * 1.6), test.pctr, test.valid, 'drift')
  budget = auc.budget(1 / 16, 400, val.mean_price())
  fixed = tuning.tune_lagrangian(val, budget, value=15000.0)
  carried = dataclasses.replace(fixed, carry=True)
  assert carried.wave == 10 and fixed.wave is None
  a, b = replay(test, fixed, budget), replay(test, carried, budget)
  assert b.expected_clicks.sum() > a.expected_clicks.sum()
  assert b.cost.max() <= budget + 1e-9
  target = np.median(np.log(15000.0 * hindsight.optimum(test, budget).ratio))
  assert abs(carried.start_u() - target) < 0.5 * abs(fixed.u0 - target)
  assert dataclasses.replace(carried).start_u() == fixed.u0   # a fresh copy starts over
  with pytest.raises(ValueError, match='carry_wave'):
    LagrangianBid(1.0, carry=True, carry_wave=0)


def test_surplus_objective_never_bids_above_value():
  a = synthetic_auctions(10, 300)
  b = LagrangianBid(5000.0, u0=0.0, eta=0.05, objective='surplus')
  o = replay(a, b, 1e7, trace=True)                   # budget slack: lambda stays 0
  assert np.nanmin(o.multiplier) >= 0.0
  with pytest.raises(ValueError, match='objective'):
    LagrangianBid(1.0, objective='profit')
