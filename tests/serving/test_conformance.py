"""TF Serving conformance: the official ``tensorflow-serving-api`` stubs and plain HTTP
against the embedded server, and against a real ``tensorflow_model_server`` when
``TF_SERVING_ADDRESS`` (``host`` or ``host:grpc_port:rest_port``) names one serving the
models of ``python -m bench.fixtures`` (skipped otherwise).

Every case checks the status code and TF Serving's message for one error path of its
tables, or the exact values of a successful call.
"""
import base64
import json
import os
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, inference_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc, regression_pb2)
from tensorflow_serving.config import model_server_config_pb2

from serving.core import ServerOptions
from serving.server import ModelServer
from bench.fixtures import TOY, example, toy_expected, write_toy_model

EXTERNAL = os.environ.get('TF_SERVING_ADDRESS', '')


class Target:
  def __init__(self, host, grpc_port, rest_port):
    self.channel = grpc.insecure_channel(f'{host}:{grpc_port}')
    self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
    self.rest = f'http://{host}:{rest_port}'

  def http(self, method, path, body=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(self.rest + path, data=data, method=method)
    try:
      with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
      return e.code, json.loads(e.read())


@pytest.fixture(scope='module', params=['embedded', 'external'])
def target(request, tmp_path_factory):
  if request.param == 'external':
    if not EXTERNAL:
      pytest.skip('no real TF Serving: set TF_SERVING_ADDRESS=host[:grpc_port:rest_port]')
    parts = EXTERNAL.split(':')
    host, g, r = (parts + ['8500', '8501'])[:3] if len(parts) < 3 else parts
    yield Target(host, g, r)
    return
  base = tmp_path_factory.mktemp('models')
  for v in (1, 2):
    write_toy_model(str(base / TOY / str(v)), v)
  config = model_server_config_pb2.ModelServerConfig()
  m = config.model_config_list.config.add(name=TOY, base_path=str(base / TOY))
  m.model_version_policy.all.SetInParent()
  m.version_labels['stable'] = 1
  server = ModelServer(ServerOptions(model_config=config, file_system_poll_wait_seconds=0),
                       port=0, rest_api_port=0, host='127.0.0.1').start()
  yield Target('127.0.0.1', server.port, server.rest_api_port)
  server.stop()


def _predict_request(x, keys, name=TOY, **spec):
  req = predict_pb2.PredictRequest()
  req.model_spec.name = name
  for k, v in spec.items():
    if k == 'version':
      req.model_spec.version.value = v
    else:
      setattr(req.model_spec, k, v)
  req.inputs['x'].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
  req.inputs['key'].CopyFrom(tf.make_tensor_proto(keys))
  return req


def _error(call, request):
  with pytest.raises(grpc.RpcError) as info:
    call(request)
  return info.value.code(), info.value.details()


X = [[1.0, 2.0], [3.5, -1.0]]


# ------------------------------------------------------------------ gRPC: success
def test_predict_latest_version_and_values(target):
  r = target.predict.Predict(_predict_request(X, [b'a', b'\xff']))
  assert r.model_spec.name == TOY and r.model_spec.version.value == 2
  assert r.model_spec.signature_name == 'serving_default'
  np.testing.assert_allclose(tf.make_ndarray(r.outputs['y']), toy_expected(X, 2))
  assert tf.make_ndarray(r.outputs['version']).tolist() == [2, 2]
  assert tf.make_ndarray(r.outputs['key_bytes']).tolist() == [b'a', b'\xff']


def test_predict_version_label_and_output_filter(target):
  r = target.predict.Predict(_predict_request(X, [b'a', b'b'], version_label='stable'))
  assert r.model_spec.version.value == 1
  r = target.predict.Predict(_predict_request(X, [b'a', b'b'], version=1))
  np.testing.assert_allclose(tf.make_ndarray(r.outputs['y']), toy_expected(X, 1))
  req = _predict_request(X, [b'a', b'b'])
  req.output_filter.append('y')
  assert set(target.predict.Predict(req).outputs) == {'y'}


def test_predict_other_signature_with_int64(target):
  req = predict_pb2.PredictRequest()
  req.model_spec.name, req.model_spec.signature_name = TOY, 'ints'
  req.inputs['n'].CopyFrom(tf.make_tensor_proto(np.array([3, -4], np.int64)))
  r = target.predict.Predict(req)
  assert tf.make_ndarray(r.outputs['doubled']).tolist() == [6, -8]


def test_classify_regress_and_multi_inference(target):
  xs = [[0.5, 0.25], [-2.0, 1.0]]
  req = classification_pb2.ClassificationRequest()
  req.model_spec.name, req.model_spec.signature_name = TOY, 'classification'
  for x in xs:
    req.input.example_list.examples.add().ParseFromString(example(x))
  r = target.predict.Classify(req)
  p = 1 / (1 + np.exp(-toy_expected(xs, 2)))
  assert [c.label for c in r.result.classifications[0].classes] == ['no', 'yes']
  np.testing.assert_allclose([c.classes[1].score for c in r.result.classifications], p,
                             rtol=1e-5)
  rreq = regression_pb2.RegressionRequest()
  rreq.model_spec.name, rreq.model_spec.signature_name = TOY, 'regression'
  rreq.input.CopyFrom(req.input)
  values = [x.value for x in target.predict.Regress(rreq).result.regressions]
  np.testing.assert_allclose(values, toy_expected(xs, 2), rtol=1e-6)
  # The context's features reach every example.
  ctx = regression_pb2.RegressionRequest()
  ctx.CopyFrom(rreq)
  ctx.input.example_list_with_context.context.ParseFromString(example([10.0, 10.0]))
  ctx.input.example_list_with_context.examples.add()
  assert [x.value for x in target.predict.Regress(ctx).result.regressions] == [22.0]

  mreq = inference_pb2.MultiInferenceRequest()
  mreq.input.CopyFrom(req.input)
  t = mreq.tasks.add(method_name='tensorflow/serving/classify')
  t.model_spec.name, t.model_spec.signature_name = TOY, 'classification'
  results = target.predict.MultiInference(mreq).results
  assert results[0].classification_result.classifications[1].classes[0].label == 'no'
  assert results[0].model_spec.version.value == 2
  # TF2 SavedModels give every signature its own input placeholder; TF Serving runs tasks
  # only over one shared input tensor, and says so.
  t = mreq.tasks.add(method_name='tensorflow/serving/regress')
  t.model_spec.name, t.model_spec.signature_name = TOY, 'regression'
  code, details = _error(target.predict.MultiInference, mreq)
  assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                             'Input tensor must be the same for all Signatures.')


def test_metadata_and_status(target):
  req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
  req.model_spec.name = TOY
  r = target.predict.GetModelMetadata(req)
  sig_map = get_model_metadata_pb2.SignatureDefMap()
  r.metadata['signature_def'].Unpack(sig_map)
  sigs = sig_map.signature_def
  assert {'serving_default', 'classification', 'regression', 'ints'} <= set(sigs)
  assert sigs['classification'].method_name == 'tensorflow/serving/classify'
  assert set(sigs['serving_default'].inputs) == {'x', 'key'}
  status = target.models.GetModelStatus(
      get_model_status_pb2.GetModelStatusRequest(model_spec={'name': TOY}))
  states = {s.version: s.state for s in status.model_version_status}
  assert states == {1: 30, 2: 30}   # AVAILABLE


# ------------------------------------------------------------------ gRPC: errors
@pytest.mark.parametrize('case,code,message', [
    ('unknown_model', grpc.StatusCode.NOT_FOUND, 'Servable not found for request: Latest(nope)'),
    ('unknown_version', grpc.StatusCode.NOT_FOUND,
     'Servable not found for request: Specific(toy, 7)'),
    ('unknown_label', grpc.StatusCode.INVALID_ARGUMENT,
     'Unrecognized servable version label: nope'),
    ('unknown_signature', grpc.StatusCode.FAILED_PRECONDITION,
     'Serving signature key "nope" not found.'),
    ('bad_alias', grpc.StatusCode.INVALID_ARGUMENT,
     'input tensor alias not found in signature: z. Inputs expected to be in the set {key,x}.'),
    ('missing_input', grpc.StatusCode.INVALID_ARGUMENT,
     'input size does not match signature: 1!=2'),
    ('bad_output_filter', grpc.StatusCode.INVALID_ARGUMENT,
     'output tensor alias not found in signature: nope'),
    ('bad_dtype', grpc.StatusCode.INVALID_ARGUMENT, ''),
    ('bad_shape', grpc.StatusCode.INVALID_ARGUMENT, ''),
])
def test_predict_errors(target, case, code, message):
  req = _predict_request(X, [b'a', b'b'])
  if case == 'unknown_model':
    req.model_spec.name = 'nope'
  elif case == 'unknown_version':
    req.model_spec.version.value = 7
  elif case == 'unknown_label':
    req.model_spec.version_label = 'nope'
  elif case == 'unknown_signature':
    req.model_spec.signature_name = 'nope'
  elif case == 'bad_alias':
    req.inputs['z'].CopyFrom(req.inputs.pop('x'))
  elif case == 'missing_input':
    del req.inputs['key']
  elif case == 'bad_output_filter':
    req.output_filter.append('nope')
  elif case == 'bad_dtype':
    req.inputs['x'].CopyFrom(tf.make_tensor_proto(np.asarray(X, np.float64)))
  elif case == 'bad_shape':
    req.inputs['x'].CopyFrom(tf.make_tensor_proto(np.ones([2, 3], np.float32)))
  got_code, details = _error(target.predict.Predict, req)
  assert got_code == code
  assert message in details


def test_classify_errors(target):
  req = classification_pb2.ClassificationRequest()
  req.model_spec.name = TOY   # serving_default is a predict signature
  req.input.example_list.examples.add().ParseFromString(example([1, 2]))
  code, details = _error(target.predict.Classify, req)
  assert code == grpc.StatusCode.INVALID_ARGUMENT
  assert details == ('Expected classification signature method_name to be '
                     'tensorflow/serving/classify. Was: tensorflow/serving/predict')
  req.model_spec.signature_name = 'classification'
  req.input.Clear()
  code, details = _error(target.predict.Classify, req)
  assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, 'Input is empty.')
  rreq = regression_pb2.RegressionRequest()
  rreq.model_spec.name, rreq.model_spec.signature_name = TOY, 'nope'
  rreq.input.example_list.examples.add()
  code, details = _error(target.predict.Regress, rreq)
  assert code == grpc.StatusCode.INVALID_ARGUMENT
  assert details == 'No signature was found with the name: nope'


def test_metadata_and_status_errors(target):
  req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['nope'])
  req.model_spec.name = TOY
  code, details = _error(target.predict.GetModelMetadata, req)
  assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT,
                             'Metadata field nope is not supported')
  status = get_model_status_pb2.GetModelStatusRequest(model_spec={'name': TOY})
  status.model_spec.version.value = 9
  code, details = _error(target.models.GetModelStatus, status)
  assert (code, details) == (grpc.StatusCode.NOT_FOUND, 'Could not find version 9 of model toy')
  code, details = _error(target.models.GetModelStatus, get_model_status_pb2.GetModelStatusRequest(
      model_spec={'name': 'nope'}))
  assert (code, details) == (grpc.StatusCode.NOT_FOUND,
                             'Could not find any versions of model nope')


def test_server_survives_every_error(target):
  r = target.predict.Predict(_predict_request(X, [b'a', b'b']))
  assert r.model_spec.version.value == 2


# ------------------------------------------------------------------ REST
def test_rest_status_and_metadata(target):
  code, doc = target.http('GET', '/v1/models/toy')
  assert code == 200
  assert {(s['version'], s['state']) for s in doc['model_version_status']} == {
      ('1', 'AVAILABLE'), ('2', 'AVAILABLE')}
  assert doc['model_version_status'][0]['status'] == {'error_code': 'OK', 'error_message': ''}
  code, doc = target.http('GET', '/v1/models/toy/versions/1/metadata')
  assert code == 200 and doc['model_spec']['version'] == '1'
  sig = doc['metadata']['signature_def']['signature_def']['serving_default']
  assert sig['inputs']['x']['dtype'] == 'DT_FLOAT'
  code, doc = target.http('GET', '/v1/models/toy/labels/stable')
  assert code == 200 and [s['version'] for s in doc['model_version_status']] == ['1']


def test_rest_predict_row_and_columnar(target):
  b = base64.b64encode(b'\xff\x00').decode()
  code, doc = target.http('POST', '/v1/models/toy:predict', {
      'instances': [{'x': X[0], 'key': 'a'}, {'x': X[1], 'key': {'b64': b}}]})
  assert code == 200
  preds = doc['predictions']
  assert [p['y'] for p in preds] == toy_expected(X, 2).tolist()
  assert preds[1]['key_bytes'] == {'b64': b} and preds[0]['version'] == 2
  code, doc = target.http('POST', '/v1/models/toy/versions/1:predict', {
      'signature_name': 'serving_default', 'inputs': {'x': X, 'key': ['a', 'b']}})
  assert code == 200 and doc['outputs']['y'] == toy_expected(X, 1).tolist()
  code, doc = target.http('POST', '/v1/models/toy:predict', {
      'signature_name': 'ints', 'instances': [1, 2, 3]})
  assert (code, doc) == (200, {'predictions': [2, 4, 6]})
  code, doc = target.http('POST', '/v1/models/toy/labels/stable:predict', {
      'signature_name': 'ints', 'inputs': [5]})
  assert (code, doc) == (200, {'outputs': [10]})


def test_rest_classify_and_regress(target):
  body = {'signature_name': 'regression', 'examples': [{'x': [1.0, 2.0]}, {'x': [0.5, 0.5]}]}
  code, doc = target.http('POST', '/v1/models/toy:regress', body)
  assert (code, doc) == (200, {'results': [5.0, 3.0]})
  body['signature_name'] = 'classification'
  code, doc = target.http('POST', '/v1/models/toy/versions/1:classify', body)
  assert code == 200 and doc['results'][0][1][0] == 'yes'
  assert doc['results'][0][1][1] == pytest.approx(1 / (1 + np.exp(-4.0)), rel=1e-6)


@pytest.mark.parametrize('method,path,body,status,message', [
    ('POST', '/v1/models/nope:predict', {'instances': [1]}, 404,
     'Servable not found for request: Latest(nope)'),
    ('POST', '/v1/models/toy/versions/7:predict', {'instances': [1]}, 404,
     'Servable not found for request: Specific(toy, 7)'),
    ('POST', '/v1/models/toy/labels/nope:predict', {'instances': [1]}, 400,
     'Unrecognized servable version label: nope'),
    ('POST', '/v1/models/toy:predict', {'signature_name': 'nope', 'instances': [1]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ('POST', '/v1/models/toy:predict', b'{"instances": [1', 400, 'JSON Parse error'),
    ('POST', '/v1/models/toy:predict', b'', 400, 'JSON Parse error: The document is empty'),
    ('POST', '/v1/models/toy:predict', {'inputs': [1], 'instances': [1]}, 400,
     "expecting only one of 'inputs' or 'instances' keys to exist"),
    ('POST', '/v1/models/toy:predict', {'instances': []}, 400, "No values in 'instances' array"),
    ('POST', '/v1/models/toy:predict', {'signature_name': 5, 'instances': [1]}, 400,
     "'signature_name' key must be a string value."),
    ('POST', '/v1/models/toy:predict', {'nothing': 1}, 400, "Missing 'inputs' or 'instances' key"),
    ('POST', '/v1/models/toy:predict', {'instances': [1, 2]}, 400,
     'instances is a plain list, but expecting list of objects'),
    ('POST', '/v1/models/toy:predict', {'instances': [{'x': [1, 2], 'key': 'a'},
                                                      {'x': [1, 2, 3], 'key': 'b'}]}, 400,
     'Expecting tensor size: 2 but got: 3'),
    ('POST', '/v1/models/toy:predict', {'instances': [{'x': ['a', 'b'], 'key': 'k'}]}, 400,
     'is not of expected type: float'),
    ('POST', '/v1/models/toy:predict', {'instances': [{'x': [1, 2]}]}, 400,
     'keys must be equal to: key,x'),
    ('POST', '/v1/models/toy:predict', {'signature_name': 'ints', 'instances': [1.5]}, 400,
     'is not of expected type: int64'),
    ('POST', '/v1/models/toy:predict', {'inputs': {'x': [[1, 2]]}}, 400,
     "Missing named input: key in 'inputs' object."),
    ('POST', '/v1/models/toy:regress', {'signature_name': 'regression'}, 400,
     "key 'examples' is expected and was not found"),
    ('POST', '/v1/models/toy:regress', {'signature_name': 'regression', 'examples': [3]}, 400,
     'Example must be JSON object but got JSON Number'),
    ('POST', '/v1/models/toy:regress', {'signature_name': 'regression',
                                        'examples': [{'x': [1, 'a']}]}, 400,
     'Unexpected element type in feature: x expecting type: int64'),
    ('POST', '/v1/models/toy:regress', {'signature_name': 'regression',
                                        'examples': [{'x': None}]}, 400,
     'Feature: x has element with unexpected JSON type: Null'),
    ('POST', '/v1/models/toy:frobnicate', {}, 400,
     'Malformed request: POST /v1/models/toy:frobnicate'),
    ('GET', '/v1/models/toy/versions/9', None, 404, 'Could not find version 9 of model toy'),
])
def test_rest_errors(target, method, path, body, status, message):
  code, doc = target.http(method, path, body)
  assert code == status, doc
  assert message in doc['error']
