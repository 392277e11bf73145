"""``TensorProto`` <-> NumPy, as TF Serving reads requests and writes responses.

Requests may carry values in ``tensor_content`` (what ``tf.make_tensor_proto`` writes) or in
the typed ``*_val`` fields; a single value fills a tensor of any size, as in
``Tensor::FromProto``. Responses use the typed fields (TF Serving's ``AsProtoField``), which
``tf.make_ndarray`` and every official client read. Written here, not with
``tf.make_tensor_proto``/``tf.make_ndarray``, because those cost tens of microseconds per
call on the request path and accept values TF Serving refuses.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.errors import invalid_argument

DT = types_pb2
# dtype enum -> (numpy dtype, TensorProto value field)
_TYPES = {
    DT.DT_FLOAT: (np.float32, 'float_val'),
    DT.DT_DOUBLE: (np.float64, 'double_val'),
    DT.DT_INT32: (np.int32, 'int_val'),
    DT.DT_INT16: (np.int16, 'int_val'),
    DT.DT_INT8: (np.int8, 'int_val'),
    DT.DT_UINT8: (np.uint8, 'int_val'),
    DT.DT_UINT16: (np.uint16, 'int_val'),
    DT.DT_INT64: (np.int64, 'int64_val'),
    DT.DT_UINT32: (np.uint32, 'uint32_val'),
    DT.DT_UINT64: (np.uint64, 'uint64_val'),
    DT.DT_BOOL: (np.bool_, 'bool_val'),
    DT.DT_HALF: (np.float16, 'half_val'),
    DT.DT_STRING: (object, 'string_val'),
}
_BY_NUMPY = {np.dtype(v[0]): k for k, v in _TYPES.items() if v[0] is not object}


def dtype_name(dtype: int) -> str:
  return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


def numpy_dtype(dtype: int):
  if dtype not in _TYPES:
    raise invalid_argument(f'Unsupported tensor dtype: {dtype_name(dtype)}')
  return _TYPES[dtype][0]


def shape_of(proto: tensor_shape_pb2.TensorShapeProto) -> Optional[tuple]:
  """Dims of a shape proto, -1 for unknown; None for unknown rank."""
  if proto.unknown_rank:
    return None
  return tuple(d.size for d in proto.dim)


def to_ndarray(proto: tensor_pb2.TensorProto, alias: str = '') -> np.ndarray:
  """The array a request tensor holds; ``INVALID_ARGUMENT`` when it cannot be parsed."""
  def parse_error():
    return invalid_argument(f'tensor parsing error: {alias}')

  if proto.dtype not in _TYPES:
    raise parse_error()
  dims = [d.size for d in proto.tensor_shape.dim]
  if proto.tensor_shape.unknown_rank or any(d < 0 for d in dims):
    raise parse_error()
  size = int(np.prod(dims)) if dims else 1
  np_type, field = _TYPES[proto.dtype]
  if proto.tensor_content:
    if np_type is object:
      raise parse_error()
    raw = proto.tensor_content
    if len(raw) != size * np.dtype(np_type).itemsize:
      raise parse_error()
    return np.frombuffer(raw, dtype=np_type).reshape(dims)
  values = getattr(proto, field)
  n = len(values)
  if np_type is object:
    arr = np.empty(n, dtype=object)
    arr[:] = list(values)
  elif proto.dtype == DT.DT_HALF:
    arr = np.asarray(values, dtype=np.uint16).view(np.float16)
  else:
    arr = np.asarray(values, dtype=np_type)
  if n == size:
    return arr.reshape(dims)
  if n == 0:
    return np.zeros(dims, dtype=np_type) if np_type is not object else \
        np.full(dims, b'', dtype=object)
  if n == 1 or n < size:   # Tensor::FromProto repeats the last value.
    out = np.empty(size, dtype=arr.dtype)
    out[:n] = arr
    out[n:] = arr[-1]
    return out.reshape(dims)
  raise parse_error()


def from_ndarray(array, dtype: Optional[int] = None,
                 out: Optional[tensor_pb2.TensorProto] = None) -> tensor_pb2.TensorProto:
  """A ``TensorProto`` with typed value fields (TF Serving's ``AsProtoField``)."""
  array = np.asarray(array)
  if dtype is None:
    if array.dtype == object or array.dtype.kind in 'SU':
      dtype = DT.DT_STRING
    else:
      dtype = _BY_NUMPY.get(array.dtype)
      if dtype is None:
        raise invalid_argument(f'Unsupported array dtype: {array.dtype}')
  proto = out if out is not None else tensor_pb2.TensorProto()
  proto.dtype = dtype
  for d in array.shape:
    proto.tensor_shape.dim.add().size = d
  np_type, field = _TYPES[dtype]
  flat = array.ravel()
  if np_type is object:
    proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
  elif dtype == DT.DT_HALF:
    proto.half_val.extend(flat.astype(np.float16).view(np.uint16).tolist())
  else:
    getattr(proto, field).extend(flat.astype(np_type, copy=False).tolist())
  return proto


def tensor_info_dtype_ok(array: np.ndarray, dtype: int) -> bool:
  np_type = _TYPES.get(dtype, (None,))[0]
  if np_type is object:
    return array.dtype == object
  return np_type is not None and array.dtype == np.dtype(np_type)


def check_shape(array: np.ndarray, expected: Optional[Sequence[int]]) -> bool:
  """Whether ``array`` fits a signature shape (-1 dims and unknown rank match anything)."""
  if expected is None:
    return True
  if array.ndim != len(expected):
    return False
  return all(e < 0 or e == a for e, a in zip(expected, array.shape))
