"""serving/client.py: the Python client over gRPC and REST (raw rows, lists, serialized
tf.Examples), and the documented API examples' answers."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from serving.client import PredictionClient
from serving.errors import ServingError
from transform import local
from helpers import CTR_MODEL, REPO_ROOT


@pytest.mark.parametrize('protocol', ['grpc', 'rest'])
def test_client_predicts_rows_lists_and_examples(ctr, protocol):
  server = ctr['server']
  port = server.port if protocol == 'grpc' else server.rest_api_port
  rows, expected = ctr['rows'], ctr['expected']
  with PredictionClient(f'127.0.0.1:{port}', CTR_MODEL, protocol=protocol) as client:
    assert client.feature_types()['user_id'] == tf.string.as_datatype_enum or \
        'user_id' in client.feature_types()
    out = client.predict(rows)
    assert set(out) == {'probability', 'probability_ctr', 'probability_cvr',
                        'probability_ctcvr'}
    for k, v in out.items():
      np.testing.assert_allclose(np.asarray(v, np.float64).ravel(), expected[k], rtol=1e-5)
    one = client.predict(rows[3])                          # a single dict of raw features
    assert np.asarray(one['probability']).ravel()[0] == pytest.approx(
        expected['probability'][3], rel=1e-5)
    # CSV-style strings land in the right feature kinds.
    as_text = {k: (str(v) if not isinstance(v, (bytes, str)) else v) for k, v in rows[5].items()}
    assert np.asarray(client.predict(as_text)['probability']).ravel()[0] == pytest.approx(
        expected['probability'][5], rel=1e-5)
    examples = client.examples(rows[:4])
    by_examples = client.predict(examples, output_filter=['probability_ctr'])
    assert set(by_examples) == {'probability_ctr'}
    scores = client.classify(rows[:4])
    np.testing.assert_allclose([s['1'] for s in scores], expected['probability'][:4], rtol=1e-5)
    np.testing.assert_allclose(client.regress(rows[:4]), expected['probability'][:4],
                               rtol=1e-5)
    bad = dict(rows[0])
    bad['hour'] = 'noon'
    with pytest.raises(ServingError, match='feature hour'):
      client.predict(bad)
    with pytest.raises(ServingError) as e:
      PredictionClient(f'127.0.0.1:{port}', 'nope', protocol=protocol).predict(rows[0])
    assert e.value.code.name == 'NOT_FOUND'


def test_documented_api_examples_get_the_documented_answers(ctr):
  """Every request of docs/ARCHITECTURE.md's API section (docs/api_examples.json), sent to
  this server: the same status and a response of the recorded shape."""
  import base64
  import importlib.util
  spec = importlib.util.spec_from_file_location('api_examples',
                                                os.path.join(REPO_ROOT, 'docs', 'api_examples.py'))
  api = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(api)
  with open(api.SOURCE) as f:
    examples = json.load(f)
  methods = {(e['protocol'], e['method']) for e in examples}
  assert {('grpc', m) for m in ('Predict', 'Classify', 'Regress', 'MultiInference',
                                'GetModelMetadata', 'GetModelStatus',
                                'HandleReloadConfigRequest')} <= methods
  assert {('rest', 'GET'), ('rest', 'POST')} <= methods
  example = base64.b64encode(local.serialize_examples(ctr['test'].slice(0, 1),
                                                      ctr['spec'])[0]).decode()
  server = ctr['server']
  for e in examples:
    status, response = api.send(e, f'127.0.0.1:{server.port}',
                                f'127.0.0.1:{server.rest_api_port}', str(ctr['base']), example)
    assert status == e['status'], e['name']
    if 'metric_names' in response:     # counters appear as requests come: a superset
      assert set(e['response']['metric_names']) <= set(response['metric_names'])
    else:
      assert api.skeleton(response) == api.skeleton(e['response']), e['name']
  with open(api.DOC, encoding='utf-8') as f:
    assert api.markdown(examples) in f.read(), 'run python docs/api_examples.py'
