"""The Trainer's arguments: what a Trainer component's ``custom_config`` carries, defined once.

Whoever configures a Trainer (the pipeline, the reward model of off-policy evaluation,
the benchmarks, the serving tests) builds a :class:`TrainerArgs` and passes
:meth:`TrainerArgs.to_custom_config`; the deep model's ``run_fn`` (:mod:`trainer.task`)
and the GBDT baseline's (:mod:`trainer.gbdt`) read it back with
:meth:`TrainerArgs.from_custom_config`, which refuses what it does not know. A Tuner's
values are laid over the dict before it is read (:func:`trainer.task.apply_hyperparameters`).

The sections (:data:`SECTIONS`) stay mappings here: each is checked by its own config
class when a Trainer reads it (:func:`trainer.models.model_config`,
:class:`trainer.models.heads.HeadConfig`, :class:`trainer.losses.LossConfig`,
:class:`trainer.optimization.OptimizerConfig`, :func:`trainer.gbdt.config_from_dict`).
This module imports nothing heavy, so that configuring a run needs no TensorFlow. Its
first field is named :data:`transform.feature_spec.SPEC_KEY`, as every component's
configuration names the spec.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from transform.feature_spec import SPEC_KEY

# The sections of a trainer-config file (pipeline.configs.load_trainer_config), each a
# mapping: the model's settings, the task heads, the loss, the optimiser, and the GBDT
# baseline's search.
SECTIONS = ('model_config', 'heads', 'loss', 'optimizer', 'gbdt')

# What each Trainer's run_fn (the deep model's and the GBDT baseline's) writes to its
# model_run_dir: the run's report (parameters, epochs, throughput, calibration, search).
REPORT_FILE = 'trainer_report.json'


@dataclasses.dataclass
class TrainerArgs:
  """One Trainer's settings.

  Attributes:
    feature_spec: the feature spec as a dict (``FeatureSpec.to_dict()``); required.
    model: a name of :data:`trainer.models.MODELS`.
    batch_size: training and evaluation batch.
    epochs: early-stopping checkpoints over the Trainer's ``train_steps``.
    patience: checkpoints without a better validation AUC before training stops.
    seed: the weights' initialisation, dropout and the training rows' shuffle.
    distribution_strategy: one of :data:`trainer.task.STRATEGIES`.
    model_config, heads, loss, optimizer, gbdt: the sections (:data:`SECTIONS`).
  """
  feature_spec: Dict[str, Any]
  model: str = 'dnn'
  batch_size: int = 512
  epochs: int = 10
  patience: int = 2
  seed: int = 0
  distribution_strategy: str = 'default'
  model_config: Dict[str, Any] = dataclasses.field(default_factory=dict)
  heads: Dict[str, Any] = dataclasses.field(default_factory=dict)
  loss: Dict[str, Any] = dataclasses.field(default_factory=dict)
  optimizer: Dict[str, Any] = dataclasses.field(default_factory=dict)
  gbdt: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not isinstance(self.feature_spec, dict) or not self.feature_spec:
      raise ValueError(f'the Trainer needs custom_config["{SPEC_KEY}"], the feature spec '
                       f'as a dict; got {self.feature_spec!r:.80}')
    for name in ('batch_size', 'epochs', 'patience', 'seed'):
      value = getattr(self, name)
      if isinstance(value, bool) or not isinstance(value, int) or (
          value < (0 if name == 'seed' else 1)):
        raise ValueError(f'trainer argument {name}: expected a whole number '
                         f'{"of 0 or more" if name == "seed" else "of 1 or more"}, '
                         f'got {value!r}')
    for name in SECTIONS:
      if not isinstance(getattr(self, name), dict):
        raise ValueError(f'trainer argument {name}: expected a mapping, got '
                         f'{getattr(self, name)!r}')

  def to_custom_config(self) -> Dict[str, Any]:
    """The Trainer component's ``custom_config`` (JSON-ready)."""
    return dataclasses.asdict(self)

  @classmethod
  def from_custom_config(cls, config: Optional[Dict[str, Any]]) -> 'TrainerArgs':
    """The arguments a ``custom_config`` carries; an unknown key is an error (a typo
    would otherwise train with the default silently). Absent or None sections are
    empty; whole numbers given as strings or floats (a Tuner's values) are cast."""
    config = dict(config or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
      raise ValueError(f'unknown trainer argument(s) {unknown}; known: {sorted(known)}')
    if SPEC_KEY not in config:
      raise ValueError(f'the Trainer needs custom_config["{SPEC_KEY}"], the feature spec '
                       'as a dict')
    for name in SECTIONS:
      if config.get(name) is None:
        config.pop(name, None)
    for name in ('batch_size', 'epochs', 'patience', 'seed'):
      if name in config and not isinstance(config[name], bool):
        try:
          as_int = int(config[name])
        except (TypeError, ValueError):
          continue                  # __post_init__ names the bad value
        if as_int == config[name] or isinstance(config[name], str):
          config[name] = as_int
    if config.get('model') is None:
      config.pop('model', None)
    return cls(**config)
