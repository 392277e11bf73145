"""serving/json_request.py: any bytes decode or fail with INVALID_ARGUMENT."""
import json

import grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow_serving.apis import (model_pb2)

from serving import errors, json_request


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64))
def test_rest_decoder_fuzz_raw_bytes(body):
  try:
    doc = json_request.parse(body)
    json_request.classify_regress_request(json.dumps(doc).encode(), model_pb2.ModelSpec(),
                                        'regress')
  except errors.ServingError as e:
    assert e.code == grpc.StatusCode.INVALID_ARGUMENT
