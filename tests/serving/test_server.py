"""The embedded server's model lifecycle, batching, metrics and robustness:
version policies and labels, hot swap under load, partial/corrupt versions, a deleted base
path, config reload, warm-up, batching, the Prometheus endpoint, and property-based fuzzing
of the REST JSON decoder."""
import json
import os
import shutil
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import (model_management_pb2, model_pb2,
                                     predict_pb2, prediction_log_pb2,
                                     prediction_service_pb2_grpc)
from tensorflow_serving.config import model_server_config_pb2

from serving import config as cfg
from serving import errors, json_request
from serving.core import ServerOptions
from serving.manager import State
from serving.rest_server import RestApi
from serving.server import ModelServer
from bench.fixtures import TOY, toy_expected, write_toy_model

X = [[1.0, 2.0], [0.5, 0.5]]


@pytest.fixture(scope='module')
def toy_versions(tmp_path_factory):
  """Toy SavedModels for versions 1..3, written once and copied into base paths."""
  root = tmp_path_factory.mktemp('toy_src')
  return {v: write_toy_model(str(root / str(v)), v) for v in (1, 2, 3)}


def push(base: str, version: int, src: str) -> str:
  """Copies a version the way the Pusher does: everything, then saved_model.pb last."""
  dst = os.path.join(base, str(version))
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns('saved_model.pb'))
  shutil.copy(os.path.join(src, 'saved_model.pb'), os.path.join(dst, 'saved_model.pb.tmp'))
  os.rename(os.path.join(dst, 'saved_model.pb.tmp'), os.path.join(dst, 'saved_model.pb'))
  return dst


def request(version=None, label=None, x=X):
  req = predict_pb2.PredictRequest()
  req.model_spec.name = TOY
  if version is not None:
    req.model_spec.version.value = version
  if label is not None:
    req.model_spec.version_label = label
  req.inputs['x'].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
  req.inputs['key'].CopyFrom(tf.make_tensor_proto([b'k'] * len(x)))
  return req


def config_for(base, policy=None, labels=None):
  config = model_server_config_pb2.ModelServerConfig()
  m = config.model_config_list.config.add(name=TOY, base_path=str(base))
  if policy == 'all':
    m.model_version_policy.all.SetInParent()
  elif isinstance(policy, list):
    m.model_version_policy.specific.versions.extend(policy)
  elif isinstance(policy, int):
    m.model_version_policy.latest.num_versions = policy
  for k, v in (labels or {}).items():
    m.version_labels[k] = v
  return config


def states(server):
  r = server.core.manager.status(model_pb2.ModelSpec(name=TOY))
  return {s.version: (State.Name(s.state), s.status.error_message) for s in
          r.model_version_status}


def wait_for(predicate, timeout=30.0):
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if predicate():
      return True
    time.sleep(0.05)
  return False


def start(config, **kw):
  kw.setdefault('file_system_poll_wait_seconds', 0.1)
  return ModelServer(ServerOptions(model_config=config, **kw), port=0, rest_api_port=0,
                     host='127.0.0.1').start()


def test_version_policies_and_labels(toy_versions, tmp_path):
  for v in (1, 2, 3):
    push(str(tmp_path), v, toy_versions[v])
  for policy, loaded in ((None, [3]), (2, [2, 3]), ('all', [1, 2, 3]), ([1, 3], [1, 3])):
    server = start(config_for(tmp_path, policy), file_system_poll_wait_seconds=0)
    try:
      assert server.core.manager.available_versions(TOY) == loaded, policy
    finally:
      server.stop()
  server = start(config_for(tmp_path, 'all', {'stable': 1, 'canary': 3}))
  try:
    core = server.core
    assert core.predict(request(label='stable')).model_spec.version.value == 1
    assert core.predict(request(label='canary')).model_spec.version.value == 3
    # Moving a label is a config reload; a label may not name a version that is not loaded.
    core.reload_config(model_management_pb2.ReloadConfigRequest(
        config=config_for(tmp_path, 'all', {'stable': 2})))
    assert core.predict(request(label='stable')).model_spec.version.value == 2
    with pytest.raises(errors.ServingError) as e:
      core.reload_config(model_management_pb2.ReloadConfigRequest(
          config=config_for(tmp_path, 'all', {'stable': 9})))
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert 'Request to assign label to version 9 of model toy' in e.value.message
    assert core.predict(request(label='stable')).model_spec.version.value == 2
  finally:
    server.stop()


def test_partial_corrupt_and_removed_versions_and_deleted_base_path(toy_versions, tmp_path):
  base = tmp_path / 'toy'
  push(str(base), 1, toy_versions[1])
  server = start(config_for(base, 'all'))
  try:
    # A partial version (no saved_model.pb yet) is not loaded, nor even listed.
    partial = base / '2'
    shutil.copytree(toy_versions[2], partial, ignore=shutil.ignore_patterns('saved_model.pb'))
    time.sleep(0.5)
    assert set(states(server)) == {1}
    # Once the SavedModel file lands, it loads.
    shutil.copy(os.path.join(toy_versions[2], 'saved_model.pb'), partial / 'saved_model.pb')
    assert wait_for(lambda: states(server).get(2, ('',))[0] == 'AVAILABLE')
    # A corrupt version is reported as END with its error and never served.
    corrupt = base / '5'
    shutil.copytree(toy_versions[3], corrupt, ignore=shutil.ignore_patterns('saved_model.pb'))
    (corrupt / 'saved_model.pb').write_bytes(b'not a SavedModel')
    assert wait_for(lambda: states(server).get(5, ('',))[0] == 'END')
    assert states(server)[5][1]
    with pytest.raises(errors.ServingError) as e:
      server.core.predict(request(version=5))
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert server.core.predict(request()).model_spec.version.value == 2
    # A removed version unloads.
    shutil.rmtree(base / '1')
    assert wait_for(lambda: states(server)[1][0] == 'END')
    # A deleted base path: what is loaded keeps serving, and the error is reported.
    shutil.rmtree(base)
    assert wait_for(lambda: TOY in server.core.manager.base_path_errors())
    out = server.core.predict(request())
    assert out.model_spec.version.value == 2
    np.testing.assert_allclose(tf.make_ndarray(out.outputs['y']), toy_expected(X, 2))
  finally:
    server.stop()


def test_hot_swap_under_load(toy_versions, tmp_path):
  """v2 is pushed and v1 removed while 4 clients send requests: none fails, and responses
  move from v1 to v2."""
  base = tmp_path / 'toy'
  push(str(base), 1, toy_versions[1])
  server = start(config_for(base))
  stub = prediction_service_pb2_grpc.PredictionServiceStub(
      grpc.insecure_channel(f'127.0.0.1:{server.port}'))
  seen, failures, stop = [], [], threading.Event()

  def load():
    while not stop.is_set():
      try:
        r = stub.Predict(request(), timeout=10)
        y = tf.make_ndarray(r.outputs['y'])
        v = r.model_spec.version.value
        if not np.allclose(y, toy_expected(X, v)):
          failures.append(f'wrong values from v{v}')
        seen.append(v)
      except grpc.RpcError as e:
        failures.append(f'{e.code()}: {e.details()}')

  threads = [threading.Thread(target=load) for _ in range(4)]
  try:
    for t in threads:
      t.start()
    assert wait_for(lambda: len(seen) > 20)
    push(str(base), 2, toy_versions[2])
    assert wait_for(lambda: seen[-1] == 2 and states(server)[1][0] == 'END')
    shutil.rmtree(base / '1')
    n = len(seen)
    assert wait_for(lambda: len(seen) > n + 20)
  finally:
    stop.set()
    for t in threads:
      t.join()
    server.stop()
  assert failures == []
  first_v2 = seen.index(2)
  assert set(seen[:first_v2]) == {1} and len(seen) - first_v2 > 20
  assert seen[-20:] == [2] * 20


def test_warmup_requests_replayed_at_load(toy_versions, tmp_path):
  base = tmp_path / 'toy'
  src = push(str(base), 1, toy_versions[1])
  warm = os.path.join(src, 'assets.extra', 'tf_serving_warmup_requests')
  os.makedirs(os.path.dirname(warm))
  with tf.io.TFRecordWriter(warm) as w:
    for _ in range(3):
      w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
          request=request())).SerializeToString())
  server = start(config_for(base))
  try:
    text = server.core.metrics.render()
    # Warm-up runs go through the session (runtime latency) but are not requests.
    assert ':tensorflow:serving:runtime_latency_count{model_name="toy",API="Predict",' \
           'runtime="TF1"} 3' in text
    assert ':tensorflow:serving:request_count' not in text
  finally:
    server.stop()
  # A warm-up request that fails makes the load fail.
  base2 = tmp_path / 'toy2'
  src = push(str(base2), 1, toy_versions[1])
  os.makedirs(os.path.join(src, 'assets.extra'))
  bad = request()
  bad.model_spec.signature_name = 'nope'
  with tf.io.TFRecordWriter(os.path.join(src, 'assets.extra',
                                         'tf_serving_warmup_requests')) as w:
    w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=bad)).SerializeToString())
  server = start(config_for(base2))
  try:
    state, message = states(server)[1]
    assert state == 'END' and 'Serving signature key "nope" not found.' in message
  finally:
    server.stop()


def test_batching_merges_concurrent_requests(toy_versions, tmp_path):
  push(str(tmp_path), 1, toy_versions[1])
  params = cfg.BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000,
                                  num_batch_threads=1, allowed_batch_sizes=(4, 8))
  server = start(config_for(tmp_path), enable_batching=True, batching_parameters=params)
  try:
    results = {}

    def one(i):
      x = [[float(i), 1.0]]
      results[i] = tf.make_ndarray(server.core.predict(request(x=x)).outputs['y'])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    for i, y in results.items():   # each request gets its own rows back
      np.testing.assert_allclose(y, toy_expected([[float(i), 1.0]], 1))
    text = server.core.metrics.render()
    count = float(text.split(':tfx_ctr:serving:batch_size_count ')[1].split()[0])
    assert count < 6   # fewer session runs than requests
    assert ':tfx_ctr:serving:batch_padding_sum' in text
    with pytest.raises(errors.ServingError) as e:
      server.core.predict(request(x=np.ones([9, 2])))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.message == 'Task size 9 is larger than maximum input batch size 8'
  finally:
    server.stop()


def test_prometheus_endpoint_uses_tf_serving_names(toy_versions, tmp_path):
  push(str(tmp_path), 1, toy_versions[1])
  server = start(config_for(tmp_path))
  try:
    server.core.predict(request())
    with pytest.raises(errors.ServingError):
      server.core.predict(request(version=4))
    url = f'http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/metrics'
    text = urllib.request.urlopen(url).read().decode()
    assert ':tensorflow:serving:request_count{model_name="toy",status="OK"} 1' in text
    assert ':tensorflow:serving:request_count{model_name="toy",status="NOT_FOUND"} 1' in text
    assert '# TYPE :tensorflow:serving:request_latency histogram' in text
    assert (':tensorflow:serving:request_latency_count{model_name="toy",API="Predict",'
            'entrypoint="GRPC"} 2') in text
  finally:
    server.stop()


def test_config_parsing_and_errors(tmp_path):
  text = cfg.model_server_config_text({'a': '/m/a', 'b': '/m/b'}, {'a': {'stable': 3}}, 2)
  parsed = cfg.parse_model_server_config(text)
  assert [m.name for m in parsed.model_config_list.config] == ['a', 'b']
  assert parsed.model_config_list.config[0].version_labels['stable'] == 3
  assert cfg.aspired_versions(parsed.model_config_list.config[0], [5, 1, 3]) == [3, 5]
  for bad, message in [
      ('model_config_list { config { name: "a" } }', 'has no base_path'),
      ('model_config_list { config { name: "a" base_path: "/x" } '
       'config { name: "a" base_path: "/y" } }', 'multiple times'),
      ('custom_model_config {}', 'only supports model_config_list'),
      ('model_config_list { bogus: 1 }', 'Invalid model server config')]:
    with pytest.raises(errors.ServingError, match=message):
      cfg.parse_model_server_config(bad)
  b = cfg.BatchingParameters.from_text(cfg.BatchingParameters(
      max_batch_size=64, allowed_batch_sizes=(8, 64)).to_text())
  assert b.max_batch_size == 64 and b.allowed_batch_sizes == (8, 64)
  with pytest.raises(errors.ServingError, match='must be equal to the maximum'):
    cfg.BatchingParameters(max_batch_size=64, allowed_batch_sizes=(8, 32))
  with pytest.raises(errors.ServingError, match='no field named "max_batchsize"'):
    cfg.BatchingParameters.from_text('max_batchsize { value: 3 }')
  assert cfg.MonitoringConfig.from_text('prometheus_config { enable: true path: "/m" }'
                                        ).prometheus_path == '/m'


# ----------------------------------------------------------- fuzzing the REST decoder
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8) |
    st.fixed_dictionaries({'b64': st.text(max_size=8)}),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.sampled_from(['x', 'key', 'n', 'b64', 'inputs', 'instances',
                                     'examples', 'context', 'signature_name']),
                    children, max_size=4),
    max_leaves=20)
documents = st.fixed_dictionaries({}, optional={
    'signature_name': st.sampled_from(['serving_default', 'ints', 'regression',
                                       'classification', 'nope']) | json_values,
    'instances': json_values, 'inputs': json_values, 'examples': json_values,
    'context': json_values})


@pytest.fixture(scope='module')
def rest_api(toy_versions, tmp_path_factory):
  base = tmp_path_factory.mktemp('fuzz')
  push(str(base), 1, toy_versions[1])
  server = start(config_for(base), file_system_poll_wait_seconds=0)
  yield RestApi(server.core)
  server.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents | json_values, verb=st.sampled_from(['predict', 'regress', 'classify']))
def test_rest_decoder_fuzz_never_500(rest_api, doc, verb):
  body = json.dumps(doc, allow_nan=True).encode()
  status, text = rest_api.handle('POST', f'/v1/models/toy:{verb}', body)
  assert status in (200, 400, 404), text
  parsed = json.loads(text)
  assert ('error' in parsed) == (status != 200)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64))
def test_rest_decoder_fuzz_raw_bytes(body):
  try:
    doc = json_request.parse(body)
    json_request.classify_regress_request(json.dumps(doc).encode(), model_pb2.ModelSpec(),
                                        'regress')
  except errors.ServingError as e:
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
