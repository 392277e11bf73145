"""One Python client for TF Serving's gRPC and REST APIs, for the embedded server and the
real ``tensorflow_model_server`` alike.

    client = PredictionClient('localhost:8500', model='ctr')               # gRPC
    client = PredictionClient('localhost:8501', model='ctr', protocol='rest')
    client.predict({'gender': 1, 'hour': 13, ...})        # one row of raw features
    client.predict([row, row, ...])                        # many rows
    client.predict([serialized_example, ...])              # serialized tf.Examples

Raw rows become ``tf.Example``s typed by the model's ``predict_raw`` signature (read once
from ``GetModelMetadata``), so values read from CSV or JSON (``"13"``, ``13``, ``13.0``)
land in the feature kind the model parses. ``predict`` returns ``{output: np.ndarray}``
with the batch on axis 0. Errors raise :class:`serving.errors.ServingError` with TF
Serving's code and message, whichever protocol was used.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Union

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow.core.example import example_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_pb2, model_service_pb2_grpc,
                                     predict_pb2, prediction_service_pb2_grpc,
                                     regression_pb2)

from serving import tensors
from serving import signatures as sig
from serving.errors import HTTP_STATUS, Code, ServingError, invalid_argument

Row = Mapping[str, object]
MAX_MESSAGE_BYTES = 2 ** 31 - 1


def _missing(v) -> bool:
  return v is None or (isinstance(v, float) and np.isnan(v)) or v == ''


def make_example(row: Row, types: Optional[Mapping[str, int]] = None) -> bytes:
  """A serialized ``tf.Example`` of ``row``; ``types`` ({feature: DataType}) picks each
  feature's kind, else Python types do (str -> bytes, int -> int64, float -> float).
  Missing values (None, NaN, '') are left out; unknown features are kept."""
  ex = example_pb2.Example()
  for name, value in row.items():
    values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    values = [v for v in values if not _missing(v)]
    if not values:
      continue
    feature = ex.features.feature[name]
    kind = types.get(name) if types else None
    try:
      if kind == types_pb2.DT_STRING or (kind is None and all(
          isinstance(v, (str, bytes)) for v in values)):
        feature.bytes_list.value.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in values)
      elif kind in (types_pb2.DT_INT64, types_pb2.DT_INT32) or (kind is None and all(
          isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)):
        feature.int64_list.value.extend(int(float(v)) if isinstance(v, str) else int(v)
                                        for v in values)
      else:
        feature.float_list.value.extend(float(v) for v in values)
    except (TypeError, ValueError) as e:
      raise invalid_argument(f'feature {name}: value {value!r} does not fit its type '
                             f'({tensors.dtype_name(kind) if kind else "inferred"}): {e}') from None
  return ex.SerializeToString()


def decode_predictions(doc: dict, outputs: Optional[List[str]] = None) -> Dict[str, np.ndarray]:
  """A REST ``predictions``/``outputs`` response -> ``{name: array}``."""
  if 'error' in doc:
    raise invalid_argument(doc['error'])
  if 'predictions' in doc:
    rows = doc['predictions']
    if rows and isinstance(rows[0], dict):
      return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    return {(outputs or ['output'])[0]: np.asarray(rows)}
  out = doc['outputs']
  if isinstance(out, dict):
    return {k: np.asarray(v) for k, v in out.items()}
  return {(outputs or ['output'])[0]: np.asarray(out)}


class PredictionClient:
  """Predict / classify / regress / metadata / status over gRPC or REST."""

  def __init__(self, target: str, model: str, protocol: str = 'grpc',
               version: Optional[int] = None, label: Optional[str] = None,
               signature: str = sig.DEFAULT, timeout: float = 30.0):
    if protocol not in ('grpc', 'rest'):
      raise ValueError(f'protocol must be grpc or rest, got {protocol!r}')
    if version is not None and label is not None:
      raise ValueError('give a version or a label, not both')
    self.target, self.model, self.protocol = target, model, protocol
    self.version, self.label, self.signature, self.timeout = version, label, signature, timeout
    self._types: Optional[Dict[str, int]] = None
    self._signatures = None
    if protocol == 'grpc':
      self._channel = grpc.insecure_channel(target, options=[
          ('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
          ('grpc.max_send_message_length', MAX_MESSAGE_BYTES)])
      self._predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
      self._model_stub = model_service_pb2_grpc.ModelServiceStub(self._channel)
    else:
      base = target if target.startswith('http') else f'http://{target}'
      self._base = base.rstrip('/')

  def close(self) -> None:
    if self.protocol == 'grpc':
      self._channel.close()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  # ------------------------------------------------------------------ plumbing
  def model_spec(self, signature: Optional[str] = None) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=self.model)
    if self.version is not None:
      spec.version.value = int(self.version)
    if self.label is not None:
      spec.version_label = self.label
    if signature:
      spec.signature_name = signature
    return spec

  def _path(self) -> str:
    path = f'/v1/models/{self.model}'
    if self.version is not None:
      path += f'/versions/{int(self.version)}'
    elif self.label is not None:
      path += f'/labels/{self.label}'
    return path

  def _grpc(self, method, request):
    try:
      return method(request, timeout=self.timeout)
    except grpc.RpcError as e:
      raise ServingError(e.code(), e.details()) from None

  def _http(self, method: str, path: str, body: Optional[dict] = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(self._base + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(request, timeout=self.timeout) as r:
        return json.loads(r.read())
    except urllib.error.HTTPError as e:
      text = e.read()
      try:
        message = json.loads(text).get('error', text.decode(errors='replace'))
      except ValueError:
        message = text.decode(errors='replace')
      raise ServingError(_code_from_http(e.code), message) from None

  # ------------------------------------------------------------------ metadata
  def signatures(self) -> Dict[str, object]:
    """``{name: SignatureDef}`` from GetModelMetadata (cached)."""
    if self._signatures is None:
      if self.protocol == 'grpc':
        response = self._grpc(self._predict_stub.GetModelMetadata,
                              get_model_metadata_pb2.GetModelMetadataRequest(
                                  model_spec=self.model_spec(),
                                  metadata_field=['signature_def']))
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata['signature_def'].Unpack(sig_map)
      else:
        doc = self._http('GET', self._path() + '/metadata')
        sig_map = json_format.ParseDict(doc['metadata']['signature_def'],
                                        get_model_metadata_pb2.SignatureDefMap(),
                                        ignore_unknown_fields=True)
      self._signatures = dict(sig_map.signature_def)
    return self._signatures

  def feature_types(self) -> Dict[str, int]:
    """Raw feature name -> DataType, from the ``predict_raw`` signature ({} without one)."""
    if self._types is None:
      raw = self.signatures().get(sig.PREDICT_RAW)
      self._types = {k: v.dtype for k, v in raw.inputs.items()} if raw else {}
    return self._types

  def status(self) -> get_model_status_pb2.GetModelStatusResponse:
    if self.protocol == 'grpc':
      return self._grpc(self._model_stub.GetModelStatus,
                        get_model_status_pb2.GetModelStatusRequest(model_spec=self.model_spec()))
    return json_format.ParseDict(self._http('GET', self._path()),
                                 get_model_status_pb2.GetModelStatusResponse())

  # ------------------------------------------------------------------ inference
  def examples(self, data: Union[Row, Sequence[Row], Sequence[bytes]]) -> List[bytes]:
    """Serialized tf.Examples for a row, a list of rows, or serialized examples."""
    if isinstance(data, Mapping):
      data = [data]
    data = list(data)
    if not data:
      raise invalid_argument('nothing to predict: no rows')
    if all(isinstance(d, bytes) for d in data):
      return data
    if all(isinstance(d, example_pb2.Example) for d in data):
      return [d.SerializeToString() for d in data]
    if not all(isinstance(d, Mapping) for d in data):
      raise invalid_argument('predict takes a dict of features, a list of dicts, or '
                             'serialized tf.Examples')
    types = self.feature_types()
    return [make_example(row, types) for row in data]

  def _examples_input_name(self) -> str:
    signature = self.signatures().get(self.signature)
    if signature is None:
      raise ServingError(Code.FAILED_PRECONDITION,
                         f'Serving signature key "{self.signature}" not found.')
    strings = [k for k, v in signature.inputs.items() if v.dtype == types_pb2.DT_STRING]
    if len(signature.inputs) != 1 or not strings:
      raise invalid_argument(f'signature {self.signature} does not take serialized examples; '
                             'use predict_tensors')
    return strings[0]

  def predict(self, data, output_filter: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    examples = self.examples(data)
    name = self._examples_input_name()
    if self.protocol == 'grpc':
      return self.predict_tensors({name: np.array(examples, dtype=object)}, output_filter)
    doc = self._http('POST', self._path() + ':predict', {
        'signature_name': self.signature,
        'instances': [{'b64': base64.b64encode(e).decode()} for e in examples]})
    out = decode_predictions(doc, sorted(self.signatures()[self.signature].outputs))
    wanted = list(output_filter)
    return {k: v for k, v in out.items() if not wanted or k in wanted}

  def predict_tensors(self, inputs: Mapping[str, np.ndarray],
                      output_filter: Iterable[str] = ()) -> Dict[str, np.ndarray]:
    """Predict with named input tensors (any signature); gRPC sends TensorProtos, REST the
    columnar ``inputs`` format."""
    if self.protocol == 'grpc':
      request = predict_pb2.PredictRequest(model_spec=self.model_spec(self.signature),
                                           output_filter=list(output_filter))
      for k, v in inputs.items():
        tensors.from_ndarray(np.asarray(v) if not isinstance(v, list) else
                             np.array(v, dtype=object if isinstance(v[0], bytes) else None),
                             out=request.inputs[k])
      response = self._grpc(self._predict_stub.Predict, request)
      return {k: tensors.to_ndarray(v, k) for k, v in response.outputs.items()}
    columns = {}
    for k, v in inputs.items():
      arr = np.asarray(v)
      columns[k] = ([{'b64': base64.b64encode(x).decode()} for x in arr.ravel()]
                    if arr.dtype == object else arr.tolist())
    doc = self._http('POST', self._path() + ':predict',
                     {'signature_name': self.signature, 'inputs': columns})
    return decode_predictions(doc, sorted(self.signatures()[self.signature].outputs))

  def classify(self, data, signature: str = 'classification') -> List[Dict[str, float]]:
    """``[{label: score}]`` per example from a classify signature."""
    examples = [example_pb2.Example.FromString(e) for e in self.examples(data)]
    if self.protocol == 'grpc':
      request = classification_pb2.ClassificationRequest(model_spec=self.model_spec(signature))
      request.input.example_list.examples.extend(examples)
      result = self._grpc(self._predict_stub.Classify, request).result
      return [{c.label: c.score for c in cl.classes} for cl in result.classifications]
    doc = self._http('POST', self._path() + ':classify', {
        'signature_name': signature, 'examples': [_example_json(e) for e in examples]})
    return [{label: score for label, score in row} for row in doc['results']]

  def regress(self, data, signature: str = 'regression') -> np.ndarray:
    examples = [example_pb2.Example.FromString(e) for e in self.examples(data)]
    if self.protocol == 'grpc':
      request = regression_pb2.RegressionRequest(model_spec=self.model_spec(signature))
      request.input.example_list.examples.extend(examples)
      result = self._grpc(self._predict_stub.Regress, request).result
      return np.array([r.value for r in result.regressions], dtype=np.float32)
    doc = self._http('POST', self._path() + ':regress', {
        'signature_name': signature, 'examples': [_example_json(e) for e in examples]})
    return np.asarray(doc['results'], dtype=np.float32)


def _example_json(example: example_pb2.Example) -> dict:
  """A tf.Example in the REST classify/regress form (kinds survive: floats get a '.0')."""
  out = {}
  for name, f in example.features.feature.items():
    kind = f.WhichOneof('kind')
    if kind == 'bytes_list':
      out[name] = [{'b64': base64.b64encode(v).decode()} for v in f.bytes_list.value]
    elif kind == 'int64_list':
      out[name] = [int(v) for v in f.int64_list.value]
    elif kind == 'float_list':
      out[name] = [float(v) for v in f.float_list.value]
  return out


def _code_from_http(status: int) -> Code:
  for code, http in sorted(HTTP_STATUS.items(),
                           key=lambda kv: kv[0].value[0]):
    if http == status:
      return code
  return Code.UNKNOWN
