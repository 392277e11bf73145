"""policy/ope/estimators.py: known-truth checks of the estimators, their standard errors
and intervals, and bad input named by row."""
import numpy as np
import pytest

from policy.ope import estimators as ope


def _softmax(z, axis=1):
  z = z - z.max(axis=axis, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=axis, keepdims=True)


def _bandit(n, n_actions=6, n_positions=2, seed=0, model_noise=0.0):
  """Contextual logs of one environment (``seed`` draws the logs) with known click
  probabilities q(x, a, k): a softmax logging policy,
  a different softmax evaluation policy. Returns the feedback, pi_e and pi_e's true value
  on these contexts (sum over a of pi_e q, averaged over the logged rounds)."""
  item = np.random.default_rng(1234).normal(size=(3, n_actions))   # one environment
  rng = np.random.default_rng(seed)                                  # its logs
  x = rng.normal(size=(n, 3))
  pos_bias = np.array([1.0, 0.6, 0.4])[:n_positions]
  q = 1 / (1 + np.exp(-(x @ item - 1.5)))[:, :, None] * pos_bias[None, None, :]
  pi_b = np.repeat(_softmax(0.5 * x @ item)[:, :, None], n_positions, axis=2)
  pi_e = np.repeat(_softmax(-1.0 * x @ item + 0.3)[:, :, None], n_positions, axis=2)
  position = rng.integers(0, n_positions, n)
  u = rng.random(n)[:, None]
  action = (np.cumsum(pi_b[np.arange(n), :, position], axis=1) < u).sum(axis=1)
  action = np.minimum(action, n_actions - 1)
  reward = (rng.random(n) < q[np.arange(n), action, position]).astype(float)
  q_hat = np.clip(q + model_noise * rng.normal(size=q.shape), 0, 1)
  fb = ope.Feedback(reward=reward, action=action, position=position,
                    pscore=pi_b[np.arange(n), action, position], reward_hat=q_hat)
  truth = float((pi_e * q).sum(axis=1)[np.arange(n), position].mean())
  return fb, pi_e, truth


def test_every_estimator_is_close_to_the_truth_and_covers_it():
  fb, pi_e, truth = _bandit(40_000, model_noise=0.05, seed=1)
  results = {e.estimator: e for e in ope.estimate(fb, pi_e, n_bootstrap=300, seed=3)}
  assert set(results) == set(ope.ALL)
  for name, e in results.items():
    assert e.n == 40_000 and e.se > 0
    assert e.ci_low < e.value < e.ci_high, name
    if name != 'dm':           # DM carries the reward model's bias; the others are unbiased
      assert abs(e.value - truth) < 4 * e.se, (name, e.value, truth, e.se)
      assert e.ci_low - 2 * e.se < truth < e.ci_high + 2 * e.se, name


def test_dm_with_the_true_model_is_exact_and_dr_beats_ips_on_variance():
  fb, pi_e, truth = _bandit(20_000, model_noise=0.0, seed=2)
  r = {e.estimator: e for e in ope.estimate(fb, pi_e, n_bootstrap=0)}
  assert r['dm'].value == pytest.approx(truth, rel=1e-9)
  assert r['dr'].se < r['ips'].se
  assert np.isnan(r['ips'].ci_low)          # no bootstrap asked for


def test_ips_and_dr_are_unbiased_over_repeated_logs():
  # The mean over 200 independent logs of 2,000 rounds is within 3 SE of the truth,
  # while DM with a biased model is not.
  values = {'ips': [], 'dr': [], 'dm': []}
  truths = []
  for seed in range(200):
    fb, pi_e, truth = _bandit(2_000, seed=100 + seed)
    fb.reward_hat = np.clip(fb.reward_hat * 1.3, 0, 1)        # a model that overshoots
    for e in ope.estimate(fb, pi_e, estimators=('ips', 'dr', 'dm'), n_bootstrap=0):
      values[e.estimator].append(e.value)
    truths.append(truth)
  truth = np.mean(truths)
  for name in ('ips', 'dr'):
    v = np.asarray(values[name])
    assert abs(v.mean() - truth) < 3 * v.std(ddof=1) / np.sqrt(v.size), name
  dm = np.asarray(values['dm'])
  assert dm.mean() - truth > 10 * dm.std(ddof=1) / np.sqrt(dm.size)


def test_standard_error_matches_the_spread_over_repeated_logs():
  spread = {'ips': [], 'snips': [], 'sndr': []}
  ses = {k: [] for k in spread}
  for seed in range(120):
    fb, pi_e, _ = _bandit(3_000, seed=500 + seed, model_noise=0.05)
    for e in ope.estimate(fb, pi_e, estimators=tuple(spread), n_bootstrap=0):
      spread[e.estimator].append(e.value)
      ses[e.estimator].append(e.se)
  for name in spread:
    ratio = np.mean(ses[name]) / np.std(spread[name], ddof=1)
    assert 0.8 < ratio < 1.25, (name, ratio)


def test_bootstrap_interval_is_about_plus_minus_two_standard_errors():
  fb, pi_e, _ = _bandit(30_000, seed=4, model_noise=0.05)
  for e in ope.estimate(fb, pi_e, estimators=('ips', 'snips', 'dr'), n_bootstrap=400):
    width = (e.ci_high - e.ci_low) / (2 * 1.96 * e.se)
    assert 0.85 < width < 1.15, (e.estimator, width)


def test_on_policy_logs_give_the_mean_reward():
  # pi_e = pi_b: every weight is 1, IPS and SNIPS are the logged mean reward.
  n, a = 5_000, 4
  rng = np.random.default_rng(0)
  action = rng.integers(0, a, n)
  reward = rng.random(n) < 0.1
  pi = np.full((a, 1), 1 / a)                                  # context-free (actions, positions)
  fb = ope.Feedback(reward=reward, action=action, pscore=np.full(n, 1 / a))
  r = {e.estimator: e.value for e in ope.estimate(fb, pi, estimators=('ips', 'snips'),
                                                  n_bootstrap=50)}
  assert r['ips'] == pytest.approx(reward.mean()) and r['snips'] == pytest.approx(reward.mean())


def test_tuned_estimators_report_their_choice_and_fall_back_to_dr():
  fb, pi_e, _ = _bandit(10_000, seed=6, model_noise=0.02)
  r = {e.estimator: e for e in ope.estimate(fb, pi_e, n_bootstrap=0)}
  assert r['switch-dr'].params['tau'] > 0 and r['dros'].params['lambda'] > 0
  # With only inf in the grid, both are DR.
  r2 = {e.estimator: e for e in ope.estimate(
      fb, pi_e, estimators=('dr', 'switch-dr', 'dros'), n_bootstrap=0,
      hyper={'switch-dr': [float('inf')], 'dros': [float('inf')]})}
  assert r2['switch-dr'].value == pytest.approx(r2['dr'].value)
  assert r2['dros'].value == pytest.approx(r2['dr'].value)


@pytest.mark.parametrize('change, message', [
    (lambda fb, d: setattr(fb, 'pscore', np.where(np.arange(fb.n) == 7, 0.0, fb.pscore)),
     'propensity must be in \\(0, 1\\]; it is not in row 7'),
    (lambda fb, d: setattr(fb, 'pscore', np.where(np.arange(fb.n) % 50 == 3, 1.5, fb.pscore)),
     'rows 3, 53, 103'),
    (lambda fb, d: setattr(fb, 'action', np.where(np.arange(fb.n) == 11, 6, fb.action)),
     'action outside the action set \\[0, 6\\) in row 11'),
    (lambda fb, d: setattr(fb, 'position', np.where(np.arange(fb.n) == 2, -1, fb.position)),
     'position outside the position set \\[0, 2\\) in row 2'),
    (lambda fb, d: d.__setitem__((5, 0, 1), d[5, 0, 1] + 0.2),
     'does not sum to 1 .* in row 5'),
    (lambda fb, d: setattr(fb, 'reward', np.where(np.arange(fb.n) == 9, np.nan, fb.reward)),
     'reward is missing or not finite in row 9'),
    (lambda fb, d: setattr(fb, 'reward_hat', None), 'need reward_hat'),
])
def test_bad_input_is_refused_with_the_rows_named(change, message):
  fb, pi_e, _ = _bandit(200, seed=8)
  change(fb, pi_e)
  with pytest.raises(ope.OPEInputError, match=message):
    ope.estimate(fb, pi_e, n_bootstrap=0)


def test_context_free_distribution_must_sum_to_one_per_position():
  fb = ope.Feedback(reward=[0, 1], action=[0, 1], pscore=[0.5, 0.5], position=[0, 1])
  with pytest.raises(ope.OPEInputError, match=r'position\(s\) \[1\]'):
    ope.estimate(fb, np.array([[0.5, 0.5], [0.5, 0.4]]), estimators=('ips',))
  with pytest.raises(ope.OPEInputError, match='unknown estimator'):
    ope.estimate(fb, np.full((2, 2), 0.5), estimators=('ipw',))


def test_lift_is_the_value_minus_the_logged_mean_with_a_paired_interval():
  fb, pi_e, truth = _bandit(30_000, seed=9, model_noise=0.05)
  value = {e.estimator: e for e in ope.estimate(fb, pi_e, estimators=('ips', 'dr'),
                                                 n_bootstrap=300, seed=1)}
  lifts = {e.estimator: e for e in ope.lift(fb, pi_e, estimators=('ips', 'dr'),
                                             n_bootstrap=300, seed=1)}
  logged = fb.reward.mean()
  for name in ('ips', 'dr'):
    assert lifts[name].value == pytest.approx(value[name].value - logged)
    assert lifts[name].ci_low < lifts[name].value < lifts[name].ci_high
  # The logging policy's own lift is zero, with a tight paired interval.
  pi_b = np.zeros_like(pi_e)
  pi_b[np.arange(fb.n), fb.action, :] = 1.0      # deterministic: the logged action, p = 1
  same = ope.Feedback(reward=fb.reward, action=fb.action, position=fb.position,
                      pscore=np.ones(fb.n))
  (zero,) = ope.lift(same, pi_b, estimators=('ips',), n_bootstrap=100)
  assert zero.value == pytest.approx(0.0, abs=1e-12) and zero.se == pytest.approx(0, abs=1e-12)
