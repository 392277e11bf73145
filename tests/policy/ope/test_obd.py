"""policy/ope/obd.py: the Open Bandit Dataset read as OPE logs, and IPS on its random logs
estimating BTS's value within its interval."""
import os

import numpy as np
import pytest

from policy.ope import estimators, obd, policies
from helpers import SHARED_DATA


OBD = os.path.join(SHARED_DATA, 'open_bandit_dataset')
needs_obd = pytest.mark.skipif(not os.path.isdir(OBD),
                               reason=f'Open Bandit Dataset not found at {OBD}')


@needs_obd
@pytest.mark.parametrize('campaign, items', [('all', 80), ('men', 34), ('women', 46)])
def test_open_bandit_logs(campaign, items):
  random = obd.load(OBD, 'random', campaign)
  assert random.n_actions == items and random.n_positions == 3 and len(random) == 10_000
  assert set(random.frame['position']) == {0, 1, 2}
  np.testing.assert_allclose(random.frame['propensity'], 1 / items)   # uniform logging
  assert {'user_feature_0', 'user-item_affinity_0'} <= set(random.context)
  bts = obd.load(OBD, 'bts', campaign)
  assert 0.002 < obd.on_policy_value(OBD, 'bts', campaign) < 0.01
  assert len(bts) == 10_000


@needs_obd
def test_ips_from_random_logs_estimates_the_bts_value_within_its_interval():
  # The Open Bandit Pipeline's protocol, once: BTS's value from the random policy's logs
  # (IPS needs no reward model), against BTS's own click rate.
  random = obd.load(OBD, 'random', 'all')
  alpha, beta = policies.bts_prior(os.path.join(OBD, 'prior_bts.yaml'), 'all')
  dist = policies.bernoulli_ts(alpha, beta, n_positions=3, n_sim=100_000, seed=0)
  (ips,) = estimators.estimate(random.feedback(), dist, estimators=('ips',),
                               n_bootstrap=500, seed=0)
  truth = obd.on_policy_value(OBD, 'bts', 'all')
  assert ips.ci_low < truth < ips.ci_high
  assert abs(ips.value - truth) / truth < 0.5
