"""policy/bidding/rlb.py: RLB's value function is the Bellman recursion, and the paper's
row is reproduced."""
import numpy as np

from policy.bidding import auctions as auc
from policy.bidding import evaluate, rlb

from helpers import shared_data


def test_rlb_value_function_is_the_bellman_recursion():
  pmf = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
  theta = 0.4
  V = rlb.value_function(6, 9, pmf, np.array([theta]))
  W = np.zeros((7, 10))
  for t in range(1, 7):
    for b in range(10):
      W[t, b] = max(sum(pmf[d] * (theta + W[t - 1, b - d]) for d in range(min(a, b) + 1))
                    + sum(pmf[d] for d in range(min(a, b) + 1, 5)) * W[t - 1, b]
                    for a in range(5))
  np.testing.assert_allclose(V, W, atol=1e-12)
  # With a distribution of theta, the max over bids sits inside the expectation.
  thetas = np.array([0.1, 0.5, 0.9])
  V = rlb.value_function(4, 6, pmf, thetas, grid=200_000)
  W = np.zeros((5, 7))
  for t in range(1, 5):
    for b in range(7):
      W[t, b] = W[t - 1, b] + np.mean([max(sum(pmf[d] * (x + W[t - 1, b - d] - W[t - 1, b])
                                               for d in range(min(a, b) + 1)) for a in range(5))
                                       for x in thetas])
  np.testing.assert_allclose(V, W, atol=1e-6)


def test_rlb_reproduces_the_papers_row_and_the_pacer_matches_it():
  """Our RLB, set up as the paper's code is, gives the paper's 2997 row to the unit."""
  data = shared_data('ipinyou_rlbdp')
  val, test, _ = evaluate.splits(data, '2997')
  info = auc.campaign_info(data, '2997')
  rows, _ = evaluate.run(val, test, info, 1 / 32, ['lagrangian', 'rlb'], data_dir=data)
  by = {r['policy']: r for r in rows}
  paper = {r['policy']: r for r in evaluate.rlb_reference(data)}['RLB paper: rlb']
  assert (by['rlb']['impressions'], by['rlb']['clicks'], by['rlb']['cost']) == (
      paper['impressions'], paper['clicks'], paper['cost']) == (39680, 78, 304375)
  assert by['lagrangian']['clicks'] >= by['rlb']['clicks']
  assert by['lagrangian']['expected_clicks'] >= by['rlb']['expected_clicks']
