"""The task layout and the task heads every model shares.

An architecture (``trainer/models/<name>.py``) turns the transformed features into a
:class:`~trainer.models.blocks.Body`: a representation ``rep`` [batch, k] for the task
heads and, optionally, a ``logit`` [batch, 1] that it computes itself (the FM term of
DeepFM, RE-SORT's bilinear aggregation). :func:`build_core` adds the heads:

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

The core model outputs *uncalibrated logits*, a dict keyed by task; it is trained by
:class:`trainer.models.ctr_model.CTRModel`, and the calibrated heads are added after
training (:mod:`trainer.export`).
"""

from __future__ import annotations

import dataclasses

from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras as keras

from trainer.layers import multitask
from trainer.models.blocks import Body, mlp
from transform import feature_spec as fs
from transform.preprocessing import transformed_name

TASK_LAYOUTS = ('auto', 'primary', 'all', 'esmm')


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
      x = mlp(x, config.tower_units, config.dropout, f'{t.key}_tower')
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
