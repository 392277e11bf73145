"""OPE where the truth is exact (policy/ope/simulation.py on the generated dataset):
IPS and the DR family are unbiased within their intervals, DR's variance is at most IPS's
with a good reward model, DM carries its model's bias. Fixed seeds throughout."""
import numpy as np
import pytest

from policy.ope import simulation as sim


@pytest.fixture(scope='module')
def pool():
  return sim.pool(200_000, seed=0, reward_model_noise=0.3)


def test_exact_values_of_the_policies(pool):
  pols = sim.policies_for(pool)
  assert pool.value(pols['uniform']) == pytest.approx(pool.q.mean())
  # The reward model's ranking is good: its epsilon-greedy policy beats the logging policy,
  # which beats uniform (the logging policy prefers the better creatives, noisily).
  assert pool.value(pols['epsilon-greedy']) > pool.value(pool.logging) > pool.value(
      pols['uniform'])
  for d in pols.values():
    np.testing.assert_allclose(d.sum(axis=1), 1)


def test_unbiased_estimators_hold_the_truth(pool):
  dist = sim.policies_for(pool)['epsilon-greedy']
  rows = {r['estimator']: r for r in sim.bias_rmse(
      pool, dist, sizes=[20_000], reps=60, seed=1)}
  for name in ('ips', 'snips', 'dr', 'sndr', 'switch-dr', 'dros'):
    r = rows[name]
    assert abs(r['bias']) < 3 * r['bias_se'], r          # unbiased within its own error
    assert r['coverage'] >= 0.85, r                       # the 95% interval holds the truth
  # DM inherits the reward model's bias (logit noise makes sigmoid's mean overshoot).
  assert rows['dm']['bias'] > 10 * rows['dm']['bias_se']
  assert rows['dm']['coverage'] < 0.5


def test_dr_variance_does_not_exceed_ips_with_a_good_reward_model(pool):
  dist = sim.policies_for(pool)['softmax']
  rng = np.random.default_rng(2)
  from policy.ope import estimators as est
  se = {'ips': [], 'dr': []}
  values = {'ips': [], 'dr': []}
  for _ in range(40):
    rows, fb = sim.draw_log(pool, 20_000, rng)
    for r in est.estimate(fb, dist[rows][:, :, None], ('ips', 'dr'), n_bootstrap=0):
      se[r.estimator].append(r.se)
      values[r.estimator].append(r.value)
  assert np.mean(se['dr']) < np.mean(se['ips'])
  assert np.std(values['dr']) < 1.05 * np.std(values['ips'])
  # With the true q the gain stays small: at a 2% click rate the click's own Bernoulli
  # noise, which no reward model removes, is most of IPS's variance.
  exact = sim.Pool(q=pool.q, logging=pool.logging, q_hat=pool.q)
  rows, fb = sim.draw_log(exact, 20_000, np.random.default_rng(3))
  r = {e.estimator: e for e in est.estimate(fb, dist[rows][:, :, None], ('ips', 'dr'),
                                             n_bootstrap=0)}
  assert r['dr'].se <= r['ips'].se


def test_error_shrinks_with_n(pool):
  dist = sim.policies_for(pool)['epsilon-greedy']
  rows = sim.bias_rmse(pool, dist, sizes=[2_000, 50_000], reps=20, seed=4,
                       estimators=('ips', 'dr'))
  rmse = {(r['n'], r['estimator']): r['rmse'] for r in rows}
  for e in ('ips', 'dr'):
    # RMSE ~ 1 / sqrt(n): 25 times the rows, about a fifth of the error.
    assert rmse[(50_000, e)] < 0.35 * rmse[(2_000, e)]
