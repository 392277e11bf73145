"""serving/errors.py: TF Serving's status codes, their HTTP mapping, and TensorFlow's
errors carried over with their code and message."""
import grpc
import pytest
import tensorflow as tf

from serving import errors


@pytest.mark.parametrize('make, code, http', [
    (errors.invalid_argument, grpc.StatusCode.INVALID_ARGUMENT, 400),
    (errors.not_found, grpc.StatusCode.NOT_FOUND, 404),
    (errors.failed_precondition, grpc.StatusCode.FAILED_PRECONDITION, 400),
    (errors.unavailable, grpc.StatusCode.UNAVAILABLE, 503),
    (errors.internal, grpc.StatusCode.INTERNAL, 500),
])
def test_each_error_has_tf_servings_code_and_http_status(make, code, http):
  e = make('the message')
  assert (e.code, e.message, e.http_status, e.code_name) == (code, 'the message', http,
                                                              code.name)
  assert str(e) == 'the message'


def test_every_grpc_code_maps_to_an_http_status():
  # http_server.cc's ToHTTPStatusCode maps every code; none falls to a default.
  assert set(errors.HTTP_STATUS) == set(grpc.StatusCode)
  assert errors.HTTP_STATUS[grpc.StatusCode.RESOURCE_EXHAUSTED] == 429
  assert errors.HTTP_STATUS[grpc.StatusCode.UNIMPLEMENTED] == 501


def test_tensorflow_errors_keep_their_code_and_lose_the_python_heading():
  assert errors.code_from_number(3) == grpc.StatusCode.INVALID_ARGUMENT
  assert errors.code_from_number(999) == grpc.StatusCode.UNKNOWN
  e = errors.from_tf_error(tf.errors.InvalidArgumentError(
      None, None, 'Graph execution error:\n\nName: <unknown>, Feature: x is required'))
  assert e.code == grpc.StatusCode.INVALID_ARGUMENT
  assert e.message == 'Name: <unknown>, Feature: x is required'
  e = errors.from_tf_error(tf.errors.ResourceExhaustedError(None, None, 'OOM'))
  assert (e.code, e.message) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 'OOM')
  assert errors.unimplemented_method('tensorflow/serving/foo').message == (
      'Unsupported signature method_name: tensorflow/serving/foo')
