"""The model zoo: ``--model`` names one of :data:`MODELS`.

Each architecture module has a config dataclass (its hyper-parameters, embedding settings
included) and a ``body`` function; :func:`build` adds the task heads
(:mod:`trainer.models.heads`) and the training wrapper (:mod:`trainer.models.ctr_model`),
so every model trains, calibrates and exports the same way, on any feature spec.

=========  ==============================================================
``dnn``     embeddings + MLP baseline (:mod:`trainer.models.dnn`)
``dcn_v2``  DCN-v2, TFRS low-rank cross layers (:mod:`trainer.models.dcn_v2`)
``deepfm``  DeepFM (:mod:`trainer.models.deepfm`)
``autoint`` AutoInt+ (:mod:`trainer.models.autoint`)
``resort``  RE-SORT, multi-scale retention (:mod:`trainer.models.resort`)
``mtt``     MultiTaskTransformer (:mod:`trainer.models.mtt`)
=========  ==============================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

from trainer import autograph
from trainer import losses as losses_lib
from trainer import optimization
from trainer.inputs import build_inputs
from trainer.models import autoint, dcn_v2, deepfm, dnn, mtt, resort
from trainer.models.blocks import add_wide
from trainer.models.ctr_model import CTRModel
from trainer.models.heads import HeadConfig, build_core, task_layout
from transform import feature_spec as fs

MODELS = {
    'dnn': (dnn.DnnConfig, dnn.body),
    'dcn_v2': (dcn_v2.DcnV2Config, dcn_v2.body),
    'deepfm': (deepfm.DeepFmConfig, deepfm.body),
    'autoint': (autoint.AutoIntConfig, autoint.body),
    'resort': (resort.ReSortConfig, resort.body),
    'mtt': (mtt.MttConfig, mtt.body),
}


def from_dict(cls, values: Optional[Dict[str, Any]], what: str):
  """``cls(**values)``, with an error naming unknown keys and the allowed ones."""
  values = dict(values or {})
  allowed = {f.name for f in dataclasses.fields(cls)}
  unknown = set(values) - allowed
  if unknown:
    raise ValueError(f'{what}: unknown setting(s) {sorted(unknown)}; allowed: '
                     f'{sorted(allowed)}')
  for k, v in values.items():
    if isinstance(v, list):
      values[k] = tuple(v)
  return cls(**values)


def model_config(name: str, values: Optional[Dict[str, Any]] = None):
  if name not in MODELS:
    raise ValueError(f'unknown model {name!r}; choose from {sorted(MODELS)}')
  return from_dict(MODELS[name][0], values, f'model {name}')


def build(name: str, spec: fs.FeatureSpec, cards: Dict[str, int], config=None,
          heads: Optional[HeadConfig] = None,
          loss: Optional[losses_lib.LossConfig] = None,
          optimizer: Optional[optimization.OptimizerConfig] = None,
          class_weights: Optional[Dict[str, Tuple[float, float]]] = None) -> CTRModel:
  """A compiled :class:`~trainer.models.ctr_model.CTRModel` for model ``name``.

  Args:
    name: a key of :data:`MODELS`.
    spec: the feature spec.
    cards: ids per categorical / sequence feature (:func:`trainer.inputs.cardinalities`).
    config: the model's config dataclass, or a dict of its fields (defaults if None).
    heads, loss, optimizer: task heads, loss and optimiser settings (defaults if None).
    class_weights: per trained task, (negative, positive) example weights.
  """
  if config is None or isinstance(config, dict):
    config = model_config(name, config)
  heads = heads or HeadConfig()
  loss = loss or losses_lib.LossConfig()
  optimizer = optimizer or optimization.OptimizerConfig()
  if optimizer.cross_optimizer == 'ftrl' and getattr(config, 'wide', False):
    # FTRL's own L2 (cross_ftrl_l2) is the crossed columns' penalty: none in the loss.
    if config.wide_cross_l2:
      raise ValueError('wide_cross_l2 and cross_optimizer ftrl both set the crossed '
                       "columns' L2: set cross_ftrl_l2 instead")
    config = dataclasses.replace(config, wide_cross_l2=0.0)
  _, tasks = task_layout(spec, heads.tasks)
  # Before the first trace: building, fitting and exporting the model trace it.
  autograph.leave_tf_keras_unconverted()
  inputs = build_inputs(spec)
  body = MODELS[name][1](inputs, spec, cards, config, sum(t.head for t in tasks))
  body = add_wide(inputs, body, spec, cards, config)
  core_model = build_core(inputs, body, spec, heads, name)
  model = CTRModel(core_model, tasks, loss, heads.uncertainty_weighting, class_weights)
  model.compile(optimizer=optimization.make_optimizer(optimizer, model))
  return model
