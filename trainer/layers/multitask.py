"""Multi-task backbones and ESMM's entire-space probabilities.

A backbone maps one shared representation [batch, k] to one representation per task:

* :class:`SharedBottom`: every task reads the same representation (the towers differ).
* :class:`MixtureOfExperts` (MMoE, Ma et al., 2018): shared expert MLPs, mixed per task by
  a softmax gate over the input.
* :class:`ProgressiveLayeredExtraction` (PLE, Tang et al., 2020): shared experts plus
  experts owned by each task, over ``levels`` extraction layers; a task's gate mixes its
  own and the shared experts, and the shared gate (between levels) mixes all of them.

:func:`esmm_ctcvr_logit` is ESMM's pCTCVR = pCTR * pCVR (Ma et al., 2018) as a logit, in a
form that never loses precision: ``logit(sigma(a) sigma(b)) = -logsumexp(-a, -b, -a-b)``.
Losses are taken on pCTR (clicks) and pCTCVR (conversions) over every impression, so
pCVR is learned over the entire space and never on the clicked subset alone.

Written here because neither tf_keras nor TensorFlow Recommenders ships these layers.
"""

from __future__ import annotations



from typing import List, Sequence

import tensorflow as tf
import tf_keras as keras

from trainer.layers import SERIALIZABLE_PACKAGE


BACKBONES = ('shared_bottom', 'mmoe', 'ple')


def esmm_ctcvr_logit(ctr_logit: tf.Tensor, cvr_logit: tf.Tensor) -> tf.Tensor:
  """The logit of ``sigmoid(ctr_logit) * sigmoid(cvr_logit)``, stable for any inputs."""
  a, b = ctr_logit, cvr_logit
  return -tf.reduce_logsumexp(tf.stack([-a, -b, -a - b], axis=0), axis=0)


def _mlp(units: Sequence[int], dropout: float, name: str) -> keras.Sequential:
  layers = []
  for i, u in enumerate(units):
    layers.append(keras.layers.Dense(u, activation='relu', name=f'{name}_{i}'))
    if dropout:
      layers.append(keras.layers.Dropout(dropout))
  return keras.Sequential(layers, name=name)


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class SharedBottom(keras.layers.Layer):
  """Returns the input once per task."""

  def __init__(self, num_tasks: int, **kwargs):
    super().__init__(**kwargs)
    self.num_tasks = num_tasks

  def call(self, x):
    return [x] * self.num_tasks

  def get_config(self):
    return {**super().get_config(), 'num_tasks': self.num_tasks}


def _mix(gate: keras.layers.Layer, x, experts: List[tf.Tensor]) -> tf.Tensor:
  weights = gate(x)                                         # [b, E], softmax
  return tf.einsum('be,bek->bk', weights, tf.stack(experts, axis=1))


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class MixtureOfExperts(keras.layers.Layer):
  """MMoE: ``num_experts`` expert MLPs shared by ``num_tasks`` softmax gates.

  Args:
    num_tasks: outputs.
    num_experts: shared experts.
    expert_units: each expert's hidden widths; the output width is the last.
    dropout: inside the experts.
  """

  def __init__(self, num_tasks: int, num_experts: int = 4,
               expert_units: Sequence[int] = (64,), dropout: float = 0.0, **kwargs):
    super().__init__(**kwargs)
    self.num_tasks = num_tasks
    self.num_experts = num_experts
    self.expert_units = list(expert_units)
    self.dropout = dropout

  def build(self, input_shape):
    self.experts = [_mlp(self.expert_units, self.dropout, f'expert_{i}')
                    for i in range(self.num_experts)]
    self.gates = [keras.layers.Dense(self.num_experts, activation='softmax', name=f'gate_{t}')
                  for t in range(self.num_tasks)]
    super().build(input_shape)

  def gate_weights(self, x) -> List[tf.Tensor]:
    return [g(x) for g in self.gates]

  def call(self, x, training=None):
    experts = [e(x, training=training) for e in self.experts]
    return [_mix(g, x, experts) for g in self.gates]

  def get_config(self):
    return {**super().get_config(), 'num_tasks': self.num_tasks,
            'num_experts': self.num_experts, 'expert_units': self.expert_units,
            'dropout': self.dropout}


@keras.utils.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class ProgressiveLayeredExtraction(keras.layers.Layer):
  """PLE with ``levels`` extraction layers.

  Args:
    num_tasks: outputs.
    shared_experts: experts shared by all tasks, per level.
    task_experts: experts owned by each task, per level.
    expert_units: each expert's hidden widths; the output width is the last.
    levels: extraction layers.
    dropout: inside the experts.
  """

  def __init__(self, num_tasks: int, shared_experts: int = 2, task_experts: int = 1,
               expert_units: Sequence[int] = (64,), levels: int = 1, dropout: float = 0.0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_tasks = num_tasks
    self.shared_experts = shared_experts
    self.task_experts = task_experts
    self.expert_units = list(expert_units)
    self.levels = levels
    self.dropout = dropout

  def build(self, input_shape):
    # Flat lists, indexed by level (and task): Keras' Keras-format saving restores the
    # weights of layers held in flat lists, but not of layers in nested lists or in tuples
    # holding None (tests/trainer/layers/test_layers.py saves and loads this layer).
    ns, nt, ne = self.shared_experts, self.num_tasks, self.task_experts
    self.shared_expert_layers, self.task_expert_layers = [], []
    self.task_gates, self.shared_gates = [], []
    for lv in range(self.levels):
      self.shared_expert_layers += [_mlp(self.expert_units, self.dropout, f'l{lv}_shared_{i}')
                                    for i in range(ns)]
      self.task_expert_layers += [_mlp(self.expert_units, self.dropout,
                                       f'l{lv}_task{k}_{i}')
                                  for k in range(nt) for i in range(ne)]
      self.task_gates += [keras.layers.Dense(ns + ne, activation='softmax',
                                             name=f'l{lv}_gate_{k}') for k in range(nt)]
      if lv < self.levels - 1:  # the last level needs no shared output
        self.shared_gates.append(keras.layers.Dense(ns + nt * ne, activation='softmax',
                                                    name=f'l{lv}_gate_shared'))
    super().build(input_shape)

  def call(self, x, training=None):
    ns, nt, ne = self.shared_experts, self.num_tasks, self.task_experts
    task_inputs, shared_input = [x] * self.num_tasks, x
    for lv in range(self.levels):
      shared = self.shared_expert_layers[lv * ns:(lv + 1) * ns]
      level_own = self.task_expert_layers[lv * nt * ne:(lv + 1) * nt * ne]
      own = [level_own[k * ne:(k + 1) * ne] for k in range(nt)]
      gates = self.task_gates[lv * nt:(lv + 1) * nt]
      shared_gate = self.shared_gates[lv] if lv < self.levels - 1 else None
      shared_out = [e(shared_input, training=training) for e in shared]
      own_out = [[e(task_inputs[t], training=training) for e in own[t]]
                 for t in range(self.num_tasks)]
      next_tasks = [_mix(gates[t], task_inputs[t], own_out[t] + shared_out)
                    for t in range(self.num_tasks)]
      if shared_gate is not None:
        shared_input = _mix(shared_gate, shared_input,
                            shared_out + [o for outs in own_out for o in outs])
      task_inputs = next_tasks
    return task_inputs

  def get_config(self):
    return {**super().get_config(), 'num_tasks': self.num_tasks,
            'shared_experts': self.shared_experts, 'task_experts': self.task_experts,
            'expert_units': self.expert_units, 'levels': self.levels,
            'dropout': self.dropout}


def make_backbone(name: str, num_tasks: int, num_experts: int = 4,
                  expert_units: Sequence[int] = (64,), levels: int = 1,
                  dropout: float = 0.0) -> keras.layers.Layer:
  """The backbone named in configuration (one of :data:`BACKBONES`)."""
  if name == 'shared_bottom':
    return SharedBottom(num_tasks, name='backbone')
  if name == 'mmoe':
    return MixtureOfExperts(num_tasks, num_experts, expert_units, dropout, name='backbone')
  if name == 'ple':
    return ProgressiveLayeredExtraction(num_tasks, max(1, num_experts // 2),
                                        max(1, num_experts // 4), expert_units, levels,
                                        dropout, name='backbone')
  raise ValueError(f'unknown multi-task backbone {name!r}; choose from {BACKBONES}')
