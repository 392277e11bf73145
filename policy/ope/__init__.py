"""Off-policy evaluation (OPE): estimate a policy's value from another policy's logs.

* :mod:`policy.ope.estimators`: IPS, SNIPS, DM, DR, SNDR, Switch-DR and DRos, each with a
  point estimate, a standard error and a bootstrap confidence interval;
* :mod:`policy.ope.logs`: the logged data (context, action, position, reward, propensity)
  from Parquet or CSV, checked row by row;
* :mod:`policy.ope.policies`: evaluation policies as action distributions of shape
  (rounds, actions, positions): uniform random, epsilon-greedy, Bernoulli Thompson
  sampling (Monte Carlo), and greedy or softmax over a CTR model's predictions;
* :mod:`policy.ope.reward_model`: q_hat for DM and DR, the project's CTR model trained on
  the logs by ``run_fn``, cross-fitted;
* :mod:`policy.ope.obd`: the Open Bandit Dataset as logs;
* :mod:`policy.ope.simulation`: the generated dataset as a bandit with exact values;
* :mod:`policy.ope.cli`: ``python -m policy ope``.

The pipeline's ``components.off_policy_evaluator`` uses them on the test split.
"""
