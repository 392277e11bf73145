"""Pipeline configuration: paths, training settings, Beam and tf.distribute presets.

Everything a run can change without code lives here, as one :class:`PipelineConfig`
that the local and Kubeflow runners fill from their flags. Runs started by the TFX CLI
take no flags; these environment variables change their defaults: ``CTR_WORKDIR``
(where data, artifacts and pushed models go; default ``./workdir``), ``CTR_ROWS``,
``CTR_TRAIN_STEPS``, ``CTR_EVAL_STEPS``, ``CTR_MIN_AUC``, ``CTR_MAX_CALIBRATION_GAP``,
``CTR_MAX_ECE``, ``CTR_GBDT_BASELINE`` (``0`` turns the GBDT baseline off),
``CTR_GBDT_AUC_MARGIN``, ``CTR_GBDT_MAX_LOGLOSS_RISE``, ``CTR_TRAIN_SEED``, ``CTR_MODEL`` (one of
:data:`MODEL_NAMES`) and ``CTR_TRAINER_CONFIG`` (a trainer-config file, see
:func:`load_trainer_config`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

from trainer.args import SECTIONS, TrainerArgs


def _env(name: str, default, cast=str):
  """A default that the environment can override (how TFX-CLI runs are configured)."""
  value = os.environ.get(name)
  return cast(value) if value not in (None, '') else default


def _on(value: str) -> bool:
  """An environment switch: anything but 0, false, no or off (any case) turns it on."""
  return value.lower() not in ('0', 'false', 'no', 'off')


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKDIR = os.environ.get('CTR_WORKDIR', os.path.join(REPO_ROOT, 'workdir'))
DEFAULT_SPEC = os.path.join(REPO_ROOT, 'specs', 'default.yaml')
DEFAULT_DATA = os.path.join(WORKDIR, 'data', 'default', 'csv')
DEFAULT_ROWS = _env('CTR_ROWS', 200_000, int)
# The model zoo's names (trainer.models.MODELS; a test keeps the two equal). Kept here so
# that choosing a model needs no TensorFlow import.
MODEL_NAMES = ('dnn', 'dcn_v2', 'deepfm', 'autoint', 'resort', 'mtt')


def load_trainer_config(path: str) -> Dict[str, Dict]:
  """A YAML or JSON file of trainer settings: any of the sections ``model_config`` (the
  model's hyper-parameters), ``heads``, ``loss`` and ``optimizer``, each a mapping (see
  trainer/task.py), and ``gbdt`` (the GBDT baseline's, trainer/gbdt.py). Unknown sections
  are an error; the fields are checked by the trainer's config classes before the
  pipeline starts."""
  import yaml
  if not os.path.isfile(path):
    raise ValueError(f'trainer config {path}: no such file')
  with open(path, encoding='utf-8') as f:
    raw = yaml.safe_load(f) or {}
  if not isinstance(raw, dict) or set(raw) - set(SECTIONS):
    raise ValueError(f'trainer config {path}: expected a mapping with sections from '
                     f'{list(SECTIONS)}, got {raw if not isinstance(raw, dict) else sorted(raw)}')
  for k, v in raw.items():
    if not isinstance(v, dict):
      raise ValueError(f'trainer config {path}: section {k} must be a mapping, got {v!r}')
  return raw


def beam_presets(workers: int = 0) -> Dict[str, List[str]]:
  """Beam pipeline arguments by name. ``workers`` 0 means one per CPU.

  * ``in_memory``: the DirectRunner in one process (small data, tests).
  * ``multi_processing``: the DirectRunner with one worker process per CPU.
  * ``flink`` / ``spark``: a portable job server on localhost (start it first).
  * ``dataflow``: Google Cloud Dataflow; set project, region and temp_location via
    ``--beam-arg``.
  """
  return {
      'in_memory': ['--direct_running_mode=in_memory', '--direct_num_workers=1'],
      'multi_processing': ['--direct_running_mode=multi_processing',
                           f'--direct_num_workers={workers}'],
      'flink': ['--runner=FlinkRunner', '--flink_master=localhost:8081',
                '--environment_type=LOOPBACK', f'--parallelism={workers or 2}'],
      'spark': ['--runner=SparkRunner', '--spark_master_url=local[*]',
                '--environment_type=LOOPBACK'],
      'dataflow': ['--runner=DataflowRunner', '--experiments=use_runner_v2'],
  }


@dataclasses.dataclass
class PipelineConfig:
  """One pipeline run's settings."""
  pipeline_name: str = 'ctr-default'
  data_root: str = DEFAULT_DATA
  spec_path: str = DEFAULT_SPEC
  pipeline_root: str = os.path.join(WORKDIR, 'tfx')
  metadata_path: Optional[str] = None          # default: <pipeline_root>/<name>/metadata.db
  serving_model_dir: str = os.path.join(WORKDIR, 'serving')
  model_name: str = 'ctr'
  train_steps: int = _env('CTR_TRAIN_STEPS', 2000, int)
  eval_steps: int = _env('CTR_EVAL_STEPS', 200, int)
  batch_size: int = TrainerArgs.batch_size
  epochs: int = TrainerArgs.epochs              # early-stopping checkpoints over train_steps
  patience: int = TrainerArgs.patience
  model: str = _env('CTR_MODEL', TrainerArgs.model)  # one of MODEL_NAMES
  train_seed: int = _env('CTR_TRAIN_SEED', 0, int)  # the Trainer's weights and shuffle
  trainer_config: Dict = dataclasses.field(     # sections of load_trainer_config
      default_factory=lambda: load_trainer_config(os.environ['CTR_TRAINER_CONFIG'])
      if os.environ.get('CTR_TRAINER_CONFIG') else {})
  # Evaluator gates (pipeline.evaluation.Gates): AUC lower bound, |calibration - 1|, ECE
  # (10 equal-width bins), and the allowed AUC drop / logloss rise vs. the blessed model.
  min_auc: float = _env('CTR_MIN_AUC', 0.6, float)
  max_calibration_gap: float = _env('CTR_MAX_CALIBRATION_GAP', 0.05, float)
  max_ece: float = _env('CTR_MAX_ECE', 0.02, float)
  max_auc_drop: float = 0.01
  max_logloss_rise: float = 0.002
  # The GBDT baseline (trainer/gbdt.py): trained, evaluated and gated on unless off.
  gbdt_baseline: bool = _env('CTR_GBDT_BASELINE', True, _on)
  gbdt_auc_margin: float = _env('CTR_GBDT_AUC_MARGIN', 0.0, float)
  gbdt_max_logloss_rise: float = _env('CTR_GBDT_MAX_LOGLOSS_RISE', 0.0, float)
  # Off-policy evaluation of the candidate's policy on the test split, when the spec names
  # an action_key (components/off_policy_evaluator.py). ope_min_lift: hold back the Pusher
  # unless the lift's lower confidence bound is above it; None reports only.
  ope: bool = _env('CTR_OPE', True, _on)
  ope_min_lift: Optional[float] = _env('CTR_OPE_MIN_LIFT', None, float)
  beam_preset: str = 'in_memory'
  beam_args: List[str] = dataclasses.field(default_factory=list)
  distribution_strategy: str = TrainerArgs.distribution_strategy  # trainer.task.STRATEGIES
  enable_cache: bool = True

  def __post_init__(self):
    if self.model not in MODEL_NAMES:
      raise ValueError(f'unknown model {self.model!r}; choose from {list(MODEL_NAMES)}')

  def uses_ope(self, spec) -> bool:
    """Whether the pipeline has an OffPolicyEvaluator for this spec."""
    return self.ope and spec.action_key is not None

  def final_gate(self, spec) -> str:
    """The component whose blessing the Pusher and the resolver read."""
    return 'BlessingGate' if self.gbdt_baseline or self.uses_ope(spec) else 'Evaluator'

  @property
  def metadata(self) -> str:
    return self.metadata_path or os.path.join(self.pipeline_root, self.pipeline_name,
                                              'metadata.db')

  @property
  def gates(self):
    from pipeline.evaluation import Gates
    return Gates(min_auc=self.min_auc, max_calibration_gap=self.max_calibration_gap,
                 max_ece=self.max_ece, max_auc_drop=self.max_auc_drop,
                 max_logloss_rise=self.max_logloss_rise,
                 gbdt_auc_margin=self.gbdt_auc_margin,
                 gbdt_max_logloss_rise=self.gbdt_max_logloss_rise)

  @property
  def tasks(self) -> str:
    """The Trainer's task layout (``heads.tasks``), which the Evaluator measures."""
    return (self.trainer_config.get('heads') or {}).get('tasks', 'auto')

  @property
  def push_base(self) -> str:
    """The TF Serving model base path: versions land in numbered folders below it."""
    return os.path.join(self.serving_model_dir, self.model_name)

  def beam_pipeline_args(self) -> List[str]:
    presets = beam_presets()
    if self.beam_preset not in presets:
      raise ValueError(f'unknown beam preset {self.beam_preset!r}; choose from '
                       f'{sorted(presets)}')
    return presets[self.beam_preset] + list(self.beam_args)
