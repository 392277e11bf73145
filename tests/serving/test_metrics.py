"""serving/metrics.py: the Prometheus endpoint under TF Serving's metric names."""
import urllib.request

import pytest

from serving import errors
from helpers import push_version, start_server, toy_config, toy_request


def test_prometheus_endpoint_uses_tf_serving_names(toy_versions, tmp_path):
  push_version(str(tmp_path), 1, toy_versions[1])
  server = start_server(toy_config(tmp_path))
  try:
    server.core.predict(toy_request())
    with pytest.raises(errors.ServingError):
      server.core.predict(toy_request(version=4))
    url = f'http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/metrics'
    text = urllib.request.urlopen(url).read().decode()
    assert ':tensorflow:serving:request_count{model_name="toy",status="OK"} 1' in text
    assert ':tensorflow:serving:request_count{model_name="toy",status="NOT_FOUND"} 1' in text
    assert '# TYPE :tensorflow:serving:request_latency histogram' in text
    assert (':tensorflow:serving:request_latency_count{model_name="toy",API="Predict",'
            'entrypoint="GRPC"} 2') in text
  finally:
    server.stop()
