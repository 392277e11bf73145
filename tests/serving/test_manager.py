"""serving/manager.py: version policies and labels, config reload, partial, corrupt and
removed versions, a deleted base path, and the hot swap under load."""
import os
import shutil
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (model_management_pb2, prediction_service_pb2_grpc)

from serving import errors
from bench.fixtures import TOY, toy_expected
from helpers import (TOY_X, push_version, start_server, toy_config, toy_request, version_states,
                     wait_for)


def test_version_policies_and_labels(toy_versions, tmp_path):
  for v in (1, 2, 3):
    push_version(str(tmp_path), v, toy_versions[v])
  for policy, loaded in ((None, [3]), (2, [2, 3]), ('all', [1, 2, 3]), ([1, 3], [1, 3])):
    server = start_server(toy_config(tmp_path, policy), file_system_poll_wait_seconds=0)
    try:
      assert server.core.manager.available_versions(TOY) == loaded, policy
    finally:
      server.stop()
  server = start_server(toy_config(tmp_path, 'all', {'stable': 1, 'canary': 3}))
  try:
    core = server.core
    assert core.predict(toy_request(label='stable')).model_spec.version.value == 1
    assert core.predict(toy_request(label='canary')).model_spec.version.value == 3
    # Moving a label is a config reload; a label may not name a version that is not loaded.
    core.reload_config(model_management_pb2.ReloadConfigRequest(
        config=toy_config(tmp_path, 'all', {'stable': 2})))
    assert core.predict(toy_request(label='stable')).model_spec.version.value == 2
    with pytest.raises(errors.ServingError) as e:
      core.reload_config(model_management_pb2.ReloadConfigRequest(
          config=toy_config(tmp_path, 'all', {'stable': 9})))
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert 'Request to assign label to version 9 of model toy' in e.value.message
    assert core.predict(toy_request(label='stable')).model_spec.version.value == 2
  finally:
    server.stop()


def test_partial_corrupt_and_removed_versions_and_deleted_base_path(toy_versions, tmp_path):
  base = tmp_path / 'toy'
  push_version(str(base), 1, toy_versions[1])
  server = start_server(toy_config(base, 'all'))
  try:
    # A partial version (no saved_model.pb yet) is not loaded, nor even listed.
    partial = base / '2'
    shutil.copytree(toy_versions[2], partial, ignore=shutil.ignore_patterns('saved_model.pb'))
    time.sleep(0.5)
    assert set(version_states(server)) == {1}
    # Once the SavedModel file lands, it loads.
    shutil.copy(os.path.join(toy_versions[2], 'saved_model.pb'), partial / 'saved_model.pb')
    assert wait_for(lambda: version_states(server).get(2, ('',))[0] == 'AVAILABLE')
    # A corrupt version is reported as END with its error and never served.
    corrupt = base / '5'
    shutil.copytree(toy_versions[3], corrupt, ignore=shutil.ignore_patterns('saved_model.pb'))
    (corrupt / 'saved_model.pb').write_bytes(b'not a SavedModel')
    assert wait_for(lambda: version_states(server).get(5, ('',))[0] == 'END')
    assert version_states(server)[5][1]
    with pytest.raises(errors.ServingError) as e:
      server.core.predict(toy_request(version=5))
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert server.core.predict(toy_request()).model_spec.version.value == 2
    # A removed version unloads.
    shutil.rmtree(base / '1')
    assert wait_for(lambda: version_states(server)[1][0] == 'END')
    # A deleted base path: what is loaded keeps serving, and the error is reported.
    shutil.rmtree(base)
    assert wait_for(lambda: TOY in server.core.manager.base_path_errors())
    out = server.core.predict(toy_request())
    assert out.model_spec.version.value == 2
    np.testing.assert_allclose(tf.make_ndarray(out.outputs['y']), toy_expected(TOY_X, 2))
  finally:
    server.stop()


def test_hot_swap_under_load(toy_versions, tmp_path):
  """v2 is pushed and v1 removed while 4 clients send requests: none fails, and responses
  move from v1 to v2."""
  base = tmp_path / 'toy'
  push_version(str(base), 1, toy_versions[1])
  server = start_server(toy_config(base))
  stub = prediction_service_pb2_grpc.PredictionServiceStub(
      grpc.insecure_channel(f'127.0.0.1:{server.port}'))
  seen, failures, stop = [], [], threading.Event()

  def load():
    while not stop.is_set():
      try:
        r = stub.Predict(toy_request(), timeout=10)
        y = tf.make_ndarray(r.outputs['y'])
        v = r.model_spec.version.value
        if not np.allclose(y, toy_expected(TOY_X, v)):
          failures.append(f'wrong values from v{v}')
        seen.append(v)
      except grpc.RpcError as e:
        failures.append(f'{e.code()}: {e.details()}')

  threads = [threading.Thread(target=load) for _ in range(4)]
  try:
    for t in threads:
      t.start()
    assert wait_for(lambda: len(seen) > 20)
    push_version(str(base), 2, toy_versions[2])
    assert wait_for(lambda: seen[-1] == 2 and version_states(server)[1][0] == 'END')
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
