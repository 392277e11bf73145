"""Optimiser, learning-rate schedule, gradient clipping and stochastic weight averaging.

* ``adam`` or ``adamw`` (decoupled weight decay, Loshchilov & Hutter, 2019; embeddings
  and biases are left out of the decay);
* ``constant``, ``cosine`` (one cosine decay to ``alpha`` times the rate over
  ``decay_steps``, by default the Trainer's whole budget: :func:`with_training_steps`) or
  ``cosine_restarts`` learning rate (SGDR: cosine decay, restarted every
  ``first_decay_steps``, each period ``t_mul`` times longer) of the dense weights;
* global-norm gradient clipping;
* :class:`StochasticWeightAveraging`: the average of the weights at the end of each
  epoch from ``start_epoch`` on (Izmailov et al., 2018), swapped in when training ends
  if it scores better on validation.
* mixed precision: :func:`set_mixed_precision` sets Keras' ``mixed_float16`` policy
  (off by default; it pays on GPUs, not on CPUs).
"""

from __future__ import annotations

import dataclasses

from typing import List, Optional

import numpy as np
import tf_keras as keras

OPTIMIZERS = ('adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'cosine_restarts')
EMBEDDING_OPTIMIZERS = ('same', 'adagrad', 'sgd')
CROSS_OPTIMIZERS = ('same', 'ftrl')


@dataclasses.dataclass
class OptimizerConfig:
  optimizer: str = 'adam'
  learning_rate: float = 1e-3
  weight_decay: float = 1e-4               # adamw only
  schedule: str = 'constant'
  decay_steps: Optional[int] = None        # cosine: None = the Trainer's train_steps
  first_decay_steps: int = 1000            # cosine_restarts: first period
  t_mul: float = 2.0
  m_mul: float = 1.0
  alpha: float = 0.0
  clipnorm: Optional[float] = None         # global gradient-norm bound
  swa_start_epoch: Optional[int] = None    # null: no weight averaging
  mixed_precision: bool = False
  # The embedding tables' own optimiser: 'same' (the one above) or 'adagrad' / 'sgd' at
  # embedding_learning_rate (see make_optimizer).
  embedding_optimizer: str = 'adagrad'
  embedding_learning_rate: float = 0.05
  # The wide part's crossed columns (trainer.layers.wide): 'same' (the embedding
  # optimiser) or 'ftrl' (FTRL-Proximal at cross_learning_rate, with its L2 in closed
  # form, cross_ftrl_l2, in place of the layer's own penalty). See make_optimizer.
  cross_optimizer: str = 'same'
  cross_learning_rate: float = 0.1
  cross_ftrl_l2: float = 1e-3
  # Adagrad's accumulator starts here (Keras' default is 0.1: with a batch-mean loss a
  # table row's gradient is ~1/batch, so 0.1 froze the tables; see make_optimizer).
  embedding_initial_accumulator: float = 1e-6

  def __post_init__(self):
    if self.optimizer not in OPTIMIZERS:
      raise ValueError(f'unknown optimizer {self.optimizer!r}; choose from {OPTIMIZERS}')
    if self.schedule not in SCHEDULES:
      raise ValueError(f'unknown schedule {self.schedule!r}; choose from {SCHEDULES}')
    if self.learning_rate <= 0:
      raise ValueError(f'learning_rate must be positive, got {self.learning_rate}')
    if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
      raise ValueError(f'unknown embedding_optimizer {self.embedding_optimizer!r}; choose '
                       f'from {EMBEDDING_OPTIMIZERS}')
    if self.embedding_learning_rate <= 0:
      raise ValueError('embedding_learning_rate must be positive, got '
                       f'{self.embedding_learning_rate}')
    if self.cross_optimizer not in CROSS_OPTIMIZERS:
      raise ValueError(f'unknown cross_optimizer {self.cross_optimizer!r}; choose from '
                       f'{CROSS_OPTIMIZERS}')
    if self.cross_optimizer == 'ftrl' and self.embedding_optimizer == 'same':
      raise ValueError("cross_optimizer ftrl composes with the tables' own optimiser: set "
                       'embedding_optimizer to adagrad or sgd')
    if self.cross_learning_rate <= 0 or self.cross_ftrl_l2 < 0:
      raise ValueError('cross_learning_rate must be positive and cross_ftrl_l2 '
                       f'non-negative, got {self.cross_learning_rate}, {self.cross_ftrl_l2}')


def with_training_steps(config: OptimizerConfig, train_steps: int) -> OptimizerConfig:
  """``config`` with a ``cosine`` schedule's ``decay_steps`` set to ``train_steps``
  where it is None (the Trainer calls this with its budget)."""
  if config.schedule == 'cosine' and config.decay_steps is None:
    return dataclasses.replace(config, decay_steps=max(1, int(train_steps)))
  return config


def learning_rate(config: OptimizerConfig):
  if config.schedule == 'cosine':
    if not config.decay_steps:
      raise ValueError('the cosine schedule needs decay_steps (the Trainer sets it to its '
                       'train_steps: with_training_steps)')
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.decay_steps,
                                                  alpha=config.alpha)
  if config.schedule == 'cosine_restarts':
    return keras.optimizers.schedules.CosineDecayRestarts(
        config.learning_rate, config.first_decay_steps, t_mul=config.t_mul,
        m_mul=config.m_mul, alpha=config.alpha)
  return config.learning_rate


def is_embedding_table(variable) -> bool:
  return variable.name.split('/')[-1].startswith('embeddings')


def cross_tables(model: keras.Model) -> List:
  """The weight tables of the crossed columns of ``model``'s wide part(s)."""
  from trainer.layers.wide import wide_parts
  return [t for m in wide_parts(model) for t in m.cross_tables]


def make_optimizer(config: OptimizerConfig, model: Optional[keras.Model] = None
                   ) -> keras.optimizers.Optimizer:
  """The optimiser of ``config``. With ``adamw`` and a built ``model``, embedding tables and
  biases are excluded from weight decay.

  With ``embedding_optimizer`` other than ``same`` (and a ``model``) the embedding tables
  of ``model`` get their own optimiser, composed with Adam for every other weight by TFRS's
  ``CompositeOptimizer``. Adam moves a row that a batch rarely looks up by a full-sized,
  normalised step each time, and (its moments decay densely) keeps moving it on its
  momentum for steps after: the rows of rare ids memorise their few labels. Adagrad's
  step shrinks with the row's accumulated squared gradient and has no momentum, so a row
  moves only when it is looked up (the choice of sparse CTR models since Wide & Deep).
  With ``cross_optimizer: ftrl`` the wide part's crossed columns get a third one,
  FTRL-Proximal (McMahan et al., 2013; the wide part's optimiser in Wide & Deep), whose
  L2 acts in closed form on the summed gradients: a cell that few batches look up is
  held near zero from its first step, where Adagrad's first step on it is about the full
  learning rate. (Measured: docs/MODELS.md.)
  """
  lr = learning_rate(config)
  kwargs = {'global_clipnorm': config.clipnorm} if config.clipnorm else {}
  if config.embedding_optimizer != 'same' and model is not None:
    legacy = keras.optimizers.legacy
    clip = {'clipnorm': config.clipnorm} if config.clipnorm else {}

    def sparse(rate):
      if config.embedding_optimizer == 'adagrad':
        return legacy.Adagrad(rate, **clip,
                              initial_accumulator_value=config.embedding_initial_accumulator)
      return legacy.SGD(rate, **clip)

    if config.optimizer == 'adamw':
      dense = keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **kwargs)
      dense.exclude_from_weight_decay(var_names=['bias', 'numeric_'])
    else:
      dense = legacy.Adam(lr, **clip)
    crosses = ({id(t) for t in cross_tables(model)} if config.cross_optimizer == 'ftrl'
               else set())
    tables = [(sparse(config.embedding_learning_rate), lambda: [
        v for v in model.trainable_variables
        if is_embedding_table(v) and id(v) not in crosses])]
    if crosses:
      # Keras' default accumulator start (0.1) would freeze these tables, as Adagrad's.
      ftrl = legacy.Ftrl(config.cross_learning_rate,
                         initial_accumulator_value=config.embedding_initial_accumulator,
                         l2_regularization_strength=config.cross_ftrl_l2, **clip)
      tables.append((ftrl, lambda: [v for v in model.trainable_variables
                                    if id(v) in crosses]))
    return _Composite([
        (dense, lambda: [v for v in model.trainable_variables if not is_embedding_table(v)]),
        *tables])
  if config.optimizer == 'adamw':
    opt = keras.optimizers.AdamW(lr, weight_decay=config.weight_decay, **kwargs)
    if model is not None:
      opt.exclude_from_weight_decay(var_names=['embeddings', 'bias', 'numeric_'])
    return opt
  return keras.optimizers.Adam(lr, **kwargs)


def _composite_class():
  import tensorflow as tf
  import tensorflow_recommenders as tfrs

  class Composite(tfrs.experimental.optimizers.CompositeOptimizer):
    """TFRS's ``CompositeOptimizer``, whose ``apply_gradients`` also returns an op (Keras'
    loss-scale optimiser, under mixed precision, conditions on it)."""

    def apply_gradients(self, grads_and_vars, name=None,
                        experimental_aggregate_gradients=True):
      super().apply_gradients(grads_and_vars, name, experimental_aggregate_gradients)
      return tf.no_op()

  return Composite


def _Composite(optimizers_and_vars):  # a class, built on first use
  return _composite_class()(optimizers_and_vars)


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
