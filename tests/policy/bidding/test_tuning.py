"""policy/bidding/tuning.py: tuned pacers spend evenly and near the optimum; the CPC cap
and ROI floor hold."""
import pytest

from policy.bidding import auctions as auc
from policy.bidding import hindsight, tuning
from policy.bidding.bidders import LagrangianBid
from policy.bidding.replay import replay

from helpers import synthetic_auctions


@pytest.mark.parametrize('pacing', ['dual', 'pid'])
def test_pacer_spends_evenly_and_nears_the_optimum(pacing):
  val, test = synthetic_auctions(40, 400, seed=1), synthetic_auctions(40, 400, seed=2)
  budget = auc.budget(1 / 16, 400, val.mean_price())
  bidder = tuning.tune_lagrangian(val, budget, value=15000.0, pacing=pacing)
  o = replay(test, bidder, budget, trace=True)
  frac = o.spend / budget
  assert frac[:, -1].mean() > 0.95                    # the budget is used
  assert 0.35 < frac[:, 199].mean() < 0.65            # not exhausted early: on pace
  assert frac[:, 99].mean() < 0.4
  best = hindsight.optimum(test, budget).expected_clicks.sum()
  assert o.expected_clicks.sum() <= best + 1e-9
  assert o.expected_clicks.sum() > 0.9 * best
  lin = replay(test, tuning.tune_linear(val, budget, 0.004), budget)
  assert o.expected_clicks.sum() > lin.expected_clicks.sum()


def test_cpc_cap_and_roi_hold_the_cost_per_click():
  val, test = synthetic_auctions(40, 400, seed=1), synthetic_auctions(40, 400, seed=2)
  budget = auc.budget(1 / 4, 400, val.mean_price())
  free = replay(test, tuning.tune_lagrangian(val, budget, 15000.0), budget)
  free_cpc = free.cost.sum() / free.expected_clicks.sum()
  cap = 0.6 * free_cpc
  capped = replay(test, tuning.tune_lagrangian(val, budget, 15000.0, max_cpc=cap), budget)
  assert capped.cost.sum() / capped.expected_clicks.sum() <= 1.05 * cap
  roi = replay(test, tuning.tune_lagrangian(val, budget, 15000.0, min_roi=15000.0 / cap),
               budget)
  assert roi.cost.sum() / roi.expected_clicks.sum() <= 1.05 * cap
  with pytest.raises(ValueError, match='not both'):
    LagrangianBid(1.0, max_cpc=1.0, min_roi=1.0)
