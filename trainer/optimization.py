"""Optimiser, learning-rate schedule, gradient clipping and stochastic weight averaging.

* ``adam`` or ``adamw`` (decoupled weight decay, Loshchilov & Hutter, 2019; embeddings
  and biases are left out of the decay);
* ``constant`` or ``cosine_restarts`` learning rate (SGDR: cosine decay, restarted every
  ``first_decay_steps``, each period ``t_mul`` times longer);
* global-norm gradient clipping;
* :class:`StochasticWeightAveraging`: the average of the weights at the end of each
  epoch from ``start_epoch`` on (Izmailov et al., 2018), swapped in when training ends
  if it scores better on validation.
* mixed precision: :func:`set_mixed_precision` sets Keras' ``mixed_float16`` policy
  (off by default; it pays on GPUs, not on CPUs).
"""

from __future__ import annotations

import dataclasses
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

from typing import List, Optional  # noqa: E402

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402

OPTIMIZERS = ('adam', 'adamw')
SCHEDULES = ('constant', 'cosine_restarts')


@dataclasses.dataclass
class OptimizerConfig:
  optimizer: str = 'adam'
  learning_rate: float = 1e-3
  weight_decay: float = 1e-4               # adamw only
  schedule: str = 'constant'
  first_decay_steps: int = 1000            # cosine_restarts: first period
  t_mul: float = 2.0
  m_mul: float = 1.0
  alpha: float = 0.0
  clipnorm: Optional[float] = None         # global gradient-norm bound
  swa_start_epoch: Optional[int] = None    # null: no weight averaging
  mixed_precision: bool = False

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}')
    if self.schedule not in SCHEDULES:
      raise ValueError(f'unknown schedule {self.schedule!r}; choose from {SCHEDULES}')
    if self.learning_rate <= 0:
      raise ValueError(f'learning_rate must be positive, got {self.learning_rate}')


def learning_rate(config: OptimizerConfig):
  if config.schedule == 'cosine_restarts':
    return keras.optimizers.schedules.CosineDecayRestarts(
        config.learning_rate, config.first_decay_steps, t_mul=config.t_mul,
        m_mul=config.m_mul, alpha=config.alpha)
  return config.learning_rate


def make_optimizer(config: OptimizerConfig, model: Optional[keras.Model] = None
                   ) -> keras.optimizers.Optimizer:
  """The optimiser of ``config``. With ``adamw`` and a built ``model``, embedding tables and
  biases are excluded from weight decay."""
  lr = learning_rate(config)
  kwargs = {'global_clipnorm': config.clipnorm} if config.clipnorm else {}
  if config.optimizer == 'adamw':
    opt = keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **kwargs)
    if model is not None:
      opt.exclude_from_weight_decay(var_names=['embeddings', 'bias', 'numeric_'])
    return opt
  return keras.optimizers.Adam(lr, **kwargs)


def set_mixed_precision(enabled: bool) -> None:
  keras.mixed_precision.set_global_policy('mixed_float16' if enabled else 'float32')


class StochasticWeightAveraging(keras.callbacks.Callback):
  """Averages the weights at each epoch end from ``start_epoch`` (0-based) on.

  At the end of training the average replaces the current weights when its value of
  ``monitor`` on ``validation_data`` is at least as good (``mode``: max or min); the
  choice is logged in ``self.used``.
  """

  def __init__(self, start_epoch: int, validation_data=None, validation_steps=None,
               monitor: str = 'auc', mode: str = 'max'):
    super().__init__()
    self.start_epoch = start_epoch
    self.validation_data = validation_data
    self.validation_steps = validation_steps
    self.monitor = monitor
    self.mode = mode
    self.average: Optional[List[np.ndarray]] = None
    self.count = 0
    self.used = False

  def on_epoch_end(self, epoch, logs=None):
    if epoch < self.start_epoch:
      return
    weights = self.model.get_weights()
    if self.average is None:
      self.average = [w.astype(np.float64) for w in weights]
    else:
      self.average = [a + (w - a) / (self.count + 1) for a, w in zip(self.average, weights)]
    self.count += 1

  def on_train_end(self, logs=None):
    if self.average is None or self.count < 2:
      return
    current = self.model.get_weights()
    if self.validation_data is None:
      self.model.set_weights([a.astype(w.dtype) for a, w in zip(self.average, current)])
      self.used = True
      return
    data = (self.validation_data if isinstance(self.validation_data, tuple)
            else (self.validation_data,))
    score = lambda: self.model.evaluate(  # noqa: E731
        *data, steps=self.validation_steps, verbose=0, return_dict=True)[self.monitor]
    history = self.model.history  # evaluate() replaces it; fit() must still return it
    before = score()
    self.model.set_weights([a.astype(w.dtype) for a, w in zip(self.average, current)])
    after = score()
    self.model.history = history
    better = after >= before if self.mode == 'max' else after <= before
    if not better:
      self.model.set_weights(current)
    self.used = bool(better)
