"""The decision layer on top of the CTR model.

* :mod:`policy.ope`: off-policy evaluation. The value a new policy would have had, from
  the logs of the policy that showed the ads (IPS, DR and their kin), with standard errors
  and bootstrap confidence intervals.
* :mod:`policy.bandit`: Thompson-sampling bandits (Beta-Bernoulli, linear, neural-linear on
  the CTR model's last hidden layer) and their baselines (greedy, epsilon-greedy, UCB).
* :mod:`policy.bidding`: second-price bidding under a budget: Lagrangian pacers (dual step,
  PID; CPC and ROI caps), the hindsight optimum, replay on iPinYou, the closed loop on a
  served model.

NumPy does the arithmetic; the reward model and the policies' click predictions are the
project's own CTR models.
"""
