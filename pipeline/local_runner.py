"""Runs the pipeline locally with TFX's LocalDagRunner, then prints a short report.

Used three ways:

* the main job: ``python -m pipeline.local_runner`` (flags below; ``--help``);
* the TFX CLI: ``tfx pipeline create --engine local --pipeline_path pipeline/local_runner.py``
  then ``tfx run create --engine local --pipeline_name ctr_default``; the CLI runs this
  file with no flags, i.e. with the defaults of :class:`pipeline.configs.PipelineConfig`;
* tests, through :func:`run`.

When the data folder is the default one and does not exist yet, the default dataset is
generated first (``--rows`` rows, seed ``--seed``).
"""

from __future__ import annotations

import os
import sys

os.environ['TF_USE_LEGACY_KERAS'] = '1'
if __package__ in (None, ''):  # run as a file by the TFX CLI
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional  # noqa: E402

from pipeline import configs  # noqa: E402
from pipeline.input_check import InputError, check_data  # noqa: E402
from transform import feature_spec as fs  # noqa: E402


def ensure_default_data(config: configs.PipelineConfig, rows: int, seed: int) -> None:
  """Generates the default dataset into the default data folder if it is missing."""
  if os.path.abspath(config.data_root) != os.path.abspath(configs.DEFAULT_DATA):
    return
  if os.path.isdir(config.data_root) and os.listdir(config.data_root):
    return
  from datagen import synthetic
  t = time.time()
  table = synthetic.generate(rows, seed=seed)
  synthetic.write(table, os.path.dirname(config.data_root), ('csv',))
  print(f'generated {rows} rows of the default dataset (seed {seed}) into '
        f'{config.data_root} in {time.time() - t:.1f}s', flush=True)


def run(config: configs.PipelineConfig) -> Dict[str, object]:
  """Checks the input, runs the pipeline, and returns the run's report."""
  spec = fs.load(config.spec_path)
  summary = check_data(config.data_root, spec)
  try:
    check_trainer_config(config)
  except (TypeError, ValueError) as e:
    raise InputError(f'trainer settings: {e}') from e
  print(f'input: {summary["rows"]} rows in {summary["files"]} {summary["format"]} file(s) '
        f'of {config.data_root}', flush=True)
  from tfx import v1 as tfx  # slow to import: only once the input is known to be good
  from pipeline.pipeline import create_pipeline
  t = time.time()
  tfx.orchestration.LocalDagRunner().run(create_pipeline(config, spec, summary['format']))
  report = run_report(config)
  report['seconds'] = round(time.time() - t, 1)
  return report


def executions(metadata_path: str):
  """Every execution in the ML Metadata store: (id, component type, state, seconds)."""
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  c = metadata_store_pb2.ConnectionConfig()
  c.sqlite.filename_uri = metadata_path
  store = metadata_store.MetadataStore(c)
  types = {t.id: t.name.rsplit('.', 1)[-1] for t in store.get_execution_types()}
  return [(e.id, types[e.type_id], e.last_known_state,
           (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1e3)
          for e in store.get_executions()]


def run_report(config: configs.PipelineConfig) -> Dict[str, object]:
  """The latest run's evaluation metrics, blessing and pushed version, from MLMD."""
  from pipeline import evaluation
  from tfx.orchestration import metadata
  from tfx.types import standard_artifacts
  conn = metadata.sqlite_metadata_connection_config(config.metadata)
  with metadata.Metadata(conn) as m:
    def latest(type_name):
      arts = m.store.get_artifacts_by_type(type_name)
      return max(arts, key=lambda a: a.id) if arts else None
    evaluation_art = latest(standard_artifacts.ModelEvaluation.TYPE_NAME)
    blessing = latest(standard_artifacts.ModelBlessing.TYPE_NAME)
    pushed = latest(standard_artifacts.PushedModel.TYPE_NAME)
    model_run = latest(standard_artifacts.ModelRun.TYPE_NAME)
  report: Dict[str, object] = {'pipeline': config.pipeline_name}
  if model_run is not None:
    path = os.path.join(model_run.uri, 'trainer_report.json')  # trainer.task.REPORT_FILE
    if os.path.isfile(path):
      with open(path) as f:
        report['trainer'] = json.load(f)
  if evaluation_art is not None:
    report['metrics'] = evaluation.overall_metrics(evaluation_art.uri)
  if blessing is not None:
    report['blessed'] = evaluation.is_blessed(blessing.uri)
  if pushed is not None:
    props = pushed.custom_properties
    report['pushed'] = bool(props['pushed'].int_value) if 'pushed' in props else False
    if 'pushed_destination' in props:
      report['pushed_destination'] = props['pushed_destination'].string_value
    if 'pushed_version' in props:
      report['pushed_version'] = props['pushed_version'].string_value
  return report


def format_report(report: Dict[str, object]) -> str:
  m = report.get('metrics', {})
  lines = [f'== {report["pipeline"]}: test-split evaluation ==']
  t = report.get('trainer')
  if t:
    lines.append(f'{"model":>14}: {t["model"]} ({t["parameters"]:,} parameters, '
                 f'{t["epochs_run"]} epochs, {t["train_examples_per_second"]:,.0f} examples/s)')
    task, c = next(iter(t['calibration']['tasks'].items()))
    lines.append(f'{"val. ECE":>14}: {c["ece_before"]:.4f} -> {c["ece_after"]:.4f} after '
                 f'{t["calibration"]["method"]} calibration ({task})')
  for key, label in (('auc', 'AUC'), ('logloss', 'logloss'), ('ece', 'ECE (10 bins)'),
                     ('calibration', 'calibration'), ('example_count', 'examples')):
    if key in m:
      lines.append(f'{label:>14}: {m[key]:.4f}' if key != 'example_count'
                   else f'{label:>14}: {int(m[key])}')
  lines.append(f'{"blessed":>14}: {report.get("blessed")}')
  if report.get('pushed'):
    lines.append(f'{"pushed":>14}: {report.get("pushed_destination")}')
  else:
    lines.append(f'{"pushed":>14}: no (the Evaluator did not bless this model)')
  return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
  d = configs.PipelineConfig()
  p = argparse.ArgumentParser(
      prog='python -m pipeline.local_runner',
      description='Run the CTR pipeline locally (LocalDagRunner) and print a report.')
  p.add_argument('--data', default=d.data_root,
                 help='folder of CSV or Parquet files (default: generated default dataset)')
  p.add_argument('--spec', default=d.spec_path, help='feature spec YAML/JSON')
  p.add_argument('--pipeline-name', default=d.pipeline_name)
  p.add_argument('--model-name', default=d.model_name,
                 help='served model name: pushes go to <serving-dir>/<model-name>/<version>')
  p.add_argument('--model', default=d.model, choices=configs.MODEL_NAMES,
                 help='the Trainer\'s model (trainer/models)')
  p.add_argument('--trainer-config', default='',
                 help='YAML/JSON file with sections model_config, heads, loss, optimizer')
  p.add_argument('--train-steps', type=int, default=d.train_steps)
  p.add_argument('--eval-steps', type=int, default=d.eval_steps)
  p.add_argument('--batch-size', type=int, default=d.batch_size)
  p.add_argument('--min-auc', type=float, default=d.min_auc,
                 help='Evaluator: bless only at or above this test AUC')
  p.add_argument('--output-dir', default=d.pipeline_root,
                 help='pipeline root (artifacts and ML Metadata)')
  p.add_argument('--serving-dir', default=d.serving_model_dir,
                 help='TF Serving model base directory')
  p.add_argument('--beam-preset', default=d.beam_preset,
                 choices=sorted(configs.beam_presets()))
  p.add_argument('--beam-arg', action='append', default=[],
                 help='extra Beam pipeline argument, repeatable (e.g. --beam-arg=--runner=X)')
  p.add_argument('--distribution-strategy', default=d.distribution_strategy,
                 choices=['default', 'mirrored', 'multi_worker_mirrored', 'one_device_cpu'])
  p.add_argument('--rows', type=int, default=configs.DEFAULT_ROWS,
                 help='rows to generate when the default dataset is missing')
  p.add_argument('--seed', type=int, default=0, help='seed of the generated dataset')
  p.add_argument('--no-cache', action='store_true', help='disable TFX caching')
  p.add_argument('--report-json', default='', help='also write the report here')
  return p.parse_args(argv)


def d_trainer_config():
  return configs.PipelineConfig().trainer_config


def check_trainer_config(config: configs.PipelineConfig) -> None:
  """Builds the trainer's config objects, so that a bad setting fails before the run."""
  from trainer import models
  from trainer import losses, optimization
  from trainer.models import core
  sections = config.trainer_config
  models.model_config(config.model, sections.get('model_config'))
  models.from_dict(core.HeadConfig, sections.get('heads'), 'heads')
  models.from_dict(losses.LossConfig, sections.get('loss'), 'loss')
  models.from_dict(optimization.OptimizerConfig, sections.get('optimizer'), 'optimizer')


def config_from_args(a: argparse.Namespace) -> configs.PipelineConfig:
  return configs.PipelineConfig(
      pipeline_name=a.pipeline_name, data_root=a.data, spec_path=a.spec,
      pipeline_root=a.output_dir, serving_model_dir=a.serving_dir, model_name=a.model_name,
      model=a.model,
      trainer_config=(configs.load_trainer_config(a.trainer_config) if a.trainer_config
                      else d_trainer_config()),
      train_steps=a.train_steps, eval_steps=a.eval_steps, batch_size=a.batch_size,
      min_auc=a.min_auc, beam_preset=a.beam_preset, beam_args=a.beam_arg,
      distribution_strategy=a.distribution_strategy, enable_cache=not a.no_cache)


def main(argv: Optional[List[str]] = None) -> int:
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  args = parse_args(argv)
  try:
    config = config_from_args(args)
  except ValueError as e:  # a bad trainer-config file
    print(f'error: {e}', file=sys.stderr)
    return 2
  ensure_default_data(config, args.rows, args.seed)
  try:
    report = run(config)
  except (fs.SpecError, InputError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  if 'metrics' not in report:  # `tfx pipeline create` only compiles: nothing ran
    return 0
  print(format_report(report))
  if args.report_json:
    with open(args.report_json, 'w') as f:
      json.dump(report, f, indent=2)
  return 0


if __name__ == '__main__':
  sys.exit(main())
