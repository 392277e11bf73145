"""serving/json_response.py: responses written as TF Serving writes them (json_tensor.cc):
the row and columnar formats, its float text, b64 for bytes, classify and regress results,
and the errors for what cannot be written."""
import base64
import json

import numpy as np
import pytest
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from serving import errors, json_response, tensors
from serving.json_request import COLUMNAR, ROW


def _response(**outputs):
  r = predict_pb2.PredictResponse()
  for name, value in outputs.items():
    tensors.from_ndarray(value, out=r.outputs[name])
  return r


def test_floats_are_written_as_tf_serving_writes_them():
  r = _response(p=np.array([1.0, 0.1, 1e-7, 123456789.0, np.nan, -np.inf], np.float32))
  # Shortest text that reads back as the same float32; '.0' on whole numbers.
  assert json_response.predict_response(r, ROW) == (
      '{"predictions": [1.0, 0.1, 1e-07, 123456792.0, NaN, -Infinity]}')
  # Doubles read back exactly.
  values = np.array([0.1, 1 / 3, 2.0 ** -40, 1e300])
  text = json_response.predict_response(_response(p=values), ROW)
  assert text.startswith('{"predictions": [0.1, ')
  assert json.loads(text)['predictions'] == values.tolist()


def test_row_and_columnar_formats():
  r = _response(p=np.array([[0.25], [0.5]], np.float32), id=np.array([3, 4], np.int64))
  row = json.loads(json_response.predict_response(r, ROW))
  assert row == {'predictions': [{'id': 3, 'p': [0.25]}, {'id': 4, 'p': [0.5]}]}
  col = json.loads(json_response.predict_response(r, COLUMNAR))
  assert col == {'outputs': {'id': [3, 4], 'p': [[0.25], [0.5]]}}
  one = _response(p=np.array([0.25, 0.5], np.float32))
  assert json.loads(json_response.predict_response(one, COLUMNAR)) == {'outputs': [0.25, 0.5]}


def test_bytes_outputs_are_b64_and_text_is_text():
  r = _response(key_bytes=np.array([b'\x00\xff'], dtype=object),
                label=np.array([b'yes'], dtype=object),
                raw=np.array([b'\xff\xfe'], dtype=object))
  row = json.loads(json_response.predict_response(r, ROW))['predictions'][0]
  assert row['key_bytes'] == {'b64': base64.b64encode(b'\x00\xff').decode()}
  assert row['label'] == 'yes'
  assert row['raw'] == {'b64': base64.b64encode(b'\xff\xfe').decode()}    # not UTF-8


def test_what_cannot_be_written_is_an_invalid_argument():
  with pytest.raises(errors.ServingError, match='Cannot convert empty tensor map to JSON'):
    json_response.predict_response(predict_pb2.PredictResponse(), ROW)
  uneven = _response(a=np.zeros(2, np.float32), b=np.zeros(3, np.float32))
  with pytest.raises(errors.ServingError,
                     match='Tensor name: b has inconsistent batch size: 3 expecting: 2'):
    json_response.predict_response(uneven, ROW)
  scalar = _response(a=np.float32(1.0))
  with pytest.raises(errors.ServingError, match='Tensor name: a has no shape information'):
    json_response.predict_response(scalar, ROW)
  assert json_response.predict_response(scalar, COLUMNAR) == '{"outputs": 1.0}'


def test_classify_regress_and_error_bodies():
  c = classification_pb2.ClassificationResponse()
  for score in (0.25, 0.75):
    cl = c.result.classifications.add()
    cl.classes.add(label='no', score=1 - score)
    cl.classes.add(label='yes', score=score)
  assert json.loads(json_response.classification_response(c)) == {
      'results': [[['no', 0.75], ['yes', 0.25]], [['no', 0.25], ['yes', 0.75]]]}
  r = regression_pb2.RegressionResponse()
  r.result.regressions.add(value=2.5)
  assert json_response.regression_response(r) == '{"results": [2.5]}'
  with pytest.raises(errors.ServingError, match='empty RegressionResults'):
    json_response.regression_response(regression_pb2.RegressionResponse())
  assert json.loads(json_response.error_body('bad "thing"')) == {'error': 'bad "thing"'}


def test_row_value_for_records():
  assert json_response.row_value(np.array([0.5], np.float32)) == 0.5
  assert json_response.row_value(np.array([[1, 2]])) == [[1, 2]]
  assert json_response.row_value(np.array([b'a\xff'], dtype=object)) == 'a\ufffd'
