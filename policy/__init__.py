"""The decision layer on top of the CTR model.

* :mod:`policy.ope`: off-policy evaluation. The value a new policy would have had, from
  the logs of the policy that showed the ads (IPS, DR and their kin), with standard errors
  and bootstrap confidence intervals.

NumPy does the arithmetic; the reward model and the policies' click predictions are the
project's own CTR models.
"""
