"""Per-example classification losses on logits, and class-balanced weights.

* ``bce``: binary cross-entropy, ``softplus(z) - y z``.
* ``focal`` (Lin et al., 2017): ``(1 - p_t)^gamma * bce``, which down-weights easy
  examples; ``gamma`` comes from configuration (0 gives back BCE).
* label smoothing: ``y -> y (1 - eps) + eps / 2``.
* class-balanced weights (Cui et al., 2019): each class weighted by the inverse of its
  *effective number* ``(1 - beta^n) / (1 - beta)``, normalised so the weights average 1
  over the training examples.

Smoothing and class weights move the predicted probabilities away from the observed
rates; the temperature head (with its bias) fitted after training takes them back.
Written here because Keras' losses take probabilities or reduce over the batch, and the
multi-task trainer needs per-example values to mask and weight.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import tensorflow as tf

LOSSES = ('bce', 'focal')


@dataclasses.dataclass
class LossConfig:
  loss: str = 'bce'
  focal_gamma: float = 2.0
  label_smoothing: float = 0.0
  class_balance_beta: Optional[float] = None   # e.g. 0.9999; null: unweighted

  def __post_init__(self):
    if self.loss not in LOSSES:
      raise ValueError(f'unknown loss {self.loss!r}; choose from {LOSSES}')
    if not 0.0 <= self.label_smoothing < 1.0:
      raise ValueError(f'label_smoothing must be in [0, 1), got {self.label_smoothing}')
    if self.focal_gamma < 0:
      raise ValueError(f'focal_gamma must be >= 0, got {self.focal_gamma}')
    if self.class_balance_beta is not None and not 0.0 < self.class_balance_beta < 1.0:
      raise ValueError(f'class_balance_beta must be in (0, 1), got {self.class_balance_beta}')


def class_balanced_weights(n_negative: int, n_positive: int, beta: float) -> Tuple[float, float]:
  """(weight of a negative, weight of a positive), averaging 1 over the examples."""
  if n_negative <= 0 or n_positive <= 0:
    raise ValueError(f'need both classes, got {n_negative} negatives, {n_positive} positives')
  inv = [(1.0 - beta) / (1.0 - beta ** n) for n in (n_negative, n_positive)]
  scale = (n_negative + n_positive) / (inv[0] * n_negative + inv[1] * n_positive)
  return inv[0] * scale, inv[1] * scale


def per_example_loss(labels: tf.Tensor, logits: tf.Tensor, config: LossConfig,
                     class_weights: Optional[Tuple[float, float]] = None) -> tf.Tensor:
  """The loss of each example; ``labels`` and ``logits`` of one shape, any dtype."""
  logits = tf.cast(logits, tf.float32)
  y = tf.cast(labels, tf.float32)
  target = y * (1.0 - config.label_smoothing) + 0.5 * config.label_smoothing
  loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
  if config.loss == 'focal' and config.focal_gamma:
    p = tf.sigmoid(logits)
    p_true = y * p + (1.0 - y) * (1.0 - p)
    loss = tf.pow(1.0 - p_true, config.focal_gamma) * loss
  if class_weights is not None:
    loss = loss * (y * class_weights[1] + (1.0 - y) * class_weights[0])
  return loss
