"""Contextual bandits with Thompson sampling (docs/BANDIT.md).

* :mod:`~policy.bandit.thompson`: Beta-Bernoulli, Bayesian linear (linear and neural-linear
  TS) and pCTR-calibration posteriors; strategies thompson, greedy, epsilon, ucb; batched
  updates, saved state, Monte Carlo action distributions.
* :mod:`~policy.bandit.features`: feature maps phi(x, a): one-hot per arm, or the CTR
  model's last hidden layer from a pushed SavedModel.
* :mod:`~policy.bandit.simulation`: the generated data as a bandit with exact click
  probabilities; cumulative regret.
"""
