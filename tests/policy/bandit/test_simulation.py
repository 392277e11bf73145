"""policy/bandit/simulation.py: regret of the bandits in the generated world against its
best arm or best linear policy: sublinear for Thompson sampling, about linear for
epsilon-greedy."""
import pytest

from policy.bandit import simulation as sim
from policy.bandit.thompson import (BetaBernoulli, LinearBandit)


@pytest.fixture(scope='module')
def world():
  return sim.world(50_000, seed=0)


def test_beta_ts_regret_is_sublinear_and_below_epsilon_greedy(world):
  """Against the best fixed creative (the context-free policy's own class), 2M rounds."""
  ref = sim.best_fixed_arm(world)
  for seed in (0, 1):
    ts = sim.simulate(BetaBernoulli(6, 'thompson', seed=seed), world, 2_000_000, 10_000,
                      seed, ref)
    eps = sim.simulate(BetaBernoulli(6, 'epsilon', epsilon=0.1, seed=seed), world,
                       2_000_000, 10_000, seed, ref)
    assert sim.growth(ts) < 0.3              # the second million adds < 30% of the first's
    assert ts.regret[-1] < 0.5 * eps.regret[-1]
    assert sim.growth(eps) > 0.6             # epsilon-greedy's exploration: about linear


def test_linear_ts_regret_sublinear_and_below_epsilon_greedy(world):
  """Linear TS on one-hot (inventory, age) per creative against the best linear policy."""
  f = sim.context_features(world)
  ref = sim.best_in_class(world, f)
  for seed in (0, 1):
    ts = sim.simulate(LinearBandit(f, 'thompson', seed=seed), world, 300_000, 4000, seed, ref)
    eps = sim.simulate(LinearBandit(f, 'epsilon', epsilon=0.1, seed=seed), world, 300_000,
                       4000, seed, ref)
    assert sim.growth(ts) < 0.6
    assert ts.regret[-1] < eps.regret[-1]
  # Context helps: the linear policy's reward beats the best fixed creative's.
  fixed = world.q[:, sim.best_fixed_arm(world)[0]].mean()
  assert ts.reward[-1] / ts.rounds[-1] > fixed * 1.1
