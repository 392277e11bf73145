"""serving/grpc_server.py: TF Serving's two gRPC services on the embedded core, errors
sent as the call's status, and requests past gRPC's 4 MB default accepted."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (get_model_status_pb2, model_service_pb2_grpc,
                                     prediction_service_pb2_grpc)

from serving import grpc_server
from serving.core import ServerCore, ServerOptions
from bench.fixtures import TOY, toy_expected
from helpers import push_version, toy_config, toy_request


@pytest.fixture(scope='module')
def channel(toy_versions, tmp_path_factory):
  base = tmp_path_factory.mktemp('grpc')
  push_version(str(base), 1, toy_versions[1])
  core = ServerCore(ServerOptions(model_config=toy_config(base),
                                  file_system_poll_wait_seconds=0))
  core.start()
  server, port = grpc_server.create_server(core, 0, host='127.0.0.1', max_threads=4)
  assert port > 0
  server.start()
  with grpc.insecure_channel(f'127.0.0.1:{port}', options=[
      ('grpc.max_send_message_length', grpc_server.MAX_MESSAGE_BYTES)]) as ch:
    yield ch
  server.stop(None)
  core.stop()


def test_predict_and_status_over_grpc(channel):
  predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
  r = predict.Predict(toy_request(), timeout=30)
  np.testing.assert_allclose(tf.make_ndarray(r.outputs['y']), toy_expected([[1, 2], [.5, .5]],
                                                                           1))
  status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
      get_model_status_pb2.GetModelStatusRequest(model_spec={'name': TOY}), timeout=30)
  assert [(s.version, s.state) for s in status.model_version_status] == [
      (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]


def test_errors_are_the_calls_status(channel):
  predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
  with pytest.raises(grpc.RpcError) as e:
    predict.Predict(toy_request(version=7), timeout=30)
  assert e.value.code() == grpc.StatusCode.NOT_FOUND
  assert e.value.details() == 'Servable not found for request: Specific(toy, 7)'


def test_requests_past_the_4mb_default_are_served(channel):
  rows = np.random.default_rng(0).normal(size=(600_000, 2)).astype(np.float32)  # 4.8 MB
  req = toy_request(x=rows)
  req.output_filter.append('y')
  assert req.ByteSize() > 4 * 2 ** 20
  r = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(req, timeout=120)
  np.testing.assert_allclose(tf.make_ndarray(r.outputs['y']), toy_expected(rows, 1),
                             rtol=1e-5)
