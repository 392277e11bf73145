"""TF Serving's REST JSON responses, encoded (``tensorflow_serving/util/json_tensor.cc``).

``{"predictions": [...]}`` for row requests, ``{"outputs": ...}`` for columnar ones,
``{"results": [...]}`` for classify/regress, ``{"error": message}`` on failure. Floats are
written as TF Serving writes them: shortest ``%g`` that round-trips, ``.0`` on whole
numbers, ``NaN``/``Infinity`` for non-finite values. A string output whose name ends in
``_bytes`` is written as ``{"b64": ...}`` (as is one that is not UTF-8, where TF Serving
would write invalid JSON). The requests are decoded by ``serving/json_request.py``.
"""

from __future__ import annotations

import base64
import json
import math
from typing import List, Tuple

import numpy as np
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from serving import tensors
from serving.errors import invalid_argument
from serving.json_request import COLUMNAR


def _decimal(v: float, double: bool) -> str:
  if math.isnan(v):
    return 'NaN'
  if math.isinf(v):
    return '-Infinity' if v < 0 else 'Infinity'
  s = '%.6g' % v
  if (float(s) if double else np.float32(float(s))) != v:
    s = '%.17g' % v if double else '%.9g' % v
  if '.' not in s and 'e' not in s:
    s += '.0'
  return s


def _scalar(v, dtype: int, as_bytes: bool) -> str:
  if dtype == types_pb2.DT_STRING:
    if not as_bytes:
      try:
        return json.dumps(v.decode('utf-8') if isinstance(v, bytes) else str(v))
      except UnicodeDecodeError:
        pass
    return '{"b64": "' + base64.b64encode(v).decode() + '"}'
  if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_HALF):
    return _decimal(float(np.float32(v)), double=False)
  if dtype == types_pb2.DT_DOUBLE:
    return _decimal(float(v), double=True)
  if dtype == types_pb2.DT_BOOL:
    return 'true' if v else 'false'
  return str(int(v))


def _write(array, dtype: int, as_bytes: bool) -> str:
  if not isinstance(array, np.ndarray):   # an element of an object (string) array
    return _scalar(array, dtype, as_bytes)
  if array.ndim == 0:
    return _scalar(array.item() if array.dtype != object else array.reshape(-1)[0], dtype,
                   as_bytes)
  if array.ndim == 1 and dtype in (types_pb2.DT_FLOAT, types_pb2.DT_HALF):
    return '[' + ', '.join(_decimal(float(x), False) for x in array.astype(np.float32)) + ']'
  return '[' + ', '.join(_write(a, dtype, as_bytes) for a in array) + ']'


def _outputs(response) -> List[Tuple[str, np.ndarray, int]]:
  return [(k, tensors.to_ndarray(t, k), t.dtype) for k, t in sorted(response.outputs.items())]


def predict_response(response: predict_pb2.PredictResponse, fmt: str) -> str:
  outputs = _outputs(response)
  if not outputs:
    raise invalid_argument('Cannot convert empty tensor map to JSON')
  as_bytes = {k: dtype == types_pb2.DT_STRING and k.endswith('_bytes')
              for k, _, dtype in outputs}
  if fmt == COLUMNAR:
    if len(outputs) == 1:
      k, a, d = outputs[0]
      return '{"outputs": ' + _write(a, d, as_bytes[k]) + '}'
    parts = [json.dumps(k) + ': ' + _write(a, d, as_bytes[k]) for k, a, d in outputs]
    return '{"outputs": {' + ', '.join(parts) + '}}'
  batch = None
  for k, a, _ in outputs:
    if a.ndim == 0:
      raise invalid_argument(f'Tensor name: {k} has no shape information ')
    if batch is not None and a.shape[0] != batch:
      raise invalid_argument(f'Tensor name: {k} has inconsistent batch size: {a.shape[0]} '
                             f'expecting: {batch}')
    batch = a.shape[0]
  rows = []
  for i in range(batch):
    if len(outputs) == 1:
      k, a, d = outputs[0]
      rows.append(_write(a[i], d, as_bytes[k]))
    else:
      rows.append('{' + ', '.join(json.dumps(k) + ': ' + _write(a[i], d, as_bytes[k])
                                  for k, a, d in outputs) + '}')
  return '{"predictions": [' + ', '.join(rows) + ']}'


def classification_response(response) -> str:
  result = response.result
  if not result.classifications:
    raise invalid_argument('Cannot convert empty ClassificationResults to JSON')
  rows = []
  for c in result.classifications:
    rows.append('[' + ', '.join(f'[{json.dumps(cl.label)}, {_decimal(cl.score, False)}]'
                                for cl in c.classes) + ']')
  return '{"results": [' + ', '.join(rows) + ']}'


def regression_response(response) -> str:
  result = response.result
  if not result.regressions:
    raise invalid_argument('Cannot convert empty RegressionResults to JSON')
  return '{"results": [' + ', '.join(_decimal(r.value, False)
                                     for r in result.regressions) + ']}'


def error_body(message: str) -> str:
  return json.dumps({'error': message})


def row_value(value):
  """One example's output as a JSON value: a number or string for a single value, else a
  (nested) list; bytes are decoded as UTF-8 (invalid bytes replaced)."""
  v = np.asarray(value)
  if v.dtype == object:
    v = np.array([b.decode(errors='replace') if isinstance(b, bytes) else b
                  for b in v.ravel()], dtype=object).reshape(v.shape)
  return v.reshape(-1).tolist()[0] if v.size == 1 else v.tolist()
