"""policy/bidding/replay.py: the second-price replay, by hand, and no bidder overspends."""
import numpy as np
import pytest

from policy.bidding import auctions as auc
from policy.bidding.bidders import ConstantBid, LagrangianBid, LinearBid
from policy.bidding.replay import replay

from helpers import synthetic_auctions


def test_second_price_replay_by_hand():
  a = auc.Auctions(np.array([[1, 0, 1, 1]], np.int8), np.array([[5., 10., 4., 3.]]),
                   np.array([[.1, .1, .1, .1]]), np.ones((1, 4), bool))
  o = replay(a, ConstantBid(5.0), budget=9.0)
  # Wins the tie at 5 (pays 5), loses 10, wins 4 (pays 4), then the budget is gone.
  assert (o.wins[0], o.cost[0], o.clicks[0]) == (2, 9.0, 2)
  t = o.totals()
  assert t['win_rate'] == 0.5 and t['cpm'] == 4.5 and t['ecpc'] == pytest.approx(9 / 1000 / 2)


def test_no_bidder_overspends_even_bidding_huge():
  a = synthetic_auctions(20, 300)
  for bidder in (ConstantBid(1e9), LinearBid(1e9, 0.004),
                 LagrangianBid(1e9, u0=-20.0, eta=0.0)):
    o = replay(a, bidder, 500.0)
    assert np.all(o.cost <= 500.0 + 1e-9) and o.totals()['overspent_episodes'] == 0
