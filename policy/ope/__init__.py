"""Off-policy evaluation (OPE): estimate a policy's value from another policy's logs.

* :mod:`policy.ope.estimators`: IPS, SNIPS, DM, DR, SNDR, Switch-DR and DRos, each with a
  point estimate, a standard error and a bootstrap confidence interval;
* :mod:`policy.ope.logs`: the logged data (context, action, position, reward, propensity)
  from Parquet or CSV, checked row by row;
* :mod:`policy.ope.policies`: evaluation policies as action distributions of shape
  (rounds, actions, positions): uniform random, epsilon-greedy, Bernoulli Thompson
  sampling (Monte Carlo), and greedy or softmax over a CTR model's predictions.
"""
