"""serving/core.py: warm-up requests are replayed at load, and a failing one fails the
load."""
import os

import tensorflow as tf
from tensorflow_serving.apis import (prediction_log_pb2)

from helpers import push_version, start_server, toy_config, toy_request, version_states


def test_warmup_requests_replayed_at_load(toy_versions, tmp_path):
  base = tmp_path / 'toy'
  src = push_version(str(base), 1, toy_versions[1])
  warm = os.path.join(src, 'assets.extra', 'tf_serving_warmup_requests')
  os.makedirs(os.path.dirname(warm))
  with tf.io.TFRecordWriter(warm) as w:
    for _ in range(3):
      w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
          request=toy_request())).SerializeToString())
  server = start_server(toy_config(base))
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
  src = push_version(str(base2), 1, toy_versions[1])
  os.makedirs(os.path.join(src, 'assets.extra'))
  bad = toy_request()
  bad.model_spec.signature_name = 'nope'
  with tf.io.TFRecordWriter(os.path.join(src, 'assets.extra',
                                         'tf_serving_warmup_requests')) as w:
    w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=bad)).SerializeToString())
  server = start_server(toy_config(base2))
  try:
    state, message = version_states(server)[1]
    assert state == 'END' and 'Serving signature key "nope" not found.' in message
  finally:
    server.stop()
