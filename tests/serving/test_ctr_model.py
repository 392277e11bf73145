"""The project's CTR model behind the embedded server: the Python client over gRPC and REST
(raw rows, lists, serialized tf.Examples), the predict CLI, Beam batch scoring, the
infra-validation step, and the deployment files for the real TF Serving."""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import yaml

from components import infra_validator
from serving import batch
from serving import __main__ as cli
from serving import config as cfg
from serving import server as server_module
from serving import servable as servable_module
from serving.client import PredictionClient
from serving.core import ServerOptions
from serving.deploy import render
from serving.errors import ServingError
from serving.server import ModelServer
from bench.fixtures import write_ctr_model
from transform import local
from helpers import REPO_ROOT

MODEL = 'ctr'
REPO = REPO_ROOT


@pytest.fixture(scope='module')
def ctr(tmp_path_factory):
  work = tmp_path_factory.mktemp('ctr')
  model_dir, test, spec = write_ctr_model(str(work))
  base = work / 'serving' / MODEL
  shutil.copytree(model_dir, base / '1')
  rows = test.slice(0, 40).to_pylist()
  server = ModelServer(ServerOptions(model_config=cfg.single_model_config(MODEL, str(base)),
                                     file_system_poll_wait_seconds=0),
                       port=0, rest_api_port=0, host='127.0.0.1').start()
  loaded = tf.saved_model.load(str(base / '1'))
  expected = loaded.signatures['serving_default'](
      examples=tf.constant(local.serialize_examples(test.slice(0, 40), spec)))
  yield {'server': server, 'rows': rows, 'base': base, 'work': work, 'test': test,
         'spec': spec, 'expected': {k: v.numpy().reshape(len(rows), -1)[:, 0]
                                    for k, v in expected.items()}}
  server.stop()


@pytest.mark.parametrize('protocol', ['grpc', 'rest'])
def test_client_predicts_rows_lists_and_examples(ctr, protocol):
  server = ctr['server']
  port = server.port if protocol == 'grpc' else server.rest_api_port
  rows, expected = ctr['rows'], ctr['expected']
  with PredictionClient(f'127.0.0.1:{port}', MODEL, protocol=protocol) as client:
    assert client.feature_types()['user_id'] == tf.string.as_datatype_enum or \
        'user_id' in client.feature_types()
    out = client.predict(rows)
    assert set(out) == {'probability', 'probability_ctr', 'probability_cvr',
                        'probability_ctcvr'}
    for k, v in out.items():
      np.testing.assert_allclose(np.asarray(v, np.float64).ravel(), expected[k], rtol=1e-5)
    one = client.predict(rows[3])                          # a single dict of raw features
    assert np.asarray(one['probability']).ravel()[0] == pytest.approx(
        expected['probability'][3], rel=1e-5)
    # CSV-style strings land in the right feature kinds.
    as_text = {k: (str(v) if not isinstance(v, (bytes, str)) else v) for k, v in rows[5].items()}
    assert np.asarray(client.predict(as_text)['probability']).ravel()[0] == pytest.approx(
        expected['probability'][5], rel=1e-5)
    examples = client.examples(rows[:4])
    by_examples = client.predict(examples, output_filter=['probability_ctr'])
    assert set(by_examples) == {'probability_ctr'}
    scores = client.classify(rows[:4])
    np.testing.assert_allclose([s['1'] for s in scores], expected['probability'][:4], rtol=1e-5)
    np.testing.assert_allclose(client.regress(rows[:4]), expected['probability'][:4],
                               rtol=1e-5)
    bad = dict(rows[0])
    bad['hour'] = 'noon'
    with pytest.raises(ServingError, match='feature hour'):
      client.predict(bad)
    with pytest.raises(ServingError) as e:
      PredictionClient(f'127.0.0.1:{port}', 'nope', protocol=protocol).predict(rows[0])
    assert e.value.code.name == 'NOT_FOUND'


def test_documented_api_examples_get_the_documented_answers(ctr):
  """Every request of docs/ARCHITECTURE.md's API section (docs/api_examples.json), sent to
  this server: the same status and a response of the recorded shape."""
  import base64
  import importlib.util
  spec = importlib.util.spec_from_file_location('api_examples',
                                                os.path.join(REPO, 'docs', 'api_examples.py'))
  api = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(api)
  with open(api.SOURCE) as f:
    examples = json.load(f)
  methods = {(e['protocol'], e['method']) for e in examples}
  assert {('grpc', m) for m in ('Predict', 'Classify', 'Regress', 'MultiInference',
                                'GetModelMetadata', 'GetModelStatus',
                                'HandleReloadConfigRequest')} <= methods
  assert {('rest', 'GET'), ('rest', 'POST')} <= methods
  example = base64.b64encode(local.serialize_examples(ctr['test'].slice(0, 1),
                                                      ctr['spec'])[0]).decode()
  server = ctr['server']
  for e in examples:
    status, response = api.send(e, f'127.0.0.1:{server.port}',
                                f'127.0.0.1:{server.rest_api_port}', str(ctr['base']), example)
    assert status == e['status'], e['name']
    if 'metric_names' in response:     # counters appear as requests come: a superset
      assert set(e['response']['metric_names']) <= set(response['metric_names'])
    else:
      assert api.skeleton(response) == api.skeleton(e['response']), e['name']
  with open(api.DOC, encoding='utf-8') as f:
    assert api.markdown(examples) in f.read(), 'run python docs/api_examples.py'


def test_predict_cli(ctr, tmp_path, capsys):
  rows = ctr['rows'][:6]
  path = tmp_path / 'rows.jsonl'
  with open(path, 'w') as f:
    for i, r in enumerate(rows):
      f.write(json.dumps({'row_id': f'r{i}', **r}) + '\n')
  out = tmp_path / 'out.jsonl'
  assert cli.main(['predict', '--model', MODEL, '--input', str(path), '--output', str(out),
                   '--server', f'127.0.0.1:{ctr["server"].port}', '--batch-size', '4']) == 0
  records = [json.loads(line) for line in open(out)]
  assert [r['row_id'] for r in records] == [f'r{i}' for i in range(6)]
  np.testing.assert_allclose([r['probability'] for r in records],
                             ctr['expected']['probability'][:6], rtol=1e-5)
  (tmp_path / 'bad.jsonl').write_text('{"hour": 1}\nnot json\n')
  assert cli.main(['predict', '--model', MODEL, '--input', str(tmp_path / 'bad.jsonl'),
                   '--server', f'127.0.0.1:{ctr["server"].port}']) == 2
  assert 'line 2: not JSON' in capsys.readouterr().err


def test_beam_batch_scoring_matches_online(ctr, tmp_path):
  table = ctr['test'].slice(0, 40)
  pq.write_table(table, tmp_path / 'rows.parquet')
  path = batch.score(str(ctr['base']), str(tmp_path / 'rows.parquet'),
                     str(tmp_path / 'scores.jsonl'))
  records = sorted((json.loads(line) for line in open(path)), key=lambda r: r['row_id'])
  assert [r['row_id'] for r in records] == list(range(40))
  np.testing.assert_allclose([r['probability'] for r in records],
                             ctr['expected']['probability'], rtol=1e-5)
  with pytest.raises(FileNotFoundError):
    batch.score(str(ctr['base']), str(tmp_path / 'missing.parquet'), str(tmp_path / 'x'))


def test_infra_validation_blesses_a_good_model_and_refuses_a_broken_one(ctr, tmp_path):
  examples = [ex for ex in local.serialize_examples(ctr['test'].slice(0, 8), ctr['spec'])]
  report = infra_validator.validate(str(ctr['base'] / '1'), examples)
  assert report['blessed'], report
  assert {'probability', 'classify', 'regress'} <= set(report['checked'])
  broken = tmp_path / 'broken'
  shutil.copytree(ctr['base'] / '1', broken)
  (broken / 'saved_model.pb').write_bytes(b'\x08garbage')
  report = infra_validator.validate(str(broken), examples)
  assert not report['blessed'] and 'did not load' in report['reason']
  warm = infra_validator.write_warmup(str(tmp_path / 'm'), [b'x'])
  assert warm.endswith(os.path.join('assets.extra', 'tf_serving_warmup_requests'))


def test_deploy_files_render_and_match_the_embedded_flags(ctr, tmp_path):
  paths = render.render(str(tmp_path), render.pushed_models(str(ctr['work'] / 'serving')))
  config = cfg.read_model_server_config(paths['models.config'])
  assert [(m.name, m.base_path) for m in config.model_config_list.config] == [
      (MODEL, '/models/ctr')]
  assert cfg.BatchingParameters.from_text(open(paths['batching.config']).read()) == \
      render.PRODUCTION_BATCHING
  assert cfg.MonitoringConfig.from_text(open(paths['monitoring.config']).read()).prometheus_enable
  with pytest.raises(ValueError, match='no models'):
    render.render(str(tmp_path), [])
  # The real server's flags in docker-compose and Kubernetes are all flags the embedded
  # server takes: switching servers is a change of binary only.
  compose = yaml.safe_load(open(os.path.join(REPO, 'serving/deploy/docker-compose.yml')))
  k8s = yaml.safe_load(open(os.path.join(REPO, 'serving/deploy/kubernetes/deployment.yaml')))
  flag_sets = [compose['services']['tf-serving']['command'],
               k8s['spec']['template']['spec']['containers'][0]['args']]
  parser = argparse.ArgumentParser()
  server_module.add_arguments(parser)
  for flags in flag_sets:
    args = parser.parse_args(flags)
    assert args.model_config_file == '/config/models.config' and args.enable_batching
  kustomize = yaml.safe_load(open(os.path.join(REPO, 'serving/deploy/kubernetes/'
                                                     'kustomization.yaml')))
  files = kustomize['configMapGenerator'][0]['files']
  assert sorted(os.path.basename(f) for f in files) == sorted(paths)


def _hammer_mixed_batches(target: str, ctr, seconds: float = 8.0, threads: int = 4) -> int:
  """``threads`` clients sending serialized examples at batch sizes 1 to 320 for
  ``seconds``; every answer must equal the model's own scores. Returns the number of calls.

  TF 2.16's oneDNN kernels abort the process under exactly this load (docs/SERVING.md,
  "oneDNN"), so surviving it is the check."""
  with PredictionClient(target, MODEL) as client:
    examples = client.examples(ctr['rows'])
  expected = ctr['expected']['probability']
  sizes, calls, errors = (1, 7, 40, 120, 320), [0] * threads, []
  stop = time.time() + seconds

  def work(i):
    with PredictionClient(target, MODEL) as client:
      k = i
      while time.time() < stop and not errors:
        n = sizes[k % len(sizes)]
        k += 1
        try:
          got = client.predict((examples * 8)[:n], output_filter=['probability'])
          np.testing.assert_allclose(np.asarray(got['probability'], np.float64).ravel(),
                                     np.tile(expected, 8)[:n], rtol=1e-5)
        except Exception as e:  # reported by the assertion below
          errors.append(f'batch {n}: {e!r}'[:500])
        calls[i] += 1

  workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for w in workers:
    w.start()
  for w in workers:
    w.join()
  assert not errors, errors[0]
  return sum(calls)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_concurrent_mixed_batch_sizes_in_process(ctr):
  # The fixture's server shares this process's TensorFlow. Where that was imported with
  # oneDNN on (TensorFlow's default), the servable serializes model runs.
  unloaded = servable_module.Servable(MODEL, 1, str(ctr['base'] / '1'))
  assert (unloaded._run_lock is servable_module._ONEDNN_RUN_LOCK) == \
      servable_module.onednn_enabled()
  assert _hammer_mixed_batches(f'127.0.0.1:{ctr["server"].port}', ctr) > 20


def test_served_process_turns_onednn_off_and_survives_concurrent_load(ctr, tmp_path):
  port, rest = _free_port(), _free_port()
  log_path = tmp_path / 'server.log'
  env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
  with open(log_path, 'w') as log:
    proc = subprocess.Popen(
        [sys.executable, '-m', 'serving', 'serve', f'--port={port}',
         f'--rest_api_port={rest}', f'--model_name={MODEL}',
         f'--model_base_path={ctr["base"]}', '--host=127.0.0.1', '--enable_batching'],
        cwd=REPO, env=env, stderr=log)
  try:
    client = PredictionClient(f'127.0.0.1:{port}', MODEL, timeout=5)
    end = time.time() + 120
    while True:
      assert proc.poll() is None, log_path.read_text()[-3000:]
      try:
        if client.status().model_version_status[0].state == 30:   # AVAILABLE
          break
      except ServingError:
        pass
      assert time.time() < end, 'the server did not load the model in 120 s'
      time.sleep(0.5)
    calls = _hammer_mixed_batches(f'127.0.0.1:{port}', ctr)
    assert calls > 20 and proc.poll() is None, log_path.read_text()[-3000:]
    started = [json.loads(line) for line in open(log_path)
               if line.startswith('{') and '"server_started"' in line]
    assert started and started[0]['onednn'] is False
  finally:
    proc.terminate()
    proc.wait(30)
