"""The GBDT baseline: LightGBM as a strong user sets it up, tuned, as a TFX Trainer.

Deep CTR models on tabular data often lose to gradient boosted trees. The pipeline
trains this baseline beside the deep model on the same rows, and the ``GbdtEvaluator``
(:mod:`components.gbdt_evaluator`) withholds the blessing unless the deep model beats it
on the same test rows. It is never pushed. A gate is only worth as much as its baseline,
so this is the reference of the benchmarks (:mod:`trainer.boosting`), not a weaker
stand-in: every categorical a native LightGBM categorical (ids included, or their
training-row counts), sequences as lengths, target matches and multi-hot counts, and a
seeded search of :attr:`GbdtConfig.trials` configurations chosen on the eval split.

``run_fn`` reads the ``GbdtTrainer``'s ``custom_config``, a
:class:`trainer.args.TrainerArgs` (its ``feature_spec``, ``heads.calibration``, and
``gbdt``: the fields of :class:`GbdtConfig`). Its
``examples`` are ExampleGen's *raw* splits, not Transform's output: LightGBM reads columns
as its users give them (z-scores, vocabulary indices and OOV folding would only take
information away from trees). It

* reads the raw train and eval splits into memory (:mod:`transform.examples`);
* fits the encoder on train, runs the search (on a seeded sample of at most
  ``tune_rows`` training rows, the rule of ``bench/quality``), each trial early-stopped
  on the eval split's logloss, and refits the chosen settings on every training row;
* fits the deep model's post-hoc calibrator (``heads.calibration``, Platt by default) to
  the booster's logits on the eval split;
* writes :class:`GbdtModel` (``booster.txt``, LightGBM's own model file; the encoder and
  the calibrator as JSON) to the serving model folder, and ``trainer_report.json`` (the
  search's trials, the chosen settings, validation AUC and logloss) to the run folder.

Nothing here reads the test split.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from trainer import boosting
from trainer.args import REPORT_FILE, TrainerArgs
from transform import feature_spec as fs

MODEL_FILE = 'booster.txt'
STATE_FILE = 'gbdt_model.json'


@dataclasses.dataclass
class GbdtConfig:
  """The GBDT baseline's search (``custom_config['gbdt']``).

  ``trials``: configurations tried (the first is LightGBM's defaults, so the baseline is
  never worse on eval than a default LightGBM); ``tune_rows``: the search trains on a
  seeded sample of at most this many training rows, the chosen settings are then refitted
  on all of them; ``threads``: 0 is every CPU.
  """
  trials: int = 30
  tune_rows: int = 200_000
  seed: int = 0
  threads: int = 0

  def __post_init__(self):
    checks = {'trials': self.trials >= 1, 'tune_rows': self.tune_rows >= 100,
              'seed': self.seed >= 0, 'threads': self.threads >= 0}
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
      raise ValueError(f'gbdt: invalid {", ".join(f"{k}={getattr(self, k)!r}" for k in bad)}')


def config_from_dict(values: Dict[str, Any] | None) -> GbdtConfig:
  from trainer.models import from_dict
  return from_dict(GbdtConfig, values, 'gbdt')


def feature_columns(spec: fs.FeatureSpec) -> List[str]:
  """The raw columns LightGBM reads: every categorical, numeric and sequence feature."""
  return [f.name for f in spec.categorical + spec.numeric + spec.sequence]


@dataclasses.dataclass
class GbdtModel:
  """A fitted baseline: raw columns -> calibrated click probability."""
  encoder: boosting.Encoder
  fitted: boosting.Fitted
  calibrator: Any     # trainer.layers.calibration.Calibrator

  def logits(self, columns) -> np.ndarray:
    """The booster's log-odds for raw ``columns`` (a frame or a name -> values map)."""
    x, _ = self.encoder.transform(columns, self.fitted.params['id_encoding'])
    return self.fitted.logits(x)

  def predict(self, columns) -> np.ndarray:
    return np.asarray(self.calibrator.predict(self.logits(columns)), np.float64)

  def save(self, folder: str) -> None:
    """LightGBM's model file and the rest as JSON, through ``tf.io.gfile`` (a local
    folder or a bucket)."""
    import tensorflow as tf
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(os.path.join(folder, MODEL_FILE), 'w') as f:
      f.write(self.fitted.booster.model_to_string(num_iteration=self.fitted.best_iteration))
    state = {'encoder': self.encoder.to_dict(), 'params': self.fitted.params,
             'best_iteration': self.fitted.best_iteration,
             'eval_auc': self.fitted.eval_auc, 'calibration': self.calibrator.to_dict()}
    with tf.io.gfile.GFile(os.path.join(folder, STATE_FILE), 'w') as f:
      json.dump(state, f)

  @classmethod
  def load(cls, folder: str) -> 'GbdtModel':
    import lightgbm as lgb
    import tensorflow as tf
    from trainer.layers import calibration
    path = os.path.join(folder, STATE_FILE)
    if not tf.io.gfile.exists(path):
      raise ValueError(f'{folder} holds no GBDT baseline ({STATE_FILE} is missing)')
    with tf.io.gfile.GFile(path) as f:
      state = json.load(f)
    with tf.io.gfile.GFile(os.path.join(folder, MODEL_FILE)) as f:
      booster = lgb.Booster(model_str=f.read())
    # The saved file holds the stopped model's trees only: predict with all of them.
    fitted = boosting.Fitted(booster, state['params'], booster.current_iteration(),
                             state['eval_auc'], 0.0)
    return cls(boosting.Encoder.from_dict(state['encoder']), fitted,
               calibration.calibrator_from_dict(state['calibration']))


def search(spec: fs.FeatureSpec, train: Tuple[Any, np.ndarray],
           valid: Tuple[Any, np.ndarray], config: GbdtConfig = GbdtConfig(),
           log: Optional[Callable[[str], None]] = None
           ) -> Tuple[List[boosting.Fitted], boosting.Encoder, int]:
  """The search (:func:`trainer.boosting.tune`, ``config.trials`` trials, best eval AUC
  first) on a seeded sample of at most ``config.tune_rows`` training rows, with an
  encoder fitted on that sample; that encoder, and the number of rows it trained on.
  ``bench/quality`` runs the same search for its ``lightgbm_tuned`` row."""
  (x_train, y_train), (x_eval, y_eval) = train, valid
  keep = sample_rows(len(y_train), config.tune_rows, config.seed)
  if keep is not None:
    x_train, y_train = _rows(x_train, keep), np.asarray(y_train)[keep]
  encoder = boosting.Encoder.fit(x_train, spec)
  trials = boosting.tune(encoder, x_train, y_train, x_eval, y_eval, config.trials,
                         config.seed, log=log)
  return trials, encoder, len(y_train)


def sample_rows(rows: int, limit: int, seed: int) -> Optional[np.ndarray]:
  """The searches' seeded sample of at most ``limit`` of ``rows`` rows (sorted indices),
  or None where all of them fit; ``bench/quality``'s deep search takes the same rows."""
  if rows <= limit:
    return None
  return np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))


def _rows(columns, keep):
  """Rows ``keep`` of a frame or of a name -> array map."""
  if hasattr(columns, 'iloc'):
    return columns.iloc[keep].reset_index(drop=True)
  return {k: np.asarray(v)[keep] for k, v in columns.items()}


def fit(spec: fs.FeatureSpec, train: Tuple[Any, np.ndarray], valid: Tuple[Any, np.ndarray],
        config: GbdtConfig = GbdtConfig(), calibration_method: str = 'platt',
        log: Optional[Callable[[str], None]] = None) -> Tuple[GbdtModel, Dict[str, Any]]:
  """The tuned, calibrated baseline from (raw columns, 0/1 labels) of the train and eval
  splits, and its report (the search's trials and the chosen settings)."""
  from sklearn.metrics import roc_auc_score
  from trainer import task
  from trainer.layers import calibration
  from trainer.models.heads import task_layout
  (x_train, y_train), (x_eval, y_eval) = train, valid
  if len(y_train) == 0 or len(y_eval) == 0:
    raise ValueError('gbdt: the train and eval splits must both have rows')
  if y_train.min() == y_train.max():
    raise ValueError('gbdt: the training rows hold one class only')
  start = time.perf_counter()
  trials, encoder, tune_rows = search(spec, train, valid, config, log)
  best = trials[0]
  if tune_rows < len(y_train):   # refit on every training row, with their encoder
    encoder = boosting.Encoder.fit(x_train, spec)
    best = boosting.train(encoder, x_train, y_train, x_eval, y_eval, best.params,
                          config.seed, config.threads)
  seconds = time.perf_counter() - start
  z_eval = best.logits(encoder.transform(x_eval, best.params['id_encoding'])[0])
  _, tasks = task_layout(spec, 'primary')
  calibrators, calibration_report = task.fit_calibrators(
      tasks, calibration_method, {tasks[0].key: z_eval},
      {tasks[0].target: np.asarray(y_eval, np.float64)})
  model = GbdtModel(encoder, best, calibrators[tasks[0].key])
  one_class = y_eval.min() == y_eval.max()
  report = dict(
      model='lightgbm', config=dataclasses.asdict(config), params=best.params,
      train_rows=int(len(y_train)), eval_rows=int(len(y_eval)),
      tune_rows=int(tune_rows), trees=int(best.best_iteration),
      train_seconds=round(seconds, 2),
      val_auc=float('nan') if one_class else float(roc_auc_score(y_eval, z_eval)),
      val_logloss=calibration.binary_nll(z_eval, y_eval),
      search=[{'params': t.params, 'eval_auc': t.eval_auc, 'rounds': t.best_iteration,
               'seconds': round(t.seconds, 2)} for t in trials],
      calibration=calibration_report)
  return model, report


def read_split(files, spec: fs.FeatureSpec):
  """(raw feature columns, primary label) of an ExampleGen split."""
  from transform import examples
  label = spec.primary_label
  frame = examples.read_split(files, feature_columns(spec) + [label.column])
  return frame.drop(columns=[label.column]), label.values(frame[label.column])


def run_fn(fn_args) -> None:
  """TFX Trainer entry point for the GBDT baseline (``examples``: ExampleGen's raw
  splits)."""
  from absl import logging
  from trainer.models.heads import HeadConfig
  args = TrainerArgs.from_custom_config(fn_args.custom_config)
  spec = fs.from_dict(args.feature_spec)
  settings = config_from_dict(args.gbdt)
  method = args.heads.get('calibration', HeadConfig.calibration)
  train = read_split(fn_args.train_files, spec)
  valid = read_split(fn_args.eval_files, spec)
  model, report = fit(spec, train, valid, settings, method, log=logging.info)
  logging.info('GBDT trainer report: %s',
               json.dumps({k: v for k, v in report.items() if k != 'search'}))
  import tensorflow as tf
  tf.io.gfile.makedirs(fn_args.model_run_dir)
  with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, REPORT_FILE), 'w') as f:
    json.dump(report, f, indent=2)
  model.save(fn_args.serving_model_dir)
