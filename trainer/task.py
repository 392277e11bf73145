"""The Trainer component's ``run_fn``: train, early-stop, calibrate and export.

``fn_args.custom_config`` is a :class:`trainer.args.TrainerArgs` (its
``to_custom_config()``): the feature spec, the model's name and settings, the task heads,
the loss, the optimiser, the batch size, the early-stopping checkpoints (``epochs`` over
``train_steps``, ``patience``), the ``distribution_strategy`` (:func:`distribution_strategy`)
and the ``seed`` of the weights' initialisation, dropout and the training rows' shuffle.
With TensorFlow's op determinism on (:func:`seed_everything`), the same seed, settings and
input files (rows in the same order) train the same model again in a fresh process
(``tests/trainer/test_task.py``; docs/MODELS.md, "Training"). In the pipeline the files repeat
too: ExampleGen writes its splits in a canonical order and Transform's output is
byte-identical from run to run (:mod:`components.canonical_example_gen`).

Training stops early on the validation AUC of the primary task and restores the best
weights (CTR models often overfit after one epoch). Afterwards each task head's
calibrator is fitted on the validation split. ``<model_run_dir>/trainer_report.json``
holds the model's parameter count, epochs run, best validation AUC, training examples
per second, the training rows and the scale they set on the L2 penalties
(:func:`trainer.models.blocks.scaled_to_rows`), the primary label's rate and the largest
crossed column of the wide part that the rows support
(:func:`trainer.models.blocks.with_wide_cells`), and per task the fitted calibration with
ECE and NLL before and after it (fitted on half of the validation rows, measured on the
other half). The export is
:func:`trainer.export.export_serving_model`.
"""

from __future__ import annotations

import os
import json
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from absl import logging
import attr
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from trainer import export
from trainer.args import REPORT_FILE, TrainerArgs
from trainer import losses as losses_lib
from trainer import inputs as inputs_lib
from trainer import models
from trainer import optimization
from trainer import wide_fit
from trainer.layers import calibration
from trainer.models.blocks import scaled_to_rows, with_wide_cells
from trainer.models.heads import HeadConfig, Task, task_layout
from transform import feature_spec as fs
from transform.preprocessing import transformed_name

STRATEGIES = ('default', 'mirrored', 'multi_worker_mirrored', 'one_device_cpu')


def dense_parameter_count(model: keras.Model) -> int:
  """Parameters outside embedding tables: about the multiply-adds per example of the
  model's dense and cross layers (an embedding lookup reads one row; a dense weight is
  used once per example). bench/latency takes it as the model's size."""
  return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights
                 if not optimization.is_embedding_table(w)))


def distribution_strategy(name: str) -> tf.distribute.Strategy:
  """The ``tf.distribute`` strategy named in configuration (one of :data:`STRATEGIES`).

  ``multi_worker_mirrored`` reads the cluster from ``TF_CONFIG``, as on Kubeflow or
  Vertex; ``mirrored`` uses every local GPU.
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker_mirrored':
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'one_device_cpu':
    return tf.distribute.OneDeviceStrategy('/cpu:0')
  raise ValueError(f'unknown distribution strategy {name!r}; choose from {STRATEGIES}')


def seed_everything(seed: int) -> None:
  """Seeds Python's, NumPy's and TensorFlow's generators and turns on TensorFlow's op
  determinism, so that a run in a fresh process repeats (``tests/trainer/test_task.py``)."""
  keras.utils.set_random_seed(seed)
  tf.config.experimental.enable_op_determinism()


def _input_fn(files: List[str], data_accessor, tf_transform_output, spec: fs.FeatureSpec,
              batch_size: int, shuffle: bool = True, seed: int = 0) -> tf.data.Dataset:
  """(features, {<label>_xf: labels}) batches; every label of the spec is included.
  With ``shuffle``, repeated and shuffled with ``seed``."""
  features = {transformed_name(n) for n in spec.feature_names}
  labels = {transformed_name(l.name) for l in spec.labels}
  ds = data_accessor.tf_dataset_factory(
      files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=shuffle,
                                            shuffle_seed=seed if shuffle else None,
                                            num_epochs=None if shuffle else 1),
      tf_transform_output.transformed_metadata.schema)
  return ds.map(lambda x: ({k: v for k, v in x.items() if k in features},
                           {k: v for k, v in x.items() if k in labels}))


class RecordCounts(NamedTuple):
  rows: int
  positives: float       # the sum of the counted label (0.0 without one)


def count_records(patterns: List[str], label: Optional[Tuple[str, Any]] = None
                  ) -> RecordCounts:
  """Records in the TFRecord files matching ``patterns`` (GZIP where the name ends in
  ``.gz``, as TFX writes them) and, with ``label`` (its name and ``tf.io`` parsing
  spec), the sum of that label. Reads them once, parsing the label alone (the rows
  alone: about 4 s per 800k rows of the generated data on 2 cores)."""
  files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
  if not files:
    raise ValueError(f'no training files match {patterns}')
  rows, positives = 0, 0.0
  for gzip in (True, False):
    group = [f for f in files if f.endswith('.gz') == gzip]
    if not group:
      continue
    ds = tf.data.TFRecordDataset(group, compression_type='GZIP' if gzip else '',
                                 buffer_size=16 << 20).batch(8192)
    label_sum = (lambda b: tf.constant(0.0, tf.float64)) if label is None else (
        lambda b: tf.reduce_sum(tf.cast(tf.io.parse_example(b, dict([label]))[label[0]],
                                        tf.float64)))
    count = lambda b: (tf.shape(b, out_type=tf.int64)[0], label_sum(b))  # noqa: E731
    n, s = ds.map(count).reduce(
        (tf.constant(0, tf.int64), tf.constant(0.0, tf.float64)),
        lambda acc, x: (acc[0] + x[0], acc[1] + x[1]))
    rows, positives = rows + int(n), positives + float(s)
  return RecordCounts(rows, positives)


def collect(model: keras.Model, dataset: tf.data.Dataset, steps: int):
  """Logits (per task) and labels (per label) of up to ``steps`` batches, as NumPy."""
  logits: Dict[str, list] = {}
  labels: Dict[str, list] = {}
  for x, y in dataset.take(steps):
    out = model(x, training=False)
    for k, v in out.items():
      logits.setdefault(k, []).append(np.asarray(v, np.float64).ravel())
    for k, v in y.items():
      labels.setdefault(k, []).append(np.asarray(v, np.float64).ravel())
  cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # noqa: E731
  return cat(logits), cat(labels)


def fit_calibrators(tasks: List[Task], method: str, logits: Dict[str, np.ndarray],
                    labels: Dict[str, np.ndarray]):
  """A fitted calibrator per headed task, and a report of ECE and NLL before and after.

  The report's numbers come from calibrators fitted on the even rows and measured on the
  odd ones; the returned calibrators are then refitted on all rows.
  """
  calibrators, report = {}, {'method': method, 'tasks': {}}
  n = len(next(iter(labels.values())))
  fit_rows, test_rows = np.arange(n) % 2 == 0, np.arange(n) % 2 == 1
  probs_before, probs_after = {}, {}
  for t in tasks:
    if not t.head:
      continue
    rows = labels[t.given] > 0.5 if t.given else np.ones(n, bool)
    z, y = logits[t.key], labels[t.target]
    half = calibration.make_calibrator(method).fit(z[rows & fit_rows], y[rows & fit_rows])
    probs_before[t.key] = 1.0 / (1.0 + np.exp(-z))
    probs_after[t.key] = half.predict(z)
    calibrators[t.key] = calibration.make_calibrator(method).fit(z[rows], y[rows])
    entry = _calibration_entry(probs_before[t.key], probs_after[t.key], y, rows & test_rows)
    entry.update({k: float(v) for k, v in vars(calibrators[t.key]).items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)})
    report['tasks'][t.key] = entry
  for t in tasks:
    if not t.head:  # ESMM's ctcvr: the product of the calibrated heads
      before = probs_before['ctr'] * probs_before['cvr']
      after = probs_after['ctr'] * probs_after['cvr']
      report['tasks'][t.key] = _calibration_entry(before, after, labels[t.target], test_rows)
  return calibrators, report


def _calibration_entry(before, after, y, rows) -> Dict[str, float]:
  nll = lambda p: float(-np.mean(  # noqa: E731
      y[rows] * np.log(np.clip(p[rows], 1e-12, 1)) +
      (1 - y[rows]) * np.log(np.clip(1 - p[rows], 1e-12, 1))))
  return {'rows': int(rows.sum()), 'positives': int(y[rows].sum()),
          'ece_before': calibration.expected_calibration_error(before[rows], y[rows]),
          'ece_after': calibration.expected_calibration_error(after[rows], y[rows]),
          'nll_before': nll(before), 'nll_after': nll(after)}


class Throughput(keras.callbacks.Callback):
  """Training examples per second over the batches of every epoch but the first (whose
  first steps include tracing), or of the first if there is only one."""

  def __init__(self, batch_size: int):
    super().__init__()
    self.batch_size = batch_size
    self.seconds = []  # per epoch
    self.steps = []

  def on_epoch_begin(self, epoch, logs=None):
    self.seconds.append(0.0)
    self.steps.append(0)

  def on_train_batch_begin(self, batch, logs=None):
    self._t = time.perf_counter()

  def on_train_batch_end(self, batch, logs=None):
    self.seconds[-1] += time.perf_counter() - self._t
    self.steps[-1] += 1

  @property
  def examples_per_second(self) -> float:
    seconds, steps = (self.seconds[1:], self.steps[1:]) if len(self.seconds) > 1 else (
        self.seconds, self.steps)
    return self.batch_size * sum(steps) / max(sum(seconds), 1e-9)


def _class_weights(tasks: List[Task], dataset, beta: float, steps: int = 200):
  counts = {t.key: np.zeros(2) for t in tasks if t.label}
  for _, y in dataset.take(steps):
    for t in tasks:
      if t.label:
        pos = float(np.sum(y[t.label]))
        counts[t.key] += [np.size(y[t.label]) - pos, pos]
  return {k: losses_lib.class_balanced_weights(int(c[0]), int(c[1]), beta)
          for k, c in counts.items()}


def _check_esmm_labels(tasks: List[Task], dataset, steps: int = 20) -> None:
  """ESMM assumes a conversion implies a click: refuse labels that say otherwise."""
  if [t.key for t in tasks] != ['ctr', 'cvr', 'ctcvr']:
    return
  click, conversion = tasks[0].label, tasks[2].label
  for _, y in dataset.take(steps):
    if np.any(np.asarray(y[conversion]) > np.asarray(y[click])):
      raise ValueError(f'the esmm task layout needs every {conversion} row to be a '
                       f'{click} row, but the data has conversions without clicks; set '
                       'heads.tasks to "all" (independent tasks) or "primary"')


WIDE_FITS = ('backfit', 'first', 'joint')
# backfit: a primary head that scales the wide part by less than this has no use for it.
MIN_WIDE_SCALE = 0.05
# backfit: rows per forward pass when computing the offsets (a batch size of inference,
# not of training; it changes no row or result).
OFFSET_BATCH = 8192


def _wide_layer(model, config):
  """The model's wide part where ``config`` has one (None otherwise); checks
  ``config.wide_fit``."""
  mode = getattr(config, 'wide_fit', 'joint')
  if mode not in WIDE_FITS:
    raise ValueError(f'wide_fit must be one of {WIDE_FITS}, got {mode!r}')
  return wide_fit.find(model.core) if getattr(config, 'wide', False) else None


def _wide_rows(config, train_ds, train_rows: int):
  """The training batches the wide part is fitted on: every stride-th batch of
  ``train_ds``, a sample spread over the whole file order (not its head) of at most
  ``config.wide_fit_rows`` rows; and that bound."""
  max_rows = int(config.wide_fit_rows)
  if max_rows < 1:
    raise ValueError(f'wide_fit_rows must be positive, got {max_rows}')
  stride = max(1, -(-train_rows // max_rows))
  return (train_ds.shard(stride, 0) if stride > 1 else train_ds), max_rows


def backfit_wide(model, config, tasks: List[Task], train_ds, eval_ds,
                 eval_steps: int, train_rows: int, batch_size: int) -> Optional[Dict]:
  """With ``config.wide_fit == 'backfit'``, after the joint training: re-solves
  ``model``'s wide part on the rows of ``train_ds`` (unshuffled, one pass) against the
  primary task's label, with the rest of the trained model's primary logit as a fixed
  offset per row, one prior variance per table (empirical Bayes) and the trained wide
  part as the start (:func:`trainer.wide_fit.fit_wide`): one backfitting sweep (Hastie &
  Tibshirani) for the wide part. Trained jointly, the deep part learns its
  representation beside the wide part, but the wide part's crossed columns get only
  the few passes that the deep part's early stopping allows; solved with the deep part
  as an offset, they reach the optimum that the deep part leaves them. (Solved *before*
  the deep part, as ``first`` does, the regression's residuals are orthogonal to every
  first-order effect, and the deep part's embeddings, which learn from those, never
  form: on MovieLens it then learnt nothing.)

  The new wide part is kept only where it lowers the primary task's eval logloss and,
  with several trained tasks, their summed eval logloss (the wide part feeds every
  head). Returns the report, or None where there is nothing to fit."""
  layer = _wide_layer(model, config)
  if layer is None or config.wide_fit != 'backfit':
    return None
  key = tasks[0].key
  names = {l.name for l in model.core.layers}
  scale = 1.0
  if f'{key}_body_scale' in names:
    scale = float(np.ravel(model.core.get_layer(f'{key}_body_scale').get_weights()[0])[0])
  if abs(scale) < MIN_WIDE_SCALE:
    return {'mode': 'backfit', 'kept': False, 'scale': scale,
            'skipped': f'the primary head scales the wide part by {scale:.3g}'}

  # The offsets: one traced graph over batches of OFFSET_BATCH rows (the same rows, in the
  # same order). Called eagerly on the training batches, the model ran layer by layer
  # from Python, batch after batch.
  forward = tf.function(lambda x: (model.core(x, training=False)[key], layer(x)),
                        reduce_retracing=True)

  def offset(x):
    logit, wide = forward(x)
    return (np.asarray(logit, np.float64).reshape(-1)
            - scale * np.asarray(wide, np.float64).reshape(-1))

  batches, max_rows = _wide_rows(config, train_ds, train_rows)
  label = tasks[0].label
  train = wide_fit.gather(batches.rebatch(OFFSET_BATCH), layer, label, max_rows, offset)
  evaluation = wide_fit.gather(eval_ds.take(eval_steps).rebatch(OFFSET_BATCH), layer, label,
                               eval_steps * batch_size, offset)
  trained = [t for t in tasks if t.label]
  keys = ['logloss'] + [f'{t.key}_logloss' for t in trained[1:]]
  before = model.evaluate(eval_ds, verbose=0, return_dict=True) if len(keys) > 1 else None
  saved = layer.get_weights()
  report = wide_fit.fit_wide(layer, train, evaluation, warm_start=True, scale=scale,
                             min_gain=wide_fit.BACKFIT_MIN_GAIN)
  report.update(mode='backfit', scale=scale)
  if report['kept'] and before is not None:
    after = model.evaluate(eval_ds, verbose=0, return_dict=True)
    total = {k: float(sum(d[n] for n in keys)) for k, d in (('before', before),
                                                            ('after', after))}
    report['eval_task_logloss'] = total
    if total['after'] >= total['before']:
      layer.set_weights(saved)
      report['kept'] = False
  logging.info('wide part backfitted: %s', json.dumps(report))
  return report


def fit_wide_first(model, config, tasks: List[Task], train_ds, eval_ds,
                   eval_steps: int, train_rows: int, batch_size: int,
                   opt: Optional[optimization.OptimizerConfig] = None) -> Optional[Dict]:
  """With ``config.wide_fit == 'first'``: solves ``model``'s wide part on the rows of
  ``train_ds`` (unshuffled, one pass) against the primary task's label, with one prior
  variance per table (empirical Bayes; ``eval_ds`` decides when its updates stop), and
  freezes it (:mod:`trainer.wide_fit`). Returns the fit's report, or
  None where there is nothing to fit. With several heads (ESMM, MMoE, PLE) each head adds
  the body's logit, wide part included, through its own trainable scale
  (:func:`trainer.models.heads.build_core`): the primary head gets the fitted logistic
  regression as its offset, the others learn how much of it to use."""
  layer = _wide_layer(model, config)
  if layer is None or config.wide_fit != 'first':
    return None
  batches, max_rows = _wide_rows(config, train_ds, train_rows)
  label = tasks[0].label
  train = wide_fit.gather(batches, layer, label, max_rows)
  evaluation = wide_fit.gather(eval_ds.take(eval_steps), layer, label,
                               eval_steps * batch_size)
  report = wide_fit.fit_wide(layer, train, evaluation)
  layer.trainable = False
  # Keras' fit restores the trainable flags recorded by compile: compile again (a fresh
  # optimiser, whose variable lists now leave the wide part out).
  model.compile(optimizer=optimization.make_optimizer(
      opt or optimization.OptimizerConfig(), model))
  logging.info('wide part fitted first: %s', json.dumps(report))
  return report


def zero_heads(model, tasks: List[Task]) -> None:
  """Sets each task's output layer on the deep part's representation (``<task>_logit``)
  to zero, so that the model's logits start as its body logit (the wide part's)."""
  for t in tasks:
    try:
      head = model.core.get_layer(f'{t.key}_logit')
    except ValueError:
      continue
    if isinstance(head, keras.layers.Dense):
      for w in head.weights:
        w.assign(tf.zeros_like(w))


def restore_primary_start(model, tasks: List[Task], weights, primary_layers) -> None:
  """Puts the primary task's output back to where training started (the fitted wide
  part). With several heads and a body whose logit is the wide part alone, only the
  primary head's own layers (``primary_layers``: name -> weights) are reset, so that
  the other heads keep what they learnt; otherwise every weight (``weights``)."""
  headed = [t for t in tasks if t.head]
  names = {l.name for l in model.core.layers}
  if len(headed) > 1 and 'deep_wide_logit' not in names and primary_layers:
    for name, w in primary_layers.items():
      model.core.get_layer(name).set_weights(w)
  else:
    model.set_weights(weights)


def apply_hyperparameters(config: Dict[str, Any], values: Dict[str, Any]) -> Dict[str, Any]:
  """``config`` with a search's values laid over it (:mod:`trainer.tuning`): flat
  ``section.field`` names (``optimizer.learning_rate``, ``model_config.dropout``) or
  top-level ones (``batch_size``); a comma-separated ``hidden_units`` becomes a list."""
  out = dict(config)
  for path, value in values.items():
    if path.endswith('hidden_units') and isinstance(value, str):
      value = [int(u) for u in value.split(',')]
    if '.' in path:
      section, field = path.split('.', 1)
      if section not in ('model_config', 'optimizer', 'loss', 'heads'):
        raise ValueError(f'hyper-parameter {path!r}: unknown section {section!r}')
      out[section] = dict(out.get(section) or {}, **{field: value})
    else:
      out[path] = value
  return out


def with_hyperparameters(fn_args):
  """(``fn_args``, its ``custom_config``) with ``fn_args.hyperparameters`` (a
  keras-tuner ``HyperParameters`` config: the Tuner component's best trial, or a
  :mod:`trainer.tuning` trial's) laid over the config. Where they change the batch size,
  ``train_steps`` and ``eval_steps`` scale by old / new batch, so the rows seen (the
  passes) stay what the steps were set for."""
  config: Dict[str, Any] = dict(fn_args.custom_config or {})
  values = (getattr(fn_args, 'hyperparameters', None) or {}).get('values') or {}
  if not values:
    return fn_args, config
  before = int(config.get('batch_size', TrainerArgs.batch_size))
  config = apply_hyperparameters(config, values)
  after = int(config.get('batch_size', TrainerArgs.batch_size))
  return attr.evolve(fn_args, custom_config=config,
                     train_steps=max(1, round(fn_args.train_steps * before / after)),
                     eval_steps=max(1, -(-fn_args.eval_steps * before // after))), config


def run_fn(fn_args: tfx.components.FnArgs) -> None:
  """TFX Trainer entry point."""
  fn_args, config = with_hyperparameters(fn_args)
  args = TrainerArgs.from_custom_config(config)
  spec = fs.from_dict(args.feature_spec)
  batch_size, epochs, patience = args.batch_size, args.epochs, args.patience
  name = args.model
  model_config = models.model_config(name, args.model_config)
  heads = models.from_dict(HeadConfig, args.heads, 'heads')
  loss = models.from_dict(losses_lib.LossConfig, args.loss, 'loss')
  opt = optimization.with_training_steps(
      models.from_dict(optimization.OptimizerConfig, args.optimizer, 'optimizer'),
      fn_args.train_steps)
  _, tasks = task_layout(spec, heads.tasks)
  tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path
                                             or fn_args.transform_output)
  seed = args.seed
  seed_everything(seed)
  primary = transformed_name(spec.primary_label.name)
  counts = count_records(fn_args.train_files,
                         (primary, tf_transform_output.transformed_feature_spec()[primary]))
  train_rows = counts.rows
  label_rate = counts.positives / max(train_rows, 1)
  model_config, l2_scale = scaled_to_rows(model_config, train_rows)
  model_config = with_wide_cells(model_config, train_rows, label_rate)

  train_ds = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                       spec, batch_size, seed=seed)
  # The same eval_steps batches every epoch, and for calibration.
  eval_ds = _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output,
                      spec, batch_size, shuffle=False).take(fn_args.eval_steps)
  # The label checks read their own, unshuffled copy of the training rows. Iterating
  # train_ds itself would advance its shuffle's seed generator by one draw per pass that
  # the iterator's prefetch thread ran ahead before it was dropped, a number that depends
  # on thread timing: seeded repeats then read other batches (measured under load).
  probe_ds = _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output,
                       spec, batch_size, shuffle=False)
  _check_esmm_labels(tasks, probe_ds)
  class_weights = (_class_weights(tasks, probe_ds, loss.class_balance_beta)
                   if loss.class_balance_beta else None)
  optimization.set_mixed_precision(opt.mixed_precision)
  try:
    strategy = distribution_strategy(args.distribution_strategy)
    with strategy.scope():
      model = models.build(name, spec, inputs_lib.cardinalities(spec, tf_transform_output),
                           model_config, heads, loss, opt, class_weights)
    model.core.summary(print_fn=logging.info)
    with strategy.scope():
      wide_report = fit_wide_first(model, model_config, tasks, probe_ds, eval_ds,
                                   fn_args.eval_steps, train_rows, batch_size, opt)
    steps_per_epoch = max(1, fn_args.train_steps // epochs)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor='val_auc', mode='max', patience=patience,
                                      restore_best_weights=True, verbose=1),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq='epoch'),
    ]
    throughput = Throughput(batch_size)
    callbacks.append(throughput)
    swa = None
    if opt.swa_start_epoch is not None:
      swa = optimization.StochasticWeightAveraging(opt.swa_start_epoch, eval_ds)
      callbacks.append(swa)
    start = None
    if wide_report:
      # The deep part starts as nothing, the fitted wide part as the primary task's whole
      # model, which the deep part must beat on the eval split to be kept.
      zero_heads(model, tasks)
      start = (model.get_weights(), float(model.evaluate(eval_ds, verbose=0,
                                                         return_dict=True)['auc']))
      primary_layers = {n: model.core.get_layer(n).get_weights()
                        for n in (f'{tasks[0].key}_logit', f'{tasks[0].key}_body_scale')
                        if n in {l.name for l in model.core.layers}}
    history = model.fit(train_ds, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        validation_data=eval_ds, callbacks=callbacks, verbose=2)
    if start is not None:
      trained = max(history.history.get('val_auc', [float('-inf')]))
      kept = bool(trained > start[1])
      wide_report.update(eval_auc=start[1], deep_eval_auc=trained, deep_part_kept=kept)
      if not kept:
        restore_primary_start(model, tasks, start[0], primary_layers)
    with strategy.scope():
      backfit = backfit_wide(model, model_config, tasks, probe_ds, eval_ds,
                             fn_args.eval_steps, train_rows, batch_size)
    wide_report = wide_report or backfit
    logits, labels = collect(model, eval_ds, fn_args.eval_steps)
    calibrators, calibration_report = fit_calibrators(tasks, heads.calibration, logits,
                                                      labels)
    report = dict(model=name, swa_used=bool(swa and swa.used), train_rows=train_rows,
                  label_rate=label_rate,
                  wide_max_cells=getattr(model_config, 'wide_max_cells', None),
                  wide_fit=wide_report,
                  l2_scale=l2_scale,
                  parameters=int(model.core.count_params()),
                  dense_parameters=dense_parameter_count(model.core),
                  epochs_run=len(history.history.get('loss', [])),
                  best_val_auc=float(max(history.history.get('val_auc', [float('nan')]))),
                  train_examples_per_second=round(throughput.examples_per_second, 1),
                  calibration=calibration_report)
    logging.info('trainer report: %s', json.dumps(report))
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, 'history.json'), 'w') as f:
      json.dump({k: [float(x) for x in v] for k, v in history.history.items()}, f)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, REPORT_FILE), 'w') as f:
      json.dump(report, f, indent=2)
    serving = export.serving_model(model.core, tasks, calibrators)
    export.export_serving_model(serving, tf_transform_output, spec,
                                fn_args.serving_model_dir,
                                hidden=export.last_hidden_model(model.core, tasks))
  finally:
    optimization.set_mixed_precision(False)
