"""The deep side's hyper-parameter search: trials of the Trainer's own settings, each
one a full :func:`trainer.task.run_fn`, chosen by validation AUC.

It is the deep counterpart of the GBDT baseline's search (:func:`trainer.boosting.tune`):
the same rule, so that a comparison of the two is fair. The first trial is the settings
as configured (the defaults, unless the config sets them), the others are drawn at
random from :data:`SPACE`, and the best validation AUC wins.

Built on keras-tuner (the library TFX's Tuner component runs): its ``RandomSearch``
oracle draws the trials and keeps their record, and :class:`TrainerTuner` overrides
``run_trial`` to train through ``run_fn``. So every trial trains, early-stops and
calibrates exactly as the Trainer will, and the search covers the settings ``run_fn``
reads (optimiser, embedding L2, batch size) as well as the architecture's.

* In a pipeline, :func:`tuner_fn` is the Tuner component's module function. The Tuner
  writes the best trial's values; the Trainer passes them to ``run_fn`` as
  ``fn_args.hyperparameters``, and :func:`trainer.task.apply_hyperparameters` lays them
  over its ``custom_config``.
* ``bench/quality`` calls :func:`search` for its ``<model>_tuned`` row.

The names in :data:`SPACE` are paths into ``custom_config``: ``batch_size``,
``optimizer.<OptimizerConfig field>``, ``model_config.<model config field>``. A setting
the model's config does not have (say ``dropout`` for a model without one) is left out
of its search.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Dict, List, Sequence, Tuple

import attr
import keras_tuner as kt

from trainer import models, optimization, task
from trainer.args import TrainerArgs

OBJECTIVE = 'val_auc'

# (path, kind, values): 'log' draws log-uniformly from (low, high); 'choice' from the
# values. Ranges a CTR practitioner would search for any dataset, centred on the
# defaults (run_fn still scales the L2 strengths where ``l2_reference_rows`` is set).
SPACE: Tuple[Tuple[str, str, Sequence[Any]], ...] = (
    ('optimizer.learning_rate', 'log', (3e-4, 3e-3)),
    ('optimizer.embedding_learning_rate', 'log', (0.01, 0.2)),
    ('model_config.embedding_dim', 'choice', (8, 16, 32)),
    ('model_config.embedding_l2', 'log', (1e-5, 1e-3)),
    ('model_config.wide_l2', 'log', (1e-5, 1e-3)),
    ('model_config.dropout', 'choice', (0.0, 0.1, 0.2, 0.3)),
    ('model_config.hidden_units', 'choice', ('128,64', '256,128,64', '512,256,128')),
    ('model_config.wide_cell_information', 'choice', (0.5, 1.0, 2.0, 4.0, 8.0)),
    ('batch_size', 'choice', (256, 512, 1024, 2048)),
)


def _configured(config: Dict[str, Any]) -> Dict[str, Any]:
  """Every :data:`SPACE` path's value as ``config`` sets it (its model's and the
  optimiser's defaults where it does not); paths the model does not have, or that the
  config leaves unset (None: that mechanism is off), are absent."""
  name = config.get('model') or TrainerArgs.model
  sections = {
      'model_config': dataclasses.asdict(models.model_config(name,
                                                             config.get('model_config'))),
      'optimizer': dataclasses.asdict(models.from_dict(
          optimization.OptimizerConfig, config.get('optimizer'), 'optimizer')),
  }
  out = {}
  for path, _, _ in SPACE:
    if '.' not in path:
      out[path] = config.get(path, TrainerArgs.batch_size if path == 'batch_size' else None)
      continue
    section, field = path.split('.', 1)
    if sections[section].get(field) is not None:
      value = sections[section][field]
      out[path] = ','.join(str(u) for u in value) if isinstance(value, (list, tuple)) \
          else value
  return out


def hyperparameters(config: Dict[str, Any]) -> kt.HyperParameters:
  """The search space for ``config``'s model, each default the configured value (added to
  a choice's values where it is not one of them, so the first trial is the config)."""
  hp = kt.HyperParameters()
  for path, value in _configured(config).items():
    _, kind, values = next(s for s in SPACE if s[0] == path)
    if kind == 'log':
      low, high = values
      hp.Float(path, min_value=min(low, value), max_value=max(high, value),
               sampling='log', default=value)
    else:
      choices = list(values) if value in values else sorted([*values, value])
      hp.Choice(path, choices, default=value)
  return hp


class _DefaultsFirstOracle(kt.oracles.RandomSearchOracle):
  """keras-tuner's random search, whose first trial is every setting's default (the
  configured one), like the GBDT search's first trial (LightGBM's defaults)."""

  def populate_space(self, trial_id):
    # The oracle adds the trial to self.trials after this, and records its values (so
    # the random draws never repeat them).
    if not self.trials:
      return {'status': kt.engine.trial.TrialStatus.RUNNING,
              'values': {p.name: p.default for p in self.hyperparameters.space}}
    return super().populate_space(trial_id)


class TrainerTuner(kt.Tuner):
  """Each trial: :func:`trainer.task.run_fn` with the trial's settings laid over the
  base ``custom_config``, in the trial's own folder; its score, the run's best
  validation AUC (``trainer_report.json``'s ``best_val_auc``).

  The trial's values go to ``run_fn`` as ``fn_args.hyperparameters``
  (:func:`trainer.task.with_hyperparameters`): a trial with another batch size keeps the
  base config's training passes.
  ``keep_models``: keep each trial's SavedModel (else only its report stays)."""

  def __init__(self, base_config: Dict[str, Any], trials: int, seed: int = 0,
               keep_models: bool = False, **kwargs):
    # keras-tuner reads a seed of 0 as none (``seed or random.randint(1, 10000)``), so the
    # draws of seed 0 differed from process to process: seeds are offset by one.
    oracle = _DefaultsFirstOracle(objective=kt.Objective(OBJECTIVE, 'max'),
                                  max_trials=trials, seed=seed + 1,
                                  hyperparameters=hyperparameters(base_config),
                                  allow_new_entries=False)
    super().__init__(oracle=oracle, **kwargs)
    self.base_config = base_config
    self.keep_models = keep_models
    self.reports: Dict[str, Dict[str, Any]] = {}

  def run_trial(self, trial, fn_args):
    folder = self.get_trial_dir(trial.trial_id)
    # The trial's values reach run_fn as the Tuner's reach the Trainer's.
    args = attr.evolve(
        fn_args, custom_config=self.base_config,
        hyperparameters={'values': dict(trial.hyperparameters.values)},
        model_run_dir=os.path.join(folder, 'model_run'),
        serving_model_dir=os.path.join(folder, 'serving_model'))
    start = time.perf_counter()
    task.run_fn(args)
    with open(os.path.join(args.model_run_dir, task.REPORT_FILE)) as f:
      report = json.load(f)
    report['seconds'] = round(time.perf_counter() - start, 1)
    self.reports[trial.trial_id] = report
    if not self.keep_models:
      shutil.rmtree(args.serving_model_dir, ignore_errors=True)
    return {OBJECTIVE: report['best_val_auc']}


@dataclasses.dataclass
class Trial:
  """One trial's record: its settings (flat :data:`SPACE` paths), validation AUC, and
  the Trainer's report (epochs, examples per second, ...) with the trial's wall time
  (``seconds``)."""
  values: Dict[str, Any]
  val_auc: float
  report: Dict[str, Any]


def search(fn_args, trials: int, directory: str, seed: int = 0,
           keep_models: bool = False) -> List[Trial]:
  """``trials`` trials of ``fn_args.custom_config`` (:class:`TrainerTuner`), best
  validation AUC first. ``fn_args``: the ``FnArgs`` of one run_fn training (the files,
  steps and base settings); ``directory``: keras-tuner's folder for the trials."""
  if trials < 1:
    raise ValueError(f'trials must be at least 1, got {trials}')
  tuner = TrainerTuner(dict(fn_args.custom_config), trials, seed, keep_models,
                       directory=directory, project_name='trainer_search', overwrite=True)
  tuner.search(fn_args)
  done = [t for t in tuner.oracle.trials.values()
          if t.status == kt.engine.trial.TrialStatus.COMPLETED]
  if not done:
    raise RuntimeError(f'no trial of the search completed; see {directory}')
  out = [Trial(dict(t.hyperparameters.values), float(t.score), tuner.reports[t.trial_id])
         for t in done]
  return sorted(out, key=lambda t: -t.val_auc)


def tuner_fn(fn_args):
  """TFX Tuner entry point: :class:`TrainerTuner` over ``fn_args.custom_config`` (the
  Trainer's config, plus ``tuner_trials``, default 30, and ``tuner_seed``)."""
  from tfx import v1 as tfx
  config = dict(fn_args.custom_config or {})
  trials = int(config.pop('tuner_trials', 30))
  seed = int(config.pop('tuner_seed', 0))
  tuner = TrainerTuner(config, trials, seed, directory=fn_args.working_dir,
                       project_name='trainer_search')
  return tfx.components.TunerFnResult(
      tuner=tuner, fit_kwargs={'fn_args': attr.evolve(fn_args, custom_config=config)})

