"""The Keras model that trains a core model on its tasks' labels (:class:`CTRModel`).

Per-task losses (:mod:`trainer.losses`), optional uncertainty weighting (Kendall et al.,
2018: ``sum_t exp(-s_t) L_t + s_t`` with learned ``s_t``), and per-task AUC and logloss
metrics, so that early stopping can watch ``val_auc``. The core model (logits per task)
comes from :func:`trainer.models.heads.build_core`.
"""

from __future__ import annotations



from typing import Dict, List, Optional, Tuple

import tensorflow as tf
import tf_keras as keras

from trainer import losses as losses_lib
from trainer.models.heads import Task


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
