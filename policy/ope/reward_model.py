"""The reward model q_hat(x, a, k) of DM and the DR estimators: the project's CTR model,
trained on the logs by the Trainer's own ``run_fn`` and cross-fitted.

Cross-fitting (``folds`` = k): the logged rounds are split into k folds at random; for
each fold, a model is trained on the other k - 1 (a random ``eval_fraction`` of them is
its validation split: early stopping and the calibrated head) and predicts the click of
every (action, position) for the rounds of that fold only. So no round is scored by a
model that saw it, which keeps DR's correction term unbiased.

The training table is the logs themselves: the context columns, the logged ``action`` and
``position`` and the ``reward`` as the label, under a feature spec (YAML, as any dataset:
``specs/open_bandit.yaml``). ``per_action`` maps a feature of the spec to a prefix of
per-action context columns: the Open Bandit Dataset's ``user-item_affinity_<item>``
becomes the feature ``affinity``, the logged item's value in training and each
candidate's own when scoring.

Scoring calls the exported ``predict_raw`` signature (one tensor per raw feature) on the
(rounds x actions x positions) candidates, in blocks.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Dict, List, Optional, Sequence

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from policy.ope import logs as logs_lib
from serving import signatures as sig

SCORE_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
  """How each fold's model is trained (``trainer`` adds ``run_fn`` settings)."""
  model: str = 'dnn'
  folds: int = 3
  passes: float = 10.0
  epochs: int = 10
  batch_size: int = 256
  eval_fraction: float = 0.1
  seed: int = 0
  trainer: Dict[str, object] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.folds < 2:
      raise ValueError(f'cross-fitting needs at least 2 folds, got {self.folds}')
    if not 0 < self.eval_fraction < 1:
      raise ValueError(f'eval_fraction must be in (0, 1), got {self.eval_fraction}')


def _per_action_matrix(frame, prefix: str, n_actions: int) -> np.ndarray:
  """The (rounds, actions) values of the per-action columns ``<prefix><action>``."""
  cols = [f'{prefix}{a}' for a in range(n_actions)]
  missing = [c for c in cols if c not in frame.columns]
  if missing:
    raise logs_lib.OPEInputError(f'per-action columns {missing[:5]} (prefix {prefix!r}) are '
                                 f'not in the logs')
  return frame[cols].to_numpy(np.float64)


def training_table(logs: logs_lib.Logs, spec, per_action: Optional[Dict[str, str]] = None):
  """The logs as a training table of the spec's columns (the logged action's values for
  the ``per_action`` features)."""
  import pyarrow as pa
  f = logs.frame
  cols = {}
  for name in spec.required_columns:
    if per_action and name in per_action:
      values = _per_action_matrix(f, per_action[name], logs.n_actions)
      cols[name] = values[np.arange(len(f)), f[logs_lib.ACTION].to_numpy()]
    elif name in f.columns:
      cols[name] = f[name].to_numpy()
    else:
      raise logs_lib.OPEInputError(f'the spec reads column {name!r}, which the logs lack')
  return pa.table(cols)


def candidate_features(logs: logs_lib.Logs, rows: np.ndarray, features: Sequence[str],
                       per_action: Optional[Dict[str, str]] = None) -> Dict[str, np.ndarray]:
  """The ``features`` (raw names) for every (round of ``rows``, action, position),
  flattened in that order: len(rows) * actions * positions values per feature. ``action``
  and ``position`` are the candidate's; ``per_action`` features the candidate action's
  column; any other name is the round's context column."""
  f = logs.frame.iloc[rows]
  a, k = logs.n_actions, logs.n_positions
  m = len(rows)
  out = {}
  for name in features:
    if name == logs_lib.ACTION:
      out[name] = np.broadcast_to(np.arange(a)[None, :, None], (m, a, k)).ravel()
    elif name == logs_lib.POSITION:
      out[name] = np.broadcast_to(np.arange(k)[None, None, :], (m, a, k)).ravel()
    elif per_action and name in per_action:
      v = _per_action_matrix(f, per_action[name], a)
      out[name] = np.broadcast_to(v[:, :, None], (m, a, k)).ravel()
    elif name in f.columns:
      v = f[name].to_numpy()
      out[name] = np.broadcast_to(v[:, None, None], (m, a, k)).ravel()
    else:
      raise logs_lib.OPEInputError(f'the model reads feature {name!r}, which the logs lack '
                                   f'(context columns: {logs.context[:20]})')
  return out


def predict_raw(model):
  """The ``predict_raw`` signature of a SavedModel folder (a loaded one passes through)."""
  if not isinstance(model, (str, os.PathLike)):
    return model
  import tensorflow as tf
  return tf.saved_model.load(model).signatures[sig.PREDICT_RAW]


def model_features(model) -> List[str]:
  """The raw features a SavedModel's ``predict_raw`` signature takes (``model``: its
  folder or the signature)."""
  return sorted(predict_raw(model).structured_input_signature[1])


def score(model, features: Dict[str, np.ndarray]) -> np.ndarray:
  """The model's calibrated click probability (``probability``) for each row of
  ``features``, through the ``predict_raw`` signature (``model``: the SavedModel folder,
  or the signature already loaded)."""
  import tensorflow as tf
  fn = predict_raw(model)
  specs = fn.structured_input_signature[1]
  n = len(next(iter(features.values())))
  out = np.empty(n, np.float32)
  for s in range(0, n, SCORE_BLOCK):
    batch = {}
    for name, spec in specs.items():
      v = features[name][s:s + SCORE_BLOCK]
      if spec.dtype == tf.string:
        v = v.astype(str) if v.dtype.kind != 'S' else v
      batch[name] = tf.constant(v, dtype=spec.dtype)
    out[s:s + SCORE_BLOCK] = fn(**batch)[sig.PROBABILITY].numpy().ravel()
  return out


def _train(table, spec, config: RewardModelConfig, workdir: str, rng) -> str:
  """One fold's model on ``table`` (split into train and eval); its SavedModel path."""
  import pyarrow as pa
  from trainer import task
  from transform import local
  is_eval = rng.random(table.num_rows) < config.eval_fraction
  tables = {'train': table.filter(pa.array(~is_eval)), 'eval': table.filter(pa.array(is_eval))}
  paths = local.transform_tables(tables, spec, os.path.join(workdir, 'transformed'))
  from trainer.args import TrainerArgs
  custom = dataclasses.replace(
      TrainerArgs(feature_spec=spec.to_dict(), model=config.model,
                  batch_size=config.batch_size, epochs=config.epochs),
      **config.trainer).to_custom_config()
  steps = max(1, int(config.passes * tables['train'].num_rows / config.batch_size))
  eval_steps = max(1, -(-tables['eval'].num_rows // config.batch_size))
  args = local.fn_args(paths, workdir, custom, steps, eval_steps)
  task.run_fn(args)
  return args.serving_model_dir


def cross_fit(logs: logs_lib.Logs, spec, config: RewardModelConfig = RewardModelConfig(),
              per_action: Optional[Dict[str, str]] = None,
              workdir: Optional[str] = None) -> np.ndarray:
  """q_hat of shape (rounds, actions, positions), each fold scored by the model trained
  on the other folds."""
  n, a, k = len(logs), logs.n_actions, logs.n_positions
  if n < 2 * config.folds:
    raise logs_lib.OPEInputError(f'{n} logged rows are too few for {config.folds} folds')
  if logs_lib.POSITION not in spec.feature_names and k > 1:
    raise ValueError('the reward model spec must have the position as a feature when the '
                     'logs have several positions')
  rng = np.random.default_rng(config.seed)
  fold = rng.permutation(n) % config.folds
  table = training_table(logs, spec, per_action)
  out = np.empty((n, a, k), np.float32)
  root = workdir or tempfile.mkdtemp(prefix='ope_reward_model_')
  import pyarrow as pa
  for j in range(config.folds):
    held_out = np.flatnonzero(fold == j)
    model_dir = _train(table.filter(pa.array(fold != j)), spec, config,
                       os.path.join(root, f'fold{j}'), rng)
    q = score(model_dir, candidate_features(logs, held_out, spec.feature_names, per_action))
    out[held_out] = q.reshape(len(held_out), a, k)
  return out
