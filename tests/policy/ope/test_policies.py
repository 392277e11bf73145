"""policy/ope/policies.py: every policy's action distribution is a distribution per
position, and matches its definition (exact formulas against Monte Carlo and quadrature)."""
import os

import numpy as np
import pytest

from policy.ope import policies
from helpers import SHARED_DATA

OBD = os.path.join(SHARED_DATA, 'open_bandit_dataset')


def _is_slate_distribution(d, atol=1e-9):
  sums = d.sum(axis=-2)
  assert np.allclose(sums, 1, atol=atol), sums
  assert (d >= -1e-12).all()
  # Distinct actions in a slate: an action fills at most one position.
  assert (d.sum(axis=-1) <= 1 + atol).all()


def test_uniform_and_greedy():
  _is_slate_distribution(policies.uniform(5, 3))
  s = np.array([[0.1, 0.5, 0.3, 0.2], [0.9, 0.1, 0.8, 0.0]])
  g = policies.greedy(s, n_positions=2)
  _is_slate_distribution(g)
  assert g[0, 1, 0] == 1 and g[0, 2, 1] == 1 and g[1, 0, 0] == 1 and g[1, 2, 1] == 1
  e = policies.epsilon_greedy(s, 0.2, n_positions=2)
  _is_slate_distribution(e)
  assert e[0, 1, 0] == pytest.approx(0.8 + 0.2 / 4) and e[0, 0, 0] == pytest.approx(0.05)


def test_softmax_marginals_match_plackett_luce_sampling():
  rng = np.random.default_rng(0)
  s = rng.normal(size=(3, 7)) * 1.5
  exact = policies.softmax(s, temperature=0.7, n_positions=4, n_sim=200_000, seed=1)
  _is_slate_distribution(exact, atol=1e-6)
  mc = policies._plackett_luce_mc(s / 0.7, 4, 200_000, seed=2)
  np.testing.assert_allclose(exact[:, :, :3], mc[:, :, :3], atol=0.005)
  # Temperature -> 0 is greedy; a very high temperature is uniform.
  np.testing.assert_allclose(policies.softmax(s, 1e-3, 3), policies.greedy(s, 3), atol=1e-6)
  np.testing.assert_allclose(policies.softmax(s, 1e6, 3), 1 / 7, atol=1e-5)


def test_bernoulli_ts_matches_quadrature_for_two_actions():
  from scipy import integrate, stats
  a, b = np.array([3.0, 5.0]), np.array([40.0, 60.0])
  d = policies.bernoulli_ts(a, b, n_positions=1, n_sim=400_000, seed=0)
  # P(theta_0 > theta_1) = integral of f_0(t) F_1(t) dt.
  p0, _ = integrate.quad(lambda t: stats.beta.pdf(t, a[0], b[0]) * stats.beta.cdf(t, a[1], b[1]),
                         0, 1)
  assert d[0, 0] == pytest.approx(p0, abs=0.003)
  _is_slate_distribution(policies.bernoulli_ts(a, b, n_positions=2, n_sim=1000))


def test_bad_policy_settings_are_refused():
  with pytest.raises(ValueError, match='at least that many'):
    policies.uniform(2, 3)
  with pytest.raises(ValueError, match='epsilon'):
    policies.epsilon_greedy(np.zeros((1, 3)), 1.5)
  with pytest.raises(ValueError, match='not finite in rows \\[1\\]'):
    policies.greedy(np.array([[0.1, 0.2], [np.nan, 0.1]]))
  with pytest.raises(ValueError, match='> 0; not for actions \\[1\\]'):
    policies.bernoulli_ts([1.0, 0.0], [1.0, 1.0])


@pytest.mark.skipif(not os.path.isdir(OBD), reason=f'Open Bandit Dataset not found at {OBD}')
@pytest.mark.parametrize('campaign, n_items', [('all', 80), ('men', 34), ('women', 46)])
def test_open_bandit_bts_prior(campaign, n_items):
  alpha, beta = policies.bts_prior(os.path.join(OBD, 'prior_bts.yaml'), campaign)
  assert alpha.size == beta.size == n_items
  d = policies.bernoulli_ts(alpha, beta, n_positions=3, n_sim=20_000, seed=0)
  _is_slate_distribution(d)
  # The prior's favourite (highest posterior mean) leads position 0 most often.
  assert d[:, 0].argmax() == np.argmax(alpha / (alpha + beta))
