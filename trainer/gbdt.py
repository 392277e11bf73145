"""The GBDT baseline: TensorFlow Decision Forests' gradient boosted trees, as a Trainer.

Deep CTR models on tabular data often lose to gradient boosted trees. The pipeline
trains this baseline beside the deep model on the same Transform output, and the
``GbdtEvaluator`` withholds the blessing unless the deep model beats it (see
:mod:`pipeline.evaluation`). It is never pushed.

``run_fn`` reads the same ``custom_config`` as :func:`trainer.task.run_fn`
(``feature_spec``, ``heads.calibration``) plus ``gbdt``, the fields of
:class:`GbdtConfig`. It

* reads the transformed train and eval splits into memory (a decision forest learner
  needs the whole table);
* trains ``tfdf.keras.GradientBoostedTreesModel`` on the primary label, early-stopped on
  the eval split's loss. Categorical fields with at most ``max_categorical_values`` ids
  are categorical features; larger ones (user and item ids, hashed ids) are given as
  their integer id, a numeric feature: in trials here, TF-DF's categorical splits slowed
  down by more than an order of magnitude with a field of some 1,600 values, and on
  MovieLens they overfit sooner than the ids as numbers
  (``python -m bench.quality --gbdt-config '{"max_categorical_values": 5000}'`` compares);
  numeric features are numeric; sequence features are not used;
* fits the same post-hoc calibrator as the deep model on the eval split;
* exports with :func:`trainer.export.export_serving_model`, so the SavedModel has the
  deep model's signatures and Transform graph, and writes ``trainer_report.json``.

Loading the SavedModel needs TF-DF's custom ops: :func:`custom_eval_shared_model` is the
hook the TFX Evaluator calls (``module_path='trainer.gbdt'``).
"""

from __future__ import annotations

import dataclasses
import functools
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import json  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Tuple  # noqa: E402

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainer import export  # noqa: E402
from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402

REPORT_FILE = 'trainer_report.json'
CONFIG_KEY = 'gbdt'
READ_BATCH = 8192


@dataclasses.dataclass
class GbdtConfig:
  """Gradient boosted trees settings (``custom_config['gbdt']``).

  The defaults are TF-DF's, except ``num_trees`` (TF-DF: 300; early stopping picks the
  number), the categorical handling (see the module docstring) and early stopping on the
  eval split instead of a held-out share of the training rows.
  """
  num_trees: int = 1000
  max_depth: int = 6
  shrinkage: float = 0.1
  min_examples: int = 5
  subsample: float = 1.0
  l2_regularization: float = 0.0
  max_categorical_values: int = 256
  early_stopping_num_trees_look_ahead: int = 30
  num_threads: int = 0          # 0: every CPU
  seed: int = 1234

  def __post_init__(self):
    checks = {'num_trees': self.num_trees >= 1, 'max_depth': self.max_depth >= 1,
              'shrinkage': 0 < self.shrinkage <= 1, 'min_examples': self.min_examples >= 1,
              'subsample': 0 < self.subsample <= 1,
              'l2_regularization': self.l2_regularization >= 0,
              'max_categorical_values': self.max_categorical_values >= 2,
              'early_stopping_num_trees_look_ahead':
                  self.early_stopping_num_trees_look_ahead >= 1,
              'num_threads': self.num_threads >= 0}
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
      raise ValueError(f'gbdt: invalid {", ".join(f"{k}={getattr(self, k)!r}" for k in bad)}')


def config_from_dict(values: Dict[str, Any] | None) -> GbdtConfig:
  from trainer.models import from_dict
  return from_dict(GbdtConfig, values, CONFIG_KEY)


@dataclasses.dataclass(frozen=True)
class ForestInputs:
  """Which transformed features the forest reads, and as what."""
  categorical: Tuple[str, ...]     # ids as strings: TF-DF categorical
  ids: Tuple[str, ...]             # ids of large fields as numbers
  numeric: Tuple[str, ...]

  @classmethod
  def from_spec(cls, spec: fs.FeatureSpec, cardinalities: Dict[str, int],
                max_categorical_values: int) -> 'ForestInputs':
    small = [c.name for c in spec.categorical
             if cardinalities[c.name] <= max_categorical_values]
    return cls(tuple(transformed_name(n) for n in small),
               tuple(transformed_name(c.name) for c in spec.categorical
                     if c.name not in small),
               tuple(transformed_name(n.name) for n in spec.numeric))

  @property
  def names(self) -> Tuple[str, ...]:
    return self.categorical + self.ids + self.numeric

  def __call__(self, features: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """The forest's inputs from transformed features. Training and serving both go
    through this function."""
    out = {k: tf.strings.as_string(features[k]) for k in self.categorical}
    out.update({k: tf.cast(features[k], tf.float32) for k in self.ids + self.numeric})
    return out


def read_split(files: List[str], data_accessor, tf_transform_output, spec: fs.FeatureSpec
               ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
  """Every row of a transformed split: (categorical and numeric features, primary label)
  as NumPy arrays."""
  from trainer.task import _input_fn  # the deep model's reader, so both see the same rows
  label = transformed_name(spec.primary_label.name)
  columns: Dict[str, list] = {transformed_name(n): []
                              for n in [c.name for c in spec.categorical]
                              + [n.name for n in spec.numeric]}
  labels = []
  for x, y in _input_fn(files, data_accessor, tf_transform_output, spec, READ_BATCH,
                        shuffle=False):
    for k in columns:
      columns[k].append(x[k].numpy())
    labels.append(y[label].numpy())
  if not labels:
    raise ValueError(f'gbdt: no rows in {files}')
  return {k: np.concatenate(v) for k, v in columns.items()}, np.concatenate(labels)


def _dataset(inputs: ForestInputs, x: Dict[str, np.ndarray], y=None) -> tf.data.Dataset:
  ds = tf.data.Dataset.from_tensor_slices((x, y) if y is not None else x).batch(READ_BATCH)
  if y is not None:
    return ds.map(lambda f, l: (inputs(f), l))
  return ds.map(inputs)


def train_forest(inputs: ForestInputs, config: GbdtConfig, train, valid):
  """A fitted ``tfdf.keras.GradientBoostedTreesModel`` on (features, labels) pairs of
  NumPy arrays; early-stopped on ``valid``'s loss."""
  import tensorflow_decision_forests as tfdf
  usages = ([tfdf.keras.FeatureUsage(k, tfdf.keras.FeatureSemantic.CATEGORICAL)
             for k in inputs.categorical] +
            [tfdf.keras.FeatureUsage(k, tfdf.keras.FeatureSemantic.NUMERICAL)
             for k in inputs.ids + inputs.numeric])
  threads = {'num_threads': config.num_threads} if config.num_threads else {}
  model = tfdf.keras.GradientBoostedTreesModel(
      task=tfdf.keras.Task.CLASSIFICATION, features=usages,
      exclude_non_specified_features=True, num_trees=config.num_trees,
      max_depth=config.max_depth, shrinkage=config.shrinkage,
      min_examples=config.min_examples, subsample=config.subsample,
      l2_regularization=config.l2_regularization,
      # With validation_data the ratio is ignored (the eval split is the validation set),
      # but 0 would turn early stopping off.
      validation_ratio=0.1, early_stopping='LOSS_INCREASE',
      early_stopping_num_trees_look_ahead=config.early_stopping_num_trees_look_ahead,
      random_seed=config.seed, verbose=0, **threads)
  model.fit(_dataset(inputs, *train), validation_data=_dataset(inputs, *valid), verbose=0)
  return model


def predict_forest(model, inputs: ForestInputs, x: Dict[str, np.ndarray]) -> np.ndarray:
  return np.asarray(model.predict(_dataset(inputs, x), verbose=0), np.float64).ravel()


def _logit(p):
  p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
  return np.log(p) - np.log1p(-p)


class ForestServing(tf.Module):
  """Transformed features -> ``{'probability': [batch, 1]}``: the forest's probability
  through the fitted calibrator (applied to its logit), as the export expects."""

  def __init__(self, forest, calibration, inputs: ForestInputs):
    super().__init__(name='gbdt_serving')
    self.forest = forest
    self.calibration = calibration
    self._inputs = inputs

  def __call__(self, features):
    p = tf.reshape(tf.cast(self.forest(self._inputs(features)), tf.float32), [-1, 1])
    p = tf.clip_by_value(p, 1e-7, 1 - 1e-7)
    return {export.OUTPUT_KEY: self.calibration(tf.math.log(p) - tf.math.log1p(-p))}


def run_fn(fn_args) -> None:
  """TFX Trainer entry point for the GBDT baseline."""
  from sklearn.metrics import roc_auc_score
  import tensorflow_transform as tft
  from trainer import model as model_lib
  from trainer import task
  from trainer.layers import calibration
  from trainer.models import core
  config: Dict[str, Any] = fn_args.custom_config or {}
  if 'feature_spec' not in config:
    raise ValueError('the GBDT Trainer needs custom_config["feature_spec"]')
  spec = fs.from_dict(config['feature_spec'])
  gbdt = config_from_dict(config.get(CONFIG_KEY))
  method = (config.get('heads') or {}).get('calibration', core.HeadConfig.calibration)
  _, tasks = core.task_layout(spec, 'primary')
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
  inputs = ForestInputs.from_spec(
      spec, model_lib.cardinalities(spec, tf_transform_output), gbdt.max_categorical_values)
  train = read_split(fn_args.train_files, fn_args.data_accessor, tf_transform_output, spec)
  valid = read_split(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, spec)
  start = time.perf_counter()
  forest = train_forest(inputs, gbdt, train, valid)
  seconds = time.perf_counter() - start
  p_valid = predict_forest(forest, inputs, valid[0])
  logits = {tasks[0].key: _logit(p_valid)}
  calibrators, calibration_report = task.fit_calibrators(
      tasks, method, logits, {tasks[0].target: valid[1].astype(np.float64)})
  one_class = valid[1].min() == valid[1].max()
  report = dict(
      model='gbdt', config=dataclasses.asdict(gbdt), inputs=dataclasses.asdict(inputs),
      train_rows=int(len(train[1])), eval_rows=int(len(valid[1])),
      trees=int(forest.make_inspector().num_trees()), train_seconds=round(seconds, 2),
      val_auc=float('nan') if one_class else float(roc_auc_score(valid[1], p_valid)),
      val_logloss=calibration.binary_nll(logits[tasks[0].key], valid[1]),
      calibration=calibration_report)
  logging.info('GBDT trainer report: %s', json.dumps(report))
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, REPORT_FILE), 'w') as f:
    json.dump(report, f, indent=2)
  serving = ForestServing(forest, calibrators[tasks[0].key].layer(tasks[0].key), inputs)
  export.export_serving_model(serving, tf_transform_output, spec, fn_args.serving_model_dir)


def load_forest_ops() -> None:
  """Registers TF-DF's custom ops in this process (needed before loading the model)."""
  import tensorflow_decision_forests  # noqa: F401  pylint: disable=unused-import


def _construct_with_forest_ops(construct_fn):
  load_forest_ops()
  return construct_fn()


def custom_eval_shared_model(eval_saved_model_path, model_name, eval_config, **kwargs):
  """The TFX Evaluator's hook (``module_path``): TFMA's default shared model, whose
  loader first registers TF-DF's ops, in whichever (Beam worker) process loads it."""
  import tensorflow_model_analysis as tfma
  load_forest_ops()
  shared = tfma.default_eval_shared_model(
      eval_saved_model_path=eval_saved_model_path, model_name=model_name,
      eval_config=eval_config, **kwargs)
  loader = shared.model_loader
  return shared._replace(model_loader=tfma.types.ModelLoader(
      construct_fn=functools.partial(_construct_with_forest_ops, loader.construct_fn),
      tags=loader.tags))
