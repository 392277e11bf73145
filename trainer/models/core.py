"""What every model shares: the task layout, the task heads and the training step.

An architecture (``trainer/models/<name>.py``) turns the transformed features into a
:class:`Body`: a representation ``rep`` [batch, k] for the task heads and, optionally, a
``logit`` [batch, 1] that it computes itself (the FM term of DeepFM, RE-SORT's bilinear
aggregation). :func:`build_core` adds the heads:

* single task: ``logit = Dense(1)(rep) + body.logit`` (either part may be absent);
* several tasks: a backbone (shared-bottom, MMoE or PLE, :mod:`trainer.layers.multitask`)
  splits ``rep`` per task, a tower MLP and a ``Dense(1)`` per task follow, and the body's
  logit enters each task through a learned scale.

Task layouts (:func:`task_layout`, ``HeadConfig.tasks``):

* ``primary``: the spec's first label only; output key = its name.
* ``all``: one independent task per label; output keys = label names.
* ``esmm``: two labels, click then conversion (a conversion implies a click). Heads for
  ``ctr`` and ``cvr``; ``ctcvr`` = pCTR * pCVR (:func:`~trainer.layers.multitask.esmm_ctcvr_logit`).
  Losses: ``ctr`` on the click label, ``ctcvr`` on the conversion label, both over every
  impression.
* ``auto``: ``esmm`` when the spec has exactly two labels, else ``primary``.

The core model outputs *uncalibrated logits*, a dict keyed by task. :class:`CTRModel`
trains it: per-task losses (:mod:`trainer.losses`), optional uncertainty weighting
(Kendall et al., 2018: ``sum_t exp(-s_t) L_t + s_t`` with learned ``s_t``) and per-task AUC
and logloss metrics. The temperature-scaled head is added after training
(:mod:`trainer.export`).
"""

from __future__ import annotations

import dataclasses
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import Dict, List, Optional, Sequence, Tuple  # noqa: E402

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from trainer import losses as losses_lib  # noqa: E402
from trainer.layers import multitask  # noqa: E402
from trainer.layers.embedding import FieldEmbedding, field_names, table_sizes  # noqa: E402
from transform import feature_spec as fs  # noqa: E402
from transform.preprocessing import transformed_name  # noqa: E402

TASK_LAYOUTS = ('auto', 'primary', 'all', 'esmm')


@dataclasses.dataclass
class Body:
  rep: Optional[tf.Tensor]
  logit: Optional[tf.Tensor] = None


@dataclasses.dataclass
class HeadConfig:
  tasks: str = 'auto'
  backbone: str = 'shared_bottom'          # multi-task only: shared_bottom | mmoe | ple
  num_experts: int = 4
  expert_units: Sequence[int] = (64,)
  levels: int = 1                          # PLE extraction layers
  tower_units: Sequence[int] = (32,)       # multi-task only: per-task tower
  dropout: float = 0.0
  uncertainty_weighting: bool = False
  calibration: str = 'platt'               # temperature (+ bias: platt) | isotonic | none

  def __post_init__(self):
    if self.tasks not in TASK_LAYOUTS:
      raise ValueError(f'unknown task layout {self.tasks!r}; choose from {TASK_LAYOUTS}')
    if self.backbone not in multitask.BACKBONES:
      raise ValueError(f'unknown backbone {self.backbone!r}; choose from '
                       f'{multitask.BACKBONES}')


@dataclasses.dataclass(frozen=True)
class Task:
  """One output of the core model.

  ``label``: the transformed label it is trained on (None: not trained directly, like
  ESMM's ``cvr``); ``head``: it has its own head (and calibrator); ``calibration_label``
  and ``given``: its calibrator is fitted against ``calibration_label`` (default
  ``label``) on the rows where ``given`` is 1 (default: all rows).
  """
  key: str
  label: Optional[str]
  head: bool = True
  calibration_label: Optional[str] = None
  given: Optional[str] = None

  @property
  def target(self) -> Optional[str]:
    return self.calibration_label or self.label


def task_layout(spec: fs.FeatureSpec, tasks: str) -> Tuple[str, List[Task]]:
  """The resolved layout name and its tasks (the first is the primary one)."""
  if tasks == 'auto':
    tasks = 'esmm' if len(spec.labels) == 2 else 'primary'
  label = lambda i: transformed_name(spec.labels[i].name)  # noqa: E731
  if tasks == 'primary':
    return tasks, [Task(spec.labels[0].name, label(0))]
  if tasks == 'all':
    return tasks, [Task(l.name, transformed_name(l.name)) for l in spec.labels]
  if len(spec.labels) != 2:
    raise ValueError(f'the esmm layout needs exactly two labels (click, conversion); the '
                     f'spec has {[l.name for l in spec.labels]}')
  return tasks, [Task('ctr', label(0)),
                 Task('cvr', None, calibration_label=label(1), given=label(0)),
                 Task('ctcvr', label(1), head=False)]


def _tower(x, units: Sequence[int], dropout: float, name: str):
  for i, u in enumerate(units):
    x = keras.layers.Dense(u, activation='relu', name=f'{name}_{i}')(x)
    if dropout:
      x = keras.layers.Dropout(dropout, name=f'{name}_drop_{i}')(x)
  return x


def build_core(inputs: Dict[str, tf.Tensor], body: Body, spec: fs.FeatureSpec,
               config: HeadConfig, name: str) -> keras.Model:
  """The functional model from ``inputs`` to ``{task key: logit [batch, 1]}``."""
  layout, tasks = task_layout(spec, config.tasks)
  headed = [t for t in tasks if t.head]
  f32 = lambda t: keras.layers.Activation('linear', dtype='float32')(t)  # noqa: E731
  logits = {}
  if len(headed) == 1:
    parts = []
    if body.rep is not None:
      parts.append(keras.layers.Dense(1, dtype='float32', name=f'{headed[0].key}_logit')(
          body.rep))
    if body.logit is not None:
      parts.append(f32(body.logit))
    logits[headed[0].key] = parts[0] if len(parts) == 1 else keras.layers.Add()(parts)
  else:
    if body.rep is None:
      raise ValueError(f'{name} has no representation for multi-task heads')
    per_task = multitask.make_backbone(config.backbone, len(headed), config.num_experts,
                                       config.expert_units, config.levels,
                                       config.dropout)(body.rep)
    for t, x in zip(headed, per_task):
      x = _tower(x, config.tower_units, config.dropout, f'{t.key}_tower')
      z = keras.layers.Dense(1, dtype='float32', name=f'{t.key}_logit')(x)
      if body.logit is not None:
        scaled = keras.layers.Dense(1, use_bias=False, kernel_initializer='ones',
                                    dtype='float32', name=f'{t.key}_body_scale')(
                                        f32(body.logit))
        z = keras.layers.Add(name=f'{t.key}_sum')([z, scaled])
      logits[t.key] = z
  if layout == 'esmm':
    logits['ctcvr'] = keras.layers.Lambda(
        lambda ab: multitask.esmm_ctcvr_logit(ab[0], ab[1]), name='ctcvr_logit')(
            [logits['ctr'], logits['cvr']])
  outputs = {t.key: keras.layers.Activation('linear', dtype='float32', name=t.key)(
      logits[t.key]) for t in tasks}
  return keras.Model(inputs, outputs, name=name)


class ScoreAUC(keras.metrics.AUC):
  """AUC of logits. AUC only depends on ranks, so it is taken of ``sigmoid(z / 4)``,
  which spreads CTR-scale scores (p ~ 0.02) over Keras' linear thresholds instead of
  crowding them into the first few."""

  def update_state(self, y_true, y_pred, sample_weight=None):
    return super().update_state(y_true, tf.sigmoid(tf.cast(y_pred, tf.float32) / 4.0),
                                sample_weight)


class CTRModel(keras.Model):
  """Trains a core model on its tasks' labels.

  ``fit`` takes ``(features, {transformed label name: [batch] 0/1})``. Metrics: ``loss``,
  and per trained task ``auc`` and ``logloss`` (prefixed ``<task>_`` except for the
  primary task), so early stopping can watch ``val_auc``.
  """

  def __init__(self, core: keras.Model, tasks: List[Task], loss: losses_lib.LossConfig,
               uncertainty_weighting: bool = False,
               class_weights: Optional[Dict[str, Tuple[float, float]]] = None, **kwargs):
    super().__init__(name=kwargs.pop('name', core.name + '_trainer'), **kwargs)
    self.core = core
    self.tasks = tasks
    self.trained = [t for t in tasks if t.label]
    self.loss_config = loss
    self.class_weights = class_weights or {}
    self.log_vars = None
    if uncertainty_weighting:
      self.log_vars = self.add_weight('task_log_variance', shape=(len(self.trained),),
                                      initializer='zeros')
    self.loss_tracker = keras.metrics.Mean(name='loss')
    self.task_metrics = {}
    for i, t in enumerate(self.trained):
      prefix = '' if i == 0 else f'{t.key}_'
      self.task_metrics[t.key] = (
          ScoreAUC(num_thresholds=1000, name=f'{prefix}auc'),
          keras.metrics.BinaryCrossentropy(from_logits=True, name=f'{prefix}logloss'))

  def call(self, inputs, training=None):
    return self.core(inputs, training=training)

  @property
  def metrics(self):
    return [self.loss_tracker] + [m for pair in self.task_metrics.values() for m in pair]

  def _task_losses(self, labels, logits):
    out = []
    for t in self.trained:
      y = tf.reshape(tf.cast(labels[t.label], tf.float32), [-1, 1])
      per_example = losses_lib.per_example_loss(y, logits[t.key], self.loss_config,
                                                self.class_weights.get(t.key))
      out.append(tf.reduce_mean(per_example))
    return out

  def _total(self, task_losses):
    if self.log_vars is None:
      total = tf.add_n(task_losses)
    else:
      total = tf.add_n([tf.exp(-self.log_vars[i]) * l + self.log_vars[i]
                        for i, l in enumerate(task_losses)])
    if self.losses:
      total += tf.add_n(self.losses)
    return total

  def _update(self, labels, logits, total):
    self.loss_tracker.update_state(total)
    for t in self.trained:
      y = tf.reshape(tf.cast(labels[t.label], tf.float32), [-1, 1])
      z = tf.cast(logits[t.key], tf.float32)
      for m in self.task_metrics[t.key]:
        m.update_state(y, z)
    return {m.name: m.result() for m in self.metrics}

  def train_step(self, data):
    x, labels = data
    with tf.GradientTape() as tape:
      logits = self(x, training=True)
      total = self._total(self._task_losses(labels, logits))
    self.optimizer.minimize(total, self.trainable_variables, tape=tape)
    return self._update(labels, logits, total)

  def test_step(self, data):
    x, labels = data
    logits = self(x, training=False)
    return self._update(labels, logits, self._total(self._task_losses(labels, logits)))

  def predict_step(self, data):
    x = data[0] if isinstance(data, tuple) else data
    return self(x, training=False)


@dataclasses.dataclass
class EmbeddingConfig:
  """Embedding settings every architecture shares (fields of each model's config)."""
  embedding_dim: int = 16
  embedding_l2: float = 1e-4              # L2 on every table (MAP shrinkage of rare ids)
  embedding_dropout: float = 0.0          # drops whole fields while training
  adaptive_embeddings: bool = False       # per-field widths from vocabulary size
  sequence_encoder: str = 'attention'     # attention (where the spec names a target) | mean
  attention_heads: int = 2
  numeric_encoding: str = 'linear'        # linear | periodic (FieldEmbedding)
  numeric_frequencies: int = 16
  numeric_sigma: float = 0.5
  sequence_match: bool = True             # a match-count field per targeted sequence
  wide: bool = True                       # add trainer.layers.wide.WideCrossLogit
  wide_max_cells: int = 20_000            # largest crossed column of the wide part
  # With the training rows and label rate known (the Trainer), a crossed column is kept
  # only if its cells average this much Fisher information, rows * p * (1 - p) / cells
  # (about this many clicks per cell at a low CTR). None: wide_max_cells alone.
  wide_cell_information: Optional[float] = 2.0
  wide_l2: float = 1e-4
  wide_cross_l2: Optional[float] = None   # the crossed columns' L2 (None: wide_l2)
  # How the wide part is fitted (trainer.wide_fit; on at most wide_fit_rows training
  # rows, one prior variance per table by empirical Bayes): 'joint': it trains with the
  # deep part, by the same optimiser and budget, and that is all; 'backfit' (default):
  # after that, its logistic regression is solved again with the rest of the model's
  # logit as a fixed offset, kept where the eval logloss falls
  # (trainer.task.backfit_wide); 'first': solved before the deep part trains, then held
  # fixed (docs/MODELS.md).
  wide_fit: str = 'backfit'
  wide_fit_rows: int = 2_000_000
  # A number: embedding_l2 and wide_l2 are the penalties at this many training rows, and
  # the Trainer scales them by l2_reference_rows / rows (scaled_to_rows). None (default):
  # as given; measured neutral at 800k rows (docs/MODELS.md, "L2 on every table").
  l2_reference_rows: Optional[int] = None


def scaled_to_rows(config, rows: int):
  """``config`` with ``embedding_l2`` and ``wide_l2`` scaled by
  ``l2_reference_rows / rows``, and that scale (1.0 where the config has no reference).

  Why: the L2 penalties are added to the *mean* loss over a batch, so against the data
  their weight grows as the training rows grow, by rows / reference. A Gaussian prior of
  fixed width on every table row, whose MAP estimate is the penalised fit, needs the
  penalty on a mean loss to be 1 / (2 sigma^2 rows). Measured (docs/BENCHMARKS.md, "L2
  against the training rows"): at 80k rows (MovieLens) 1e-4 beats 1e-5 on every seed, by
  0.004-0.007 AUC; at 800k rows (the generated data, 3 seeds) scaling to 1.25e-5 changed
  AUC by -0.0007 (paired SE 0.0022). So it is off by default.
  """
  reference = getattr(config, 'l2_reference_rows', None)
  if not reference:
    return config, 1.0
  if rows < 1:
    raise ValueError(f'scaling the L2 penalties needs the training rows, got {rows}')
  scale = reference / rows
  cross = getattr(config, 'wide_cross_l2', None)
  return dataclasses.replace(config, embedding_l2=config.embedding_l2 * scale,
                             wide_l2=config.wide_l2 * scale,
                             wide_cross_l2=None if cross is None else cross * scale), scale


def with_wide_cells(config, rows: int, positive_rate: float):
  """``config`` with ``wide_max_cells`` lowered to the largest crossed column whose cells
  average ``wide_cell_information`` units of Fisher information on ``rows`` training
  rows of label rate ``positive_rate`` (as is where that field is None or absent).

  Why: a cell of a crossed column is one more id, learnt from the rows that fall in it. A
  column of many cells over few rows gives each cell a handful of clicks, which its
  weight fits as noise; how many cells the rows can support grows with the rows and with
  the label's variance p (1 - p). Measured on three datasets: docs/MODELS.md.
  """
  info = getattr(config, 'wide_cell_information', None)
  if not info:
    return config
  if info <= 0 or rows < 1 or not 0.0 <= positive_rate <= 1.0:
    raise ValueError(f'wide_cell_information {info}, rows {rows} and label rate '
                     f'{positive_rate}: need a positive information, rows >= 1, a rate in '
                     '[0, 1]')
  cells = int(rows * positive_rate * (1.0 - positive_rate) / info)
  return dataclasses.replace(config, wide_max_cells=min(config.wide_max_cells, cells))


def add_wide(inputs, body: Body, spec: fs.FeatureSpec, cards: Dict[str, int],
             config: EmbeddingConfig) -> Body:
  """``body`` with the wide logit (:class:`trainer.layers.wide.WideCrossLogit`) added to
  its own, when ``config.wide``."""
  if not config.wide:
    return body
  from trainer.layers.wide import WideCrossLogit
  wide = WideCrossLogit(spec.to_dict(), cards, config.wide_max_cells, config.wide_l2,
                        config.wide_cross_l2, name='wide')(inputs)
  logit = wide if body.logit is None else keras.layers.Add(name='deep_wide_logit')(
      [body.logit, wide])
  return Body(body.rep, logit)


def embed_fields(inputs, spec: fs.FeatureSpec, cards: Dict[str, int],
                 config: EmbeddingConfig, name: str = 'fields') -> tf.Tensor:
  """[batch, fields, embedding_dim] (:class:`trainer.layers.embedding.FieldEmbedding`)."""
  return FieldEmbedding(spec.to_dict(), cards, config.embedding_dim, config.embedding_l2,
                        adaptive=config.adaptive_embeddings,
                        sequence_encoder=config.sequence_encoder,
                        attention_heads=config.attention_heads,
                        dropout=config.embedding_dropout,
                        numeric_encoding=config.numeric_encoding,
                        numeric_frequencies=config.numeric_frequencies,
                        numeric_sigma=config.numeric_sigma,
                        sequence_match=config.sequence_match, name=name)(inputs)


def field_count(spec: fs.FeatureSpec, config: EmbeddingConfig) -> int:
  """Fields of :func:`embed_fields`'s output."""
  return len(field_names(spec, config.sequence_match))


def mlp(x, units: Sequence[int], dropout: float, name: str, l2: float = 0.0):
  """ReLU layers of widths ``units``, each followed by dropout."""
  reg = keras.regularizers.l2(l2) if l2 else None
  for i, u in enumerate(units):
    x = keras.layers.Dense(u, activation='relu', kernel_regularizer=reg,
                           name=f'{name}_{i}')(x)
    if dropout:
      x = keras.layers.Dropout(dropout, name=f'{name}_drop_{i}')(x)
  return x


def mlp_parameter_count(width: int, units: Sequence[int]) -> Tuple[int, int]:
  """(parameters, output width) of :func:`mlp` on an input of ``width``."""
  total = 0
  for u in units:
    total += width * u + u
    width = u
  return total, width


def attention_parameter_count(d_in: int, heads: int, key_dim: int, d_out: int) -> int:
  """Keras ``MultiHeadAttention`` with biases: query/key/value and output projections."""
  inner = heads * key_dim
  return 3 * (d_in * inner + inner) + inner * d_out + d_out


def embedding_parameter_count(spec: fs.FeatureSpec, cards: Dict[str, int],
                              config: EmbeddingConfig) -> int:
  """Parameters of :func:`embed_fields` (a test checks it against Keras)."""
  d = config.embedding_dim
  total = 2 * len(spec.numeric) * d
  if config.numeric_encoding == 'periodic':
    k = config.numeric_frequencies
    total += len(spec.numeric) * (k + 2 * k * d + d)
  for name, rows in table_sizes(spec, cards).items():
    f = spec.field(name)
    width = (f.embedding_dim or fs.default_embedding_dim(cards[name])
             if config.adaptive_embeddings else d)
    total += rows * width + (width * d if width != d else 0)
  if config.sequence_match:
    total += sum((q.max_len + 1) * d for q in spec.sequence if q.target)
  if config.wide:
    from trainer.layers import wide
    total += wide.parameter_count(spec, cards, config.wide_max_cells)
  for q in spec.sequence:
    if q.target and config.sequence_encoder == 'attention':   # TargetAttention, m = 2
      total += ((q.max_len + 1) * d + attention_parameter_count(d, config.attention_heads,
                                                                d // config.attention_heads, d)
                + 4 * d + (d * 2 * d + 2 * d) + (2 * d * d + d))
  return total
