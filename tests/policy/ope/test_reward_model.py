"""policy/ope/reward_model.py: the cross-fitted reward model is the project's CTR model,
trained by run_fn; no round is scored by a model that saw it; its q_hat ranks the
actions as the true click rates do and makes DR close to the truth."""
import json

import numpy as np
import pandas as pd
import pytest

from policy.ope import estimators, logs, policies, reward_model
from transform import feature_spec as fs

SPEC = fs.from_dict({
    'name': 'toy_logs', 'labels': ['reward'],
    'categorical': ['action', 'position', 'user'], 'numeric': ['affinity'],
    'split': {'train': 8, 'eval': 1, 'test': 1}})


def _toy_logs(n=4000, seed=0):
  """Uniform logging over 5 items and 2 slots; the click rate depends on the item, the
  slot, the user and the user-item affinity (per-item columns aff_<item>)."""
  rng = np.random.default_rng(seed)
  a, k = 5, 2
  user = rng.integers(0, 3, n)
  aff = rng.random((n, a)) < 0.2
  item_rate = np.array([0.02, 0.05, 0.1, 0.2, 0.35])
  q = np.clip(item_rate[None, :, None] * np.array([1.0, 0.5])[None, None, :]
              * (1 + 0.5 * user)[:, None, None] * (1 + aff[:, :, None]), 0, 1)   # (n, a, k)
  action = rng.integers(0, a, n)
  position = rng.integers(0, k, n)
  reward = rng.random(n) < q[np.arange(n), action, position]
  frame = pd.DataFrame({'user': [f'u{u}' for u in user], 'action': action,
                        'position': position, 'reward': reward.astype(int),
                        'propensity': np.full(n, 1 / a)})
  for i in range(a):
    frame[f'aff_{i}'] = aff[:, i].astype(float)
  return logs.from_frame(frame, n_actions=a, n_positions=k), q


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
  """Cross-fits the toy logs (two folds), recording which rows trained each fold's model
  and which rows each model scored (the real functions, wrapped)."""
  import pyarrow as pa
  log, q = _toy_logs()
  workdir = tmp_path_factory.mktemp('reward_model')
  trained_on, scored = [], []
  real_train, real_candidates = reward_model._train, reward_model.candidate_features
  real_table = reward_model.training_table

  def spy_train(table, *args, **kwargs):
    trained_on.append(set(table.column('row').to_pylist()))
    return real_train(table.drop(['row']), *args, **kwargs)

  def spy_candidates(lg, rows, *args, **kwargs):
    scored.append(set(rows.tolist()))
    return real_candidates(lg, rows, *args, **kwargs)

  with pytest.MonkeyPatch.context() as mp:
    mp.setattr(reward_model, 'training_table', lambda *a, **k: real_table(
        *a, **k).append_column('row', pa.array(np.arange(len(log)))))
    mp.setattr(reward_model, '_train', spy_train)
    mp.setattr(reward_model, 'candidate_features', spy_candidates)
    config = reward_model.RewardModelConfig(folds=2, passes=6, epochs=3, batch_size=128)
    q_hat = reward_model.cross_fit(log, SPEC, config, per_action={'affinity': 'aff_'},
                                   workdir=str(workdir))
  return log, q, q_hat, trained_on, scored, workdir


def test_cross_fitted_model_ranks_actions_and_keeps_folds_apart(fitted):
  log, q, q_hat, trained_on, scored, _ = fitted
  # Cross-fitting: two models, each scoring only the rounds it did not see.
  assert len(trained_on) == 2 and len(scored) == 2
  assert scored[0] | scored[1] == set(range(len(log)))
  for seen, rows in zip(trained_on, scored):
    assert not seen & rows
  assert q_hat.shape == (len(log), 5, 2) and np.all((q_hat >= 0) & (q_hat <= 1))
  # The model learned the click rates: its q_hat orders the (round, item, slot) cells
  # as the true rates do, and the best item by q_hat is the true best for most rounds.
  from scipy.stats import spearmanr
  assert spearmanr(q_hat.ravel(), q.ravel()).statistic > 0.7
  assert (q_hat[:, :, 0].argmax(axis=1) == q[:, :, 0].argmax(axis=1)).mean() > 0.8
  # And DR with it estimates a greedy policy's value within 4 standard errors of the
  # truth (DR is unbiased; a 95% interval misses one time in twenty).
  greedy = policies.greedy(q_hat[:, :, 0], n_positions=2)
  truth = float((greedy * q).sum(axis=1)[np.arange(len(log)), log.frame['position']].mean())
  (dr,) = estimators.estimate(log.feedback(q_hat), greedy, estimators=('dr',),
                              n_bootstrap=200)
  assert abs(dr.value - truth) < 4 * dr.se and dr.ci_low < dr.value < dr.ci_high


def test_cli_evaluates_a_saved_model_policy(fitted, tmp_path, capsys):
  # One fold's exported model as the evaluation policy: greedy and epsilon-greedy over its
  # predicted clicks, read through its predict_raw signature.
  from policy import __main__ as policy_main
  log, q, _, _, _, workdir = fitted
  model = str(workdir / 'fold0' / 'serving_model')
  path = tmp_path / 'logs.parquet'
  log.frame.to_parquet(path)
  scores = policies.model_scores(model, log, {'affinity': 'aff_'})
  assert scores.shape == (len(log), 5)
  assert (scores.argmax(axis=1) == q[:, :, 0].argmax(axis=1)).mean() > 0.8
  out = tmp_path / 'greedy.json'
  assert policy_main.main(['ope', '--logs', str(path), '--policy', model, '--per-action',
                           'affinity=aff_', '--n-actions', '5', '--out', str(out)]) == 0
  result = json.loads(out.read_text())
  assert result['policy'].startswith('greedy over')
  ips = next(e for e in result['estimates'] if e['estimator'] == 'ips')
  greedy = policies.greedy(scores, 2)
  truth = float((greedy * q).sum(axis=1)[np.arange(len(log)), log.frame['position']].mean())
  assert abs(ips['value'] - truth) < 4 * ips['se']
  assert 'greedy over' in capsys.readouterr().out
  assert policy_main.main(['ope', '--logs', str(path), '--policy', 'epsilon-greedy',
                           '--model', model, '--epsilon', '0.5', '--per-action',
                           'affinity=aff_', '--estimators', 'snips', '--lift']) == 0
  assert 'epsilon-greedy (0.5)' in capsys.readouterr().out


def test_reward_model_input_errors():
  log, _ = _toy_logs(n=50)
  with pytest.raises(estimators.OPEInputError, match='per-action columns'):
    reward_model.training_table(log, SPEC, per_action={'affinity': 'affinity_'})
  with pytest.raises(ValueError, match='at least 2 folds'):
    reward_model.RewardModelConfig(folds=1)
  no_position = fs.from_dict({'name': 'x', 'labels': ['reward'], 'categorical': ['action']})
  with pytest.raises(ValueError, match='position as a feature'):
    reward_model.cross_fit(log, no_position)
