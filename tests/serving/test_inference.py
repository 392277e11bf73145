"""serving/inference.py on one loaded servable, no network: Predict with its output filter
and input checks, Classify and Regress on serialized examples, and the signature map of
GetModelMetadata; the values are the toy model's exact functions."""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     inference_pb2, regression_pb2)

from serving import errors, inference
from serving.servable import Servable
from bench.fixtures import TOY, example, toy_expected
from helpers import TOY_X, toy_request


@pytest.fixture(scope='module')
def toy(toy_versions):
  s = Servable(TOY, 2, toy_versions[2])
  s.load()
  yield s
  s.close()


def test_predict_fetches_the_filtered_outputs_with_the_models_values(toy):
  r = inference.predict(toy, toy_request())
  assert sorted(r.outputs) == ['key_bytes', 'version', 'y']
  np.testing.assert_allclose(tf.make_ndarray(r.outputs['y']), toy_expected(TOY_X, 2))
  assert (r.model_spec.name, r.model_spec.version.value, r.model_spec.signature_name) == (
      TOY, 2, 'serving_default')
  req = toy_request()
  req.output_filter.append('version')
  assert list(inference.predict(toy, req).outputs) == ['version']


@pytest.mark.parametrize('change, message', [
    (lambda r: r.output_filter.append('nope'), 'output tensor alias not found in signature: '
                                               'nope Outputs expected to be in the set '
                                               '{key_bytes,version,y}.'),
    (lambda r: r.output_filter.extend(['y', 'y']), 'duplicate output tensor alias: y'),
    (lambda r: r.inputs.pop('key'), 'input size does not match signature: 1!=2 '
                                    'len({x}) != len({key,x}). Sent extra: {}. Missing but '
                                    'required: {key}.'),
    (lambda r: r.inputs['x'].CopyFrom(tf.make_tensor_proto(np.ones([2, 2], np.float64))),
     'Expects arg[x] to be float but float64 is provided'),
    (lambda r: r.inputs['x'].CopyFrom(tf.make_tensor_proto(np.ones([2, 3], np.float32))),
     'input tensor alias x: shape [2,3] is not compatible with the signature shape [?,2]'),
])
def test_predict_refuses_what_tf_serving_refuses(toy, change, message):
  req = toy_request()
  change(req)
  with pytest.raises(errors.ServingError) as e:
    inference.predict(toy, req)
  assert e.value.code == errors.Code.INVALID_ARGUMENT and e.value.message == message
  req = toy_request()
  req.model_spec.signature_name = 'nope'
  with pytest.raises(errors.ServingError, match='Serving signature key "nope" not found.'):
    inference.predict(toy, req)


def _examples(rows):
  inp = inference_pb2.MultiInferenceRequest().input
  for x in rows:
    inp.example_list.examples.add().ParseFromString(example(x))
  return inp


def test_classify_and_regress_on_examples(toy):
  # MultiInference over the same signatures: tests/serving/test_conformance.py.
  rows = [[0.5, -3.0], [1.0, 1.0]]
  z = toy_expected(rows, 2)
  c = classification_pb2.ClassificationRequest()
  c.model_spec.name, c.model_spec.signature_name = TOY, 'classification'
  c.input.CopyFrom(_examples(rows))
  result = inference.classify(toy, c).result.classifications
  p = 1 / (1 + np.exp(-z))
  assert [[cl.label for cl in r.classes] for r in result] == [['no', 'yes']] * 2
  np.testing.assert_allclose([r.classes[1].score for r in result], p, rtol=1e-6)
  r = regression_pb2.RegressionRequest()
  r.model_spec.name, r.model_spec.signature_name = TOY, 'regression'
  r.input.CopyFrom(_examples(rows))
  np.testing.assert_allclose([v.value for v in inference.regress(toy, r).result.regressions],
                             z, rtol=1e-6)
  empty = regression_pb2.RegressionRequest()
  empty.model_spec.name, empty.model_spec.signature_name = TOY, 'regression'
  with pytest.raises(errors.ServingError, match='Input is empty.'):
    inference.regress(toy, empty)


def test_model_metadata_is_the_signature_map(toy):
  req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=['signature_def'])
  req.model_spec.name = TOY
  r = inference.model_metadata(toy, req)
  sigs = get_model_metadata_pb2.SignatureDefMap()
  r.metadata['signature_def'].Unpack(sigs)
  assert set(sigs.signature_def) == set(toy.signatures)
  assert sigs.signature_def['regression'].method_name == inference.REGRESS_METHOD
  with pytest.raises(errors.ServingError, match='Metadata field nope is not supported'):
    inference.model_metadata(toy, get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=['nope']))
