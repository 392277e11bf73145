"""End to end: the whole local pipeline on small data; a version is pushed, loads, predicts.

The default-dataset run goes through the TFX CLI (``tfx pipeline create`` and
``tfx run create --engine local``), configured by environment variables as a user would.
The first ``run create`` is killed (SIGKILL) once the Trainer has started; the second
completes from the cached upstream outputs. A third run through
``python -m pipeline.local_runner`` reuses every component up to the Trainers and, with
an unreachable AUC gate and an unreachable margin over the GBDT baseline, must not push.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.csv as pacsv
import pytest
import tensorflow as tf

from pipeline import configs, local_runner
from transform import feature_spec as fs

from helpers import REPO_ROOT, shared_data

pytestmark = pytest.mark.e2e
ROWS = 20_000
CACHED, COMPLETE = 5, 3  # ml_metadata Execution.State
KILL_TIMEOUT_S = 900
# The GBDT baseline's search is cut to a few trials here (the default, 30, is measured by
# bench/quality); both runs of the default pipeline read this file, so its GbdtTrainer
# is cached for the second.
TRAINER_CONFIG = 'gbdt: {trials: 4}\n'


def _trainer_config(workdir):
  path = workdir / 'trainer.yaml'
  path.write_text(TRAINER_CONFIG)
  return str(path)


def _env(workdir):
  env = dict(os.environ, CTR_WORKDIR=str(workdir), CTR_ROWS=str(ROWS),
             CTR_TRAINER_CONFIG=_trainer_config(workdir),
             CTR_TRAIN_STEPS='300', CTR_EVAL_STEPS='20',
             # 20k rows leave ~40 test positives: too few to bound AUC or calibration.
             # The gate's refusal is tested by the last run; MovieLens tests real bounds.
             CTR_MIN_AUC='0.0', CTR_MAX_CALIBRATION_GAP='1.0', CTR_MAX_ECE='1.0',
             CTR_GBDT_AUC_MARGIN='-1.0', CTR_GBDT_MAX_LOGLOSS_RISE='1.0',
             LOCAL_HOME=str(workdir / 'tfx_cli_home'), TF_USE_LEGACY_KERAS='1')
  return env


def _executions(metadata_path):
  return [(i, name, state) for i, name, state, _ in local_runner.executions(metadata_path)]


def _serialized_examples(csv_folder, spec, n=64, with_labels=False):
  table = pacsv.read_csv(os.path.join(csv_folder, sorted(os.listdir(csv_folder))[0]))
  rows = table.slice(0, n).to_pylist()
  out = []
  for row in rows:
    feats = {}
    for name in spec.feature_names + (spec.label_columns if with_labels else []):
      v = row[name]
      if v is None or v == '':
        continue
      if isinstance(v, str):
        feats[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
      elif isinstance(v, float):
        feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
      else:
        feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
    out.append(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
  return out, rows


def _check_pushed_model(report, csv_folder, spec):
  assert report['pushed'], report
  dest = report['pushed_destination']
  version = os.path.basename(dest.rstrip('/'))
  assert version.isdigit(), f'TF Serving needs a numbered version folder, got {dest}'
  assert os.path.isfile(os.path.join(dest, 'saved_model.pb'))
  # The pushed copy is the infra blessing's: it served real requests and carries them as
  # its TF Serving warm-up file.
  assert report['infra_validation']['blessed'], report['infra_validation']
  assert os.path.isfile(os.path.join(dest, 'assets.extra', 'tf_serving_warmup_requests'))
  loaded = tf.saved_model.load(dest)
  assert {'serving_default', 'transform_features', 'predict_raw'} <= set(loaded.signatures)
  examples, rows = _serialized_examples(csv_folder, spec)
  by_example = loaded.signatures['serving_default'](examples=tf.constant(examples))
  prob = by_example['probability'].numpy().ravel()
  assert prob.shape == (len(examples),)
  assert np.all((prob > 0) & (prob < 1)) and prob.std() > 0
  raw_sig = loaded.signatures['predict_raw']
  _, kwargs = raw_sig.structured_input_signature
  raw = {}
  for name, spec_ in kwargs.items():
    values = [r[name] for r in rows]
    if spec_.dtype == tf.string:
      values = ['' if v is None else str(v) for v in values]
    raw[name] = tf.constant(values, dtype=spec_.dtype)
  by_raw = raw_sig(**raw)['probability'].numpy().ravel()
  np.testing.assert_allclose(by_raw, prob, rtol=1e-5, atol=1e-7)
  labelled, _ = _serialized_examples(csv_folder, spec, with_labels=True)
  transformed = loaded.signatures['transform_features'](examples=tf.constant(labelled))
  assert set(transformed) >= {f'{n}_xf' for n in spec.feature_names + [
      l.name for l in spec.labels]}


def report_gbdt_ok(config):
  """The GBDT baseline was trained and evaluated on the test rows; the final blessing
  is the conjunction of both Evaluators'."""
  report = local_runner.run_report(config)
  g = report['gbdt']
  assert g['trainer']['model'] == 'lightgbm' and g['trainer']['trees'] >= 1, g['trainer']
  assert len(g['trainer']['search']) == 4     # the trainer config's trials
  assert g['metrics']['example_count'] == report['metrics']['example_count']
  assert g['auc_diff'] == pytest.approx(report['metrics']['auc'] - g['metrics']['auc'],
                                        abs=2e-3)
  return report['blessed'] is True and g['blessed'] is True


def test_default_pipeline_via_tfx_cli(tmp_path):
  env = _env(tmp_path)
  tfx_cli = os.path.join(os.path.dirname(sys.executable), 'tfx')
  dsl = os.path.join(REPO_ROOT, 'pipeline', 'local_runner.py')
  subprocess.run([tfx_cli, 'pipeline', 'create', '--engine', 'local', '--pipeline_path', dsl],
                 env=env, check=True, cwd=REPO_ROOT)
  run_create = [tfx_cli, 'run', 'create', '--engine', 'local', '--pipeline_name',
                'ctr-default']
  config = configs.PipelineConfig(
      data_root=str(tmp_path / 'data' / 'default' / 'csv'),
      pipeline_root=str(tmp_path / 'tfx'), serving_model_dir=str(tmp_path / 'serving'))

  # Kill the first run once the Trainer has started, as a crash or a Ctrl-C would.
  proc = subprocess.Popen(run_create, env=env, cwd=REPO_ROOT, start_new_session=True)
  deadline = time.time() + KILL_TIMEOUT_S
  killed_in = None
  while time.time() < deadline and proc.poll() is None:
    try:
      names = {name for _, name, _ in _executions(config.metadata)}
    except Exception:  # the database is being created or written: look again
      names = set()
    if 'Trainer' in names:
      os.killpg(proc.pid, signal.SIGKILL)
      killed_in = 'Trainer'
      break
    time.sleep(1)
  proc.wait()
  assert killed_in == 'Trainer', f'the run ended (rc {proc.returncode}) before the Trainer'
  killed = _executions(config.metadata)
  assert 'Pusher' not in {name for _, name, _ in killed}
  assert not os.path.isdir(config.push_base)
  # Started again, it completes from the cached upstream outputs.
  subprocess.run(run_create, env=env, check=True, cwd=REPO_ROOT)
  resumed = {name: state for i, name, state in _executions(config.metadata)
             if i > max(j for j, _, _ in killed)}
  for name in ('ExampleGen', 'StatisticsGen', 'SchemaGen', 'Transform'):
    assert resumed[name] == CACHED, (name, resumed)
  assert resumed['Trainer'] == COMPLETE and resumed['Pusher'] == COMPLETE
  # The GBDT baseline's Trainer may have finished before the kill (then it is cached).
  assert resumed['GbdtTrainer'] in (CACHED, COMPLETE)
  assert resumed['GbdtEvaluator'] == COMPLETE and resumed['BlessingGate'] == COMPLETE
  assert report_gbdt_ok(config)
  report = local_runner.run_report(config)
  spec = fs.load(config.spec_path)
  assert report['blessed'] is True
  m = report['metrics']
  assert 0.4 <= m['auc'] <= 1 and m['logloss'] < 0.2 and 0 <= m['ece_10_width'] < 0.05
  assert m['example_count'] > 0.05 * ROWS
  # Every metric for every task; CVR on clicked rows only (weighted by the click label).
  for name in ('auc', 'auc_pr', 'brier', 'gauc', 'ece_20_mass', 'calibration'):
    for output in ('', 'probability_cvr/', 'probability_ctcvr/'):   # '': CTR's output
      assert output + name in m, (output + name, sorted(m))
  assert m['probability_cvr/example_count'] < 0.2 * m['example_count']
  # The candidate's greedy policy over the 6 creatives, evaluated off-policy on the same
  # test rows (the spec names the logged action and its propensity); report only.
  assert resumed['OffPolicyEvaluator'] == COMPLETE
  o = report['ope']
  assert o['rows'] == m['example_count'] and o['n_actions'] == 6 and o['blessed'] is True
  assert o['config']['gate'] is False and o['config']['estimator'] == 'dr'
  assert o['lift']['ci_low'] < o['lift']['value'] < o['lift']['ci_high']
  # The default model with ESMM heads (click, conversion) and calibrated outputs.
  assert report['trainer']['model'] == 'dnn'
  assert set(report['trainer']['calibration']['tasks']) == {'ctr', 'cvr', 'ctcvr'}
  _check_pushed_model(report, config.data_root, spec)
  first = _executions(config.metadata)

  # Rerun: same data and training, unreachable gates (AUC >= 0.999, and 0.5 above the
  # GBDT baseline's). Everything up to the Trainers comes from the cache; both
  # Evaluators rerun and refuse, and nothing new is pushed.
  versions = sorted(os.listdir(config.push_base))
  rc = local_runner.main([
      '--data', config.data_root, '--output-dir', config.pipeline_root,
      '--serving-dir', config.serving_model_dir, '--train-steps', '300',
      '--eval-steps', '20', '--trainer-config', _trainer_config(tmp_path),
      '--min-auc', '0.999', '--max-calibration-gap', '1.0',
      '--max-ece', '1.0', '--gbdt-auc-margin', '0.5', '--gbdt-max-logloss-rise', '1.0',
      '--ope-min-lift', '1.0', '--experiments-dir', str(tmp_path / 'experiments')])
  assert rc == 0
  # The run's report says which gate refused it, and why.
  (run_dir,) = os.listdir(tmp_path / 'experiments')
  assert run_dir.startswith('dnn_')
  run_report = json.loads((tmp_path / 'experiments' / run_dir / 'metrics.json').read_text())
  gates = {g['gate']: g for g in run_report['gates']['gates']}
  assert run_report['gates']['blessed'] is False
  assert gates['AUC lower bound']['passed'] is False and gates['AUC lower bound']['why']
  assert gates['calibration']['passed'] is True and gates['ECE']['passed'] is True
  assert gates['beats GBDT on AUC']['passed'] is False
  assert 'against the GBDT baseline' in gates['beats GBDT on AUC']['why']
  assert gates['beats GBDT on logloss']['passed'] is True
  assert run_report['verdict'] is False and run_report['gbdt']['blessed'] is False
  # A lift of 1 click per impression is out of reach: the off-policy gate refuses too.
  assert gates['off-policy lift']['applied'] and gates['off-policy lift']['passed'] is False
  assert 'at or below min_lift 1' in gates['off-policy lift']['why']
  assert [b['model'] for b in run_report['baselines']] == ['candidate', 'GBDT (LightGBM, tuned)']
  # A blessed model exists now, so the regression gates apply.
  assert gates['no AUC regression']['applied'] and gates['no logloss regression']['applied']
  assert set(run_report['reliability']) == {'probability', 'probability_cvr',
                                            'probability_ctcvr'}
  assert run_report['primary_task'] == 'ctr'
  page = (tmp_path / 'experiments' / run_dir / 'report.html').read_text()
  assert 'NOT BLESSED' in page and 'reliability.png' in page and 'hour = ' in page
  assert 'Off-policy evaluation' in page and 'lift over the logging policy' in page
  assert '<td>probability (ctr)</td>' in page
  assert (tmp_path / 'experiments' / run_dir / 'reliability.png').read_bytes()[:4] == \
      b'\x89PNG'
  second = [e for e in _executions(config.metadata) if e[0] > max(i for i, _, _ in first)]
  states = {name: state for _, name, state in second}
  for name in ('ExampleGen', 'StatisticsGen', 'SchemaGen', 'Transform', 'Trainer',
               'GbdtTrainer'):
    assert states[name] == CACHED, (name, states)
  for name in ('Evaluator', 'GbdtEvaluator', 'OffPolicyEvaluator', 'BlessingGate'):
    assert states[name] == COMPLETE, (name, states)
  again = local_runner.run_report(config)
  assert again['blessed'] is False and again['pushed'] is False
  assert again['gbdt']['blessed'] is False and again['ope']['blessed'] is False
  assert sorted(os.listdir(config.push_base)) == versions


def test_movielens_pipeline(tmp_path):
  raw = shared_data('movielens_100k')
  from datagen import movielens
  folder = movielens.convert(raw, str(tmp_path / 'data'))
  report_path = tmp_path / 'report.json'
  trainer_config = tmp_path / 'trainer.yaml'
  trainer_config.write_text('model_config: {hidden_units: [64, 32], embedding_dim: 8}\n'
                            'optimizer: {optimizer: adamw, schedule: cosine_restarts, '
                            'first_decay_steps: 100, clipnorm: 1.0}\n' + TRAINER_CONFIG)
  rc = local_runner.main([
      '--data', folder, '--spec', os.path.join(REPO_ROOT, 'specs', 'movielens_100k.yaml'),
      '--pipeline-name', 'ctr-movielens', '--model-name', 'movielens',
      '--model', 'deepfm', '--trainer-config', str(trainer_config),
      '--output-dir', str(tmp_path / 'tfx'), '--serving-dir', str(tmp_path / 'serving'),
      '--train-steps', '300', '--eval-steps', '20', '--min-auc', '0.7',
      # 300 steps do not reach the GBDT baseline (bench/quality): tolerate a shortfall
      # here; the default pipeline's test checks a refusal.
      '--gbdt-auc-margin', '-0.1', '--gbdt-max-logloss-rise', '0.1',
      '--report-json', str(report_path), '--experiments-dir', str(tmp_path / 'experiments')])
  assert rc == 0
  report = json.loads(report_path.read_text())
  assert report['metrics']['auc'] >= 0.7
  # Every gate held (calibration and ECE at their default bounds), as the report shows.
  run_report = json.loads(open(os.path.join(report['report_dir'], 'metrics.json')).read())
  assert run_report['gates']['blessed'] is True and run_report['verdict'] is True
  assert all(g['passed'] for g in run_report['gates']['gates'] if g['applied'])
  # Its first run: no blessed model yet, so no regression gate.
  assert [g['gate'] for g in run_report['gates']['gates'] if not g['applied']] == [
      'no AUC regression', 'no logloss regression']
  # The GBDT baseline: LightGBM on the same raw rows, searched on eval; both models'
  # TFMA metrics on the same test rows, shown side by side.
  gbdt = report['gbdt']
  assert gbdt['trainer']['model'] == 'lightgbm' and gbdt['trainer']['trees'] >= 1
  assert gbdt['metrics']['example_count'] == report['metrics']['example_count']
  assert 0.7 < gbdt['metrics']['auc'] < 0.9 and 0.3 < gbdt['metrics']['logloss'] < 0.7
  assert gbdt['auc_diff'] == pytest.approx(report['metrics']['auc'] - gbdt['metrics']['auc'],
                                           abs=2e-3)
  assert gbdt['blessed'] is True
  gbdt_gates = {g['gate']: g for g in run_report['gates']['gates'] if 'GBDT' in g['gate']}
  assert gbdt_gates['beats GBDT on AUC']['value'] == pytest.approx(gbdt['auc_diff'])
  assert [b['model'] for b in run_report['baselines']] == ['candidate', 'GBDT (LightGBM, tuned)']
  assert run_report['baselines'][1]['auc'] == pytest.approx(gbdt['metrics']['auc'])
  slices = {r['slice'] for r in run_report['slices']}
  assert {'overall', 'gender = F', 'gender = M'} <= slices
  assert 0.5 < report['metrics']['gauc'] < 1 and report['metrics']['auc_pr'] > 0.5
  assert report['trainer']['model'] == 'deepfm'
  assert list(report['trainer']['calibration']['tasks']) == ['liked']   # one label
  assert report['pushed_destination'].startswith(str(tmp_path / 'serving' / 'movielens'))
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'movielens_100k.yaml'))
  _check_pushed_model(report, folder, spec)
