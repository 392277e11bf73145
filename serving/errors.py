"""TF Serving's error model: a gRPC status code plus a message, and its HTTP mapping.

Every error the server returns is a :class:`ServingError`. gRPC sends the code and message
as the call's status; REST answers ``{"error": message}`` with the HTTP status TF Serving's
``http_server.cc`` maps the code to (:data:`HTTP_STATUS`).
"""

from __future__ import annotations

import grpc

Code = grpc.StatusCode

# tensorflow_serving/model_servers/http_server.cc: ToHTTPStatusCode.
HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# TensorFlow's error codes share gRPC's numbering (tensorflow/core/protobuf/error_codes.proto).
_BY_NUMBER = {c.value[0]: c for c in Code}


def code_from_number(number: int) -> Code:
  return _BY_NUMBER.get(int(number), Code.UNKNOWN)


class ServingError(Exception):
  """A request failed with a TF Serving status ``code`` and ``message``."""

  def __init__(self, code: Code, message: str):
    super().__init__(message)
    self.code = code
    self.message = message

  @property
  def http_status(self) -> int:
    return HTTP_STATUS.get(self.code, 500)

  @property
  def code_name(self) -> str:
    return self.code.name

  def __repr__(self) -> str:
    return f'ServingError({self.code.name}, {self.message!r})'


def invalid_argument(message: str) -> ServingError:
  return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
  return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
  return ServingError(Code.FAILED_PRECONDITION, message)


def unavailable(message: str) -> ServingError:
  return ServingError(Code.UNAVAILABLE, message)


def internal(message: str) -> ServingError:
  return ServingError(Code.INTERNAL, message)


def from_tf_error(error) -> ServingError:
  """A ``tf.errors.OpError`` from a session run, with the same code and message (less the
  ``Graph execution error:`` heading the Python session adds; the C++ server has none)."""
  message = error.message
  prefix = 'Graph execution error:'
  if message.startswith(prefix):
    message = message[len(prefix):].lstrip('\n')
  return ServingError(code_from_number(error.error_code), message)


def unimplemented_method(method: str) -> ServingError:
  return ServingError(Code.UNIMPLEMENTED, f'Unsupported signature method_name: {method}')
