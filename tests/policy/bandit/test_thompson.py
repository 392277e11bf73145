"""policy/bandit/thompson.py: posteriors and batched updates, saved state, Monte Carlo
action distributions, the calibration bandit, and a trained bandit evaluated off policy."""
import numpy as np
import pytest

from policy.bandit import simulation as sim
from policy.bandit.thompson import (BanditStateError, BetaBernoulli, CalibrationTS,
                                    LinearBandit)


@pytest.fixture(scope='module')
def world():
  return sim.world(50_000, seed=0)


def test_beta_bernoulli_batched_update_equals_one_by_one():
  arms, rewards = np.array([0, 1, 1, 2, 0, 0]), np.array([1, 0, 1, 0, 0, 1])
  batched, single = BetaBernoulli(3, prior=(2, 3)), BetaBernoulli(3, prior=(2, 3))
  batched.update(arms, rewards)
  for a, r in zip(arms, rewards):
    single.update([a], [r])
  np.testing.assert_array_equal(batched.a, [4, 3, 2]) and np.testing.assert_array_equal(
      batched.a, single.a)
  np.testing.assert_array_equal(batched.b, [4, 4, 4])
  with pytest.raises(ValueError, match='arms must be in'):
    batched.update([3], [1])
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    batched.update([0], [2])


def test_state_is_saved_and_restored(tmp_path, world):
  p = BetaBernoulli(4, seed=1)
  p.update([0, 1, 3, 3], [1, 0, 1, 1])
  p.save(str(tmp_path / 'beta.npz'))
  q = BetaBernoulli(4).load(str(tmp_path / 'beta.npz'))
  np.testing.assert_array_equal(q.a, p.a) and np.testing.assert_array_equal(q.b, p.b)
  with pytest.raises(BanditStateError, match='shape'):
    BetaBernoulli(5).load(str(tmp_path / 'beta.npz'))

  f = sim.context_features(world)
  lin = LinearBandit(f, seed=0)
  rows = np.arange(200)
  lin.update(rows, lin.select(rows), (np.arange(200) % 7 == 0).astype(float))
  lin.save(str(tmp_path / 'lin.npz'))
  back = LinearBandit(f, seed=0).load(str(tmp_path / 'lin.npz'))
  np.testing.assert_allclose(back.mean, lin.mean)
  with pytest.raises(BanditStateError, match='LinearBandit'):
    BetaBernoulli(4).load(str(tmp_path / 'lin.npz'))

  cal = CalibrationTS([0.01, 0.02])
  cal.update([0.005, 0.015, 0.03], [1, 0, 1])
  cal.save(str(tmp_path / 'cal.npz'))
  np.testing.assert_array_equal(CalibrationTS.load(str(tmp_path / 'cal.npz')).shape, cal.shape)


def test_linear_posterior_mean_is_ridge_regression(world):
  f = sim.context_features(world)
  rng = np.random.default_rng(0)
  rows = rng.integers(0, 50_000, 3000)
  arms = rng.integers(0, 6, 3000)
  r = (rng.random(3000) < world.q[rows, arms]).astype(float)
  lin = LinearBandit(f, noise=0.02, prior_precision=2.0)
  lin.update(rows[:1000], arms[:1000], r[:1000])
  lin.update(rows[1000:], arms[1000:], r[1000:])                 # two batches
  phi = f(rows)[np.arange(3000), arms]
  ridge = np.linalg.solve(phi.T @ phi + 2.0 * 0.02 * np.eye(f.dim), phi.T @ r)
  np.testing.assert_allclose(lin.mean, ridge, rtol=1e-6, atol=1e-10)


def test_action_distributions():
  p = BetaBernoulli(3, seed=0)
  p.update([0] * 100 + [1] * 100 + [2] * 100, [1] * 30 + [0] * 70 + [1] * 10 + [0] * 90
           + [1] * 25 + [0] * 75)
  d = p.action_distribution(n=1, samples=4000)[0]
  assert d.sum() == pytest.approx(1.0) and d.argmax() == 0 and d[1] < 0.01 and d[2] > 0.1
  # The Monte Carlo distribution is how select() actually plays.
  played = np.bincount(p.select(n=4000), minlength=3) / 4000
  np.testing.assert_allclose(played, d, atol=0.03)
  greedy = BetaBernoulli(3, 'greedy')
  greedy.a, greedy.b = p.a, p.b
  np.testing.assert_array_equal(greedy.action_distribution(n=2), [[1, 0, 0], [1, 0, 0]])
  eps = BetaBernoulli(3, 'epsilon', epsilon=0.3)
  eps.a, eps.b = p.a, p.b
  np.testing.assert_allclose(eps.action_distribution(n=1)[0], [0.8, 0.1, 0.1])


def test_calibration_ts_learns_a_miscalibration():
  rng = np.random.default_rng(0)
  cal = CalibrationTS.from_quantiles(rng.uniform(0.001, 0.02, 10_000), buckets=4, seed=0)
  pctr = rng.uniform(0.001, 0.02, 200_000)
  truth = np.where(cal.bucket(pctr) < 2, 2.0, 0.5)    # low pCTRs are under-predicted
  cal.update(pctr, rng.random(200_000) < truth * pctr)
  np.testing.assert_allclose(cal.mean, [2.0, 2.0, 0.5, 0.5], rtol=0.1)
  draws = np.array([cal.sample(np.array([0.005])) for _ in range(2000)])
  assert 1.8 < draws.mean() < 2.2 and draws.std() > 0


def test_a_trained_bandit_is_evaluated_off_policy_from_logs(world):
  """Its Monte Carlo action distribution is what policy.ope takes: IPS and DR on logs of
  the generated data's logging policy agree with the exact value of the frozen policy."""
  from datagen import synthetic
  from policy.ope import estimators as est
  from policy.ope import simulation as ope_sim
  f = sim.context_features(world)
  ts = LinearBandit(f, 'thompson', seed=3)
  sim.simulate(ts, world, 100_000, 2000, seed=3)                  # train, then freeze
  pool = ope_sim.Pool(q=world.q, q_hat=world.q,
                      logging=synthetic.SyntheticWorld(0).logging_policy(world.columns))
  rows, fb = ope_sim.draw_log(pool, 200_000, np.random.default_rng(0))
  # The policy's distribution depends on (inventory, age) only: 144 cells, 400 draws each.
  cells = world.columns['inventory_id'] * 8 + world.columns['age_group']
  first_row = {c: r for r, c in reversed(list(enumerate(cells)))}
  keys = np.array(sorted(first_row))
  table = ts.action_distribution(np.array([first_row[k] for k in keys]), samples=400)
  dist = table[np.searchsorted(keys, cells)]
  truth = pool.value(dist)
  assert truth > pool.value(pool.logging)                         # it learnt something
  for e in est.estimate(fb, dist[rows][:, :, None], ['ips', 'dr'], n_bootstrap=0):
    assert abs(e.value - truth) < 3 * e.se, (e.estimator, e.value, truth, e.se)
