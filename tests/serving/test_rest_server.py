"""serving/rest_server.py: property-based fuzzing of the REST API never gives a 500."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serving.rest_server import RestApi
from helpers import push_version, start_server, toy_config

# The JSON values and documents the fuzzing draws from.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8) |
    st.fixed_dictionaries({'b64': st.text(max_size=8)}),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.sampled_from(['x', 'key', 'n', 'b64', 'inputs', 'instances',
                                     'examples', 'context', 'signature_name']),
                    children, max_size=4),
    max_leaves=20)
documents = st.fixed_dictionaries({}, optional={
    'signature_name': st.sampled_from(['serving_default', 'ints', 'regression',
                                       'classification', 'nope']) | json_values,
    'instances': json_values, 'inputs': json_values, 'examples': json_values,
    'context': json_values})


@pytest.fixture(scope='module')
def rest_api(toy_versions, tmp_path_factory):
  base = tmp_path_factory.mktemp('fuzz')
  push_version(str(base), 1, toy_versions[1])
  server = start_server(toy_config(base), file_system_poll_wait_seconds=0)
  yield RestApi(server.core)
  server.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=documents | json_values, verb=st.sampled_from(['predict', 'regress', 'classify']))
def test_rest_decoder_fuzz_never_500(rest_api, doc, verb):
  body = json.dumps(doc, allow_nan=True).encode()
  status, text = rest_api.handle('POST', f'/v1/models/toy:{verb}', body)
  assert status in (200, 400, 404), text
  parsed = json.loads(text)
  assert ('error' in parsed) == (status != 200)
