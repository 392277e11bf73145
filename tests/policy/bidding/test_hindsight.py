"""policy/bidding/hindsight.py: the hindsight optimum is the LP's."""
import numpy as np
import pytest
from scipy.optimize import linprog

from policy.bidding import hindsight

from helpers import synthetic_auctions


def test_hindsight_is_the_lp_optimum():
  a = synthetic_auctions(6, 30, seed=3)
  budget = 400.0
  h = hindsight.optimum(a, budget)
  for e in range(a.episodes):
    lp = linprog(-a.pctr[e], A_ub=a.price[e][None], b_ub=[budget], bounds=(0, 1))
    assert h.expected_clicks[e] == pytest.approx(-lp.fun, rel=1e-9)
    assert h.cost[e] == pytest.approx(budget)
  # A slack budget buys every auction; its threshold is infinite.
  rich = hindsight.optimum(a, 1e9)
  np.testing.assert_allclose(rich.expected_clicks, a.pctr.sum(axis=1))
  assert np.all(np.isinf(rich.ratio))
