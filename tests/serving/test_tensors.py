"""serving/tensors.py: TensorProto <-> NumPy as TF Serving reads requests (tensor_content,
typed fields, one value filling a tensor) and writes responses (typed fields)."""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from serving import errors, tensors


@pytest.mark.parametrize('array', [
    np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    np.array([1e300, -2.5]),
    np.array([[1, -2], [3, 2 ** 40]], np.int64),
    np.array([1, -2, 3], np.int32),
    np.array([True, False]),
    np.array([0.5, 1.5], np.float16),
    np.array([b'a', b'\xff\x00'], dtype=object),
])
def test_round_trip_and_agreement_with_tensorflow(array):
  proto = tensors.from_ndarray(array)
  back = tensors.to_ndarray(proto)
  assert back.shape == array.shape and back.dtype == array.dtype
  np.testing.assert_array_equal(back, array)
  np.testing.assert_array_equal(tf.make_ndarray(proto), array)     # what clients read
  assert not proto.tensor_content                                  # typed fields only
  # A request written by tf.make_tensor_proto (tensor_content) reads the same.
  np.testing.assert_array_equal(tensors.to_ndarray(tf.make_tensor_proto(array)), array)


def test_one_value_fills_the_tensor_and_too_many_are_refused():
  proto = tf.make_tensor_proto(np.zeros([2, 3], np.float32))
  proto.ClearField('tensor_content')
  proto.float_val.append(4.0)
  np.testing.assert_array_equal(tensors.to_ndarray(proto), np.full([2, 3], 4.0))
  proto.float_val.extend([1.0] * 6)                                # 7 values for 6 cells
  with pytest.raises(errors.ServingError, match='tensor parsing error: x'):
    tensors.to_ndarray(proto, 'x')
  bad = tf.make_tensor_proto(np.zeros([4], np.float32))
  bad.tensor_content = bad.tensor_content[:-1]
  with pytest.raises(errors.ServingError, match='tensor parsing error'):
    tensors.to_ndarray(bad)


def test_shapes_dtypes_and_names():
  assert tensors.check_shape(np.zeros([5, 2]), (-1, 2))
  assert not tensors.check_shape(np.zeros([5, 3]), (-1, 2))
  assert not tensors.check_shape(np.zeros([5]), (-1, 2))
  assert tensors.check_shape(np.zeros([5, 3, 1]), None)            # unknown rank
  assert tensors.tensor_info_dtype_ok(np.zeros(2, np.float32), types_pb2.DT_FLOAT)
  assert not tensors.tensor_info_dtype_ok(np.zeros(2, np.float64), types_pb2.DT_FLOAT)
  assert tensors.dtype_name(types_pb2.DT_INT64) == 'DT_INT64'
  with pytest.raises(errors.ServingError, match='Unsupported tensor dtype: DT_COMPLEX64'):
    tensors.numpy_dtype(types_pb2.DT_COMPLEX64)
  with pytest.raises(errors.ServingError, match='Unsupported array dtype'):
    tensors.from_ndarray(np.zeros(2, np.complex64))
