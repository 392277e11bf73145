"""TF Serving's REST JSON requests, decoded (``tensorflow_serving/util/json_tensor.cc``).

* predict, row format: ``{"signature_name": s, "instances": [...]}``; each instance is a
  value/list for a single-input signature, or an object with one key per input;
* predict, columnar format: ``{"inputs": value | {name: value}}``;
* classify/regress: ``{"signature_name": s, "context": {...}, "examples": [{...}]}``;
* a string value may be ``{"b64": "<base64>"}``.

Every malformed input is an INVALID_ARGUMENT with TF Serving's message, never a 500. The
responses are written by ``serving/json_response.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Dict, List, Tuple

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from serving import tensors
from serving.errors import Code, ServingError, invalid_argument

# The two predict formats; the response is written in the request's.
ROW, COLUMNAR = 'row', 'columnar'
MAX_DEPTH = 64   # deeper JSON nesting than any tensor rank is refused, not recursed into

_INT_RANGES = {
    types_pb2.DT_INT32: (-2 ** 31, 2 ** 31 - 1), types_pb2.DT_INT16: (-2 ** 31, 2 ** 31 - 1),
    types_pb2.DT_INT8: (-2 ** 31, 2 ** 31 - 1), types_pb2.DT_UINT8: (-2 ** 31, 2 ** 31 - 1),
    types_pb2.DT_INT64: (-2 ** 63, 2 ** 63 - 1), types_pb2.DT_UINT32: (0, 2 ** 32 - 1),
    types_pb2.DT_UINT64: (0, 2 ** 64 - 1),
}
_FLOAT_MAX_INT = {types_pb2.DT_FLOAT: 2 ** 24 - 1, types_pb2.DT_DOUBLE: 2 ** 53 - 1}
_FLOAT_LIMIT = {types_pb2.DT_FLOAT: float(np.finfo(np.float32).max),
                types_pb2.DT_DOUBLE: float(np.finfo(np.float64).max)}


# ----------------------------------------------------------------------- helpers
def _type_name(v) -> str:
  if v is None:
    return 'Null'
  if v is True:
    return 'True'
  if v is False:
    return 'False'
  if isinstance(v, dict):
    return 'Object'
  if isinstance(v, list):
    return 'Array'
  if isinstance(v, str):
    return 'String'
  return 'Number'


def _show(v) -> str:
  text = json.dumps(v, allow_nan=True)
  return text if len(text) <= 200 else text[:200] + '...'


def _is_b64(v) -> bool:
  return isinstance(v, dict) and len(v) == 1 and isinstance(v.get('b64'), str)


def _b64decode(v) -> bytes:
  if not _is_b64(v):
    raise invalid_argument(f'JSON Value: {_show(v)} not formatted correctly for base64 data')
  try:
    return base64.b64decode(v['b64'].encode('ascii'), validate=True)
  except (binascii.Error, ValueError, UnicodeEncodeError):
    raise invalid_argument('Unable to base64 decode') from None


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def parse(body: bytes):
  if not body:
    raise invalid_argument('JSON Parse error: The document is empty')
  try:
    text = body.decode('utf-8')
  except UnicodeDecodeError as e:
    raise invalid_argument(f'JSON Parse error: Invalid encoding in string. at offset: '
                           f'{e.start}') from None
  try:
    doc = json.loads(text)
  except json.JSONDecodeError as e:
    raise invalid_argument(f'JSON Parse error: {e.msg} at offset: {e.pos}') from None
  except RecursionError:
    raise invalid_argument('JSON Parse error: The document is nested too deeply') from None
  if not isinstance(doc, dict):
    raise invalid_argument(f'JSON Value: {_show(doc)} Is not object')
  return doc


def signature_name(doc: dict) -> str:
  if 'signature_name' in doc:
    if not isinstance(doc['signature_name'], str):
      raise invalid_argument(
          f'JSON Value: {_show(doc)} not formatted correctly. '
          "'signature_name' key must be a string value.")
    return doc['signature_name']
  return ''


# ------------------------------------------------------------------- tensors
def _add_value(v, dtype: int, values: list) -> None:
  def type_error():
    return invalid_argument(f'JSON Value: {_show(v)} Type: {_type_name(v)} is not of '
                            f'expected type: {tensors.dtype_name(dtype)[3:].lower()}')
  if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      raise type_error()
    key = dtype if dtype != types_pb2.DT_HALF else types_pb2.DT_FLOAT
    if _is_int(v):
      if abs(v) > _FLOAT_MAX_INT[key]:
        raise invalid_argument(f'Cannot convert JSON value: {v} to '
                               f'{"double" if key == types_pb2.DT_DOUBLE else "float"} '
                               'without loss of precision.')
    elif math.isfinite(v) and abs(v) > _FLOAT_LIMIT[key]:
      raise invalid_argument(f'Cannot convert JSON value: {_show(v)} to '
                             f'{"double" if key == types_pb2.DT_DOUBLE else "float"} '
                             'without loss of precision.')
    values.append(float(v))
  elif dtype in _INT_RANGES:
    lo, hi = _INT_RANGES[dtype]
    if not _is_int(v) or not lo <= v <= hi:
      raise type_error()
    values.append(v)
  elif dtype == types_pb2.DT_STRING:
    if isinstance(v, dict):
      values.append(_b64decode(v))
    elif isinstance(v, str):
      values.append(v.encode('utf-8', 'surrogatepass'))
    else:
      raise type_error()
  elif dtype == types_pb2.DT_BOOL:
    if not isinstance(v, bool):
      raise type_error()
    values.append(v)
  else:
    raise ServingError(Code.UNIMPLEMENTED,
                       f'Conversion of JSON Value: {_show(v)} to type: '
                       f'{tensors.dtype_name(dtype)}')


def _dense_shape(v) -> List[int]:
  shape = []
  while isinstance(v, list):
    shape.append(len(v))
    if len(shape) > MAX_DEPTH:
      raise invalid_argument(f'JSON value is nested deeper than {MAX_DEPTH} levels')
    if not v:
      break
    v = v[0]
  return shape


def _fill(v, level: int, shape: List[int], dtype: int, values: list) -> None:
  rank = len(shape)
  if not isinstance(v, list):
    if level != rank:
      raise invalid_argument(f'JSON Value: {_show(v)} found at incorrect level: {level + 1} '
                             f'in the JSON DOM. Expected at level: {rank}')
    if isinstance(v, dict) and dtype != types_pb2.DT_STRING:
      raise invalid_argument(f'JSON Value: {_show(v)} Type: Object is not of expected type: '
                             f'{tensors.dtype_name(dtype)[3:].lower()}')
    _add_value(v, dtype, values)
    return
  if level >= rank:
    raise invalid_argument(f'Encountered list at unexpected level: {level} expected < {rank}')
  if len(v) != shape[level]:
    raise invalid_argument(f'Encountered list at unexpected size: {len(v)} at level: {level} '
                           f'expected size: {shape[level]}')
  for item in v:
    _fill(item, level + 1, shape, dtype, values)


def _to_array(v, dtype: int) -> np.ndarray:
  shape = _dense_shape(v)
  values: list = []
  _fill(v, 0, shape, dtype, values)
  np_type = tensors.numpy_dtype(dtype)
  if np_type is object:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
  else:
    arr = np.asarray(values, dtype=np_type)
  return arr.reshape(shape)


def _set(proto: tensor_pb2.TensorProto, array: np.ndarray, dtype: int) -> None:
  tensors.from_ndarray(array, dtype, proto)


def predict_request(doc: dict, model_spec, input_infos: Dict[str, object]
                    ) -> Tuple[predict_pb2.PredictRequest, str]:
  """Parsed JSON body (:func:`parse`) -> ``PredictRequest`` and its format (row or columnar).

  ``input_infos`` maps input names to ``TensorInfo`` (the signature's, which the caller
  looks up from the document's ``signature_name`` with :func:`signature_name`)."""
  request = predict_pb2.PredictRequest()
  request.model_spec.CopyFrom(model_spec)
  name = signature_name(doc)
  if name:
    request.model_spec.signature_name = name
  if not input_infos:
    raise invalid_argument(f'Failed to get input map for signature: {name or "DEFAULT"}')
  has_instances, has_inputs = 'instances' in doc, 'inputs' in doc
  if has_instances and has_inputs:
    raise invalid_argument(f"JSON Value: {_show(doc)} Not formatted correctly expecting only "
                           "one of 'inputs' or 'instances' keys to exist ")
  if has_instances:
    _instances(doc['instances'], doc, input_infos, request)
    return request, ROW
  if has_inputs:
    _inputs(doc['inputs'], input_infos, request)
    return request, COLUMNAR
  raise invalid_argument("Missing 'inputs' or 'instances' key")


def _instances(instances, doc, infos, request) -> None:
  if not isinstance(instances, list):
    raise invalid_argument(f"JSON Value: {_show(doc)} Excepting 'instances' to be an list/array")
  if not instances:
    raise invalid_argument(f"JSON Value: {_show(doc)} No values in 'instances' array")
  is_object = lambda v: isinstance(v, dict) and not _is_b64(v)  # noqa: E731
  if not is_object(instances[0]) and len(infos) > 1:
    raise invalid_argument('instances is a plain list, but expecting list of objects as '
                           'multiple input tensors required as per tensorinfo_map')
  objects = is_object(instances[0])
  names = sorted(infos)
  columns: Dict[str, list] = {n: [] for n in names}
  shapes: Dict[str, Tuple[int, ...]] = {}
  for i, item in enumerate(instances):
    if objects:
      if not is_object(item):
        raise invalid_argument(f'Expecting object but got list at item {i} of input list')
      for key, value in item.items():
        if key not in infos:
          raise invalid_argument(
              f"Failed to process element: {i} key: {key} of 'instances' list. Error: "
              f'INVALID_ARGUMENT: JSON object: does not have named input: {key}')
        try:
          _add_instance(key, value, infos[key].dtype, columns, shapes)
        except ServingError as e:
          raise invalid_argument(f"Failed to process element: {i} key: {key} of 'instances' "
                                 f'list. Error: {e.code.name}: {e.message}') from None
      if set(item) != set(names):
        raise invalid_argument(
            f"Failed to process element: {i} of 'instances' list. JSON object: "
            f'{_show(item)} keys must be equal to: {",".join(names)}')
    else:
      if is_object(item):
        raise invalid_argument(f'Expecting value/list but got object at item {i} of input '
                               'list')
      key = names[0]
      try:
        _add_instance(key, item, infos[key].dtype, columns, shapes)
      except ServingError as e:
        raise invalid_argument(f"Failed to process element: {i} of 'instances' list. "
                               f'Error: {e.code.name}: {e.message}') from None
  for key in names:
    if columns[key]:
      dtype = infos[key].dtype
      _set(request.inputs[key], np.stack(columns[key]), dtype)


def _add_instance(key, value, dtype, columns, shapes) -> None:
  array = _to_array(value, dtype)
  if key in shapes:
    size = int(np.prod(shapes[key])) if shapes[key] else 1
    if array.size != size:
      raise invalid_argument(f'Expecting tensor size: {size} but got: {array.size}')
    if array.shape != shapes[key]:
      raise invalid_argument(f'Expecting shape [{",".join(map(str, shapes[key]))}] but got: '
                             f'[{",".join(map(str, array.shape))}]')
  else:
    shapes[key] = array.shape
  columns[key].append(array)


def _inputs(value, infos, request) -> None:
  if not isinstance(value, dict) or _is_b64(value):
    if len(infos) > 1:
      raise invalid_argument('inputs is a plain value/list, but expecting an object as '
                             'multiple input tensors required as per tensorinfo_map')
    key = next(iter(infos))
    _set(request.inputs[key], _to_array(value, infos[key].dtype), infos[key].dtype)
    return
  for key in sorted(infos):
    if key not in value:
      raise invalid_argument(f"Missing named input: {key} in 'inputs' object.")
    _set(request.inputs[key], _to_array(value[key], infos[key].dtype), infos[key].dtype)


# ----------------------------------------------------------- classify / regress
def _feature_kind_error(name: str, feature) -> ServingError:
  kind = {'bytes_list': 'bytes', 'float_list': 'float', 'int64_list': 'int64'}.get(
      feature.WhichOneof('kind'), 'UNKNOWN')
  return invalid_argument(f'Unexpected element type in feature: {name} expecting type: {kind}')


def _add_feature_value(v, name: str, feature: feature_pb2.Feature) -> None:
  kind = feature.WhichOneof('kind')
  def need(k):
    if kind not in (None, k):
      raise _feature_kind_error(name, feature)
  if v is None or isinstance(v, list) or (isinstance(v, dict) and not _is_b64(v)):
    raise invalid_argument(f'Feature: {name} has element with unexpected JSON type: '
                           f'{_type_name(v)}')
  if isinstance(v, bool):
    need('int64_list')
    feature.int64_list.value.append(1 if v else 0)
  elif isinstance(v, dict):
    need('bytes_list')
    feature.bytes_list.value.append(_b64decode(v))
  elif isinstance(v, str):
    need('bytes_list')
    feature.bytes_list.value.append(v.encode('utf-8', 'surrogatepass'))
  elif isinstance(v, float):
    need('float_list')
    if math.isfinite(v) and abs(v) > _FLOAT_LIMIT[types_pb2.DT_FLOAT]:
      raise invalid_argument(f'Cannot convert JSON value: {_show(v)} to float without loss '
                             'of precision.')
    feature.float_list.value.append(v)
  else:
    need('int64_list')
    if not -2 ** 63 <= v < 2 ** 63:
      raise invalid_argument(f'Feature: {name} has uint64 element. Only int64 is supported.')
    feature.int64_list.value.append(v)


def _example(value, out: example_pb2.Example) -> None:
  if not isinstance(value, dict):
    raise invalid_argument(f'Example must be JSON object but got JSON {_type_name(value)}')
  for name, content in value.items():
    feature = feature_pb2.Feature()
    for v in (content if isinstance(content, list) else [content]):
      _add_feature_value(v, name, feature)
    out.features.feature[name].CopyFrom(feature)


def classify_regress_request(body: bytes, model_spec, kind: str):
  """JSON body -> ``ClassificationRequest`` (kind ``classify``) or ``RegressionRequest``."""
  doc = parse(body)
  request = (classification_pb2.ClassificationRequest() if kind == 'classify'
             else regression_pb2.RegressionRequest())
  request.model_spec.CopyFrom(model_spec)
  name = signature_name(doc)
  if name:
    request.model_spec.signature_name = name
  has_context = 'context' in doc
  if has_context:
    _example(doc['context'], request.input.example_list_with_context.context)
  if 'examples' not in doc:
    raise invalid_argument(f"JSON Value: {_show(doc)} When method is classify, key "
                           "'examples' is expected and was not found")
  examples = doc['examples']
  if not isinstance(examples, list):
    raise invalid_argument(f"JSON Value: {_show(doc)} Expecting 'examples' value to be an "
                           'list/array')
  if not examples:
    raise invalid_argument(f"JSON Value: {_show(doc)} 'examples' value is an empty array")
  target = (request.input.example_list_with_context.examples if has_context
            else request.input.example_list.examples)
  for e in examples:
    _example(e, target.add())
  return request
