"""serving/batching.py: concurrent requests merge into padded batches, each getting its own
rows back."""
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf

from serving import config as cfg
from serving import errors
from bench.fixtures import toy_expected
from helpers import push_version, start_server, toy_config, toy_request


def test_batching_merges_concurrent_requests(toy_versions, tmp_path):
  push_version(str(tmp_path), 1, toy_versions[1])
  params = cfg.BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000,
                                  num_batch_threads=1, allowed_batch_sizes=(4, 8))
  server = start_server(toy_config(tmp_path), enable_batching=True, batching_parameters=params)
  try:
    results = {}

    def one(i):
      x = [[float(i), 1.0]]
      results[i] = tf.make_ndarray(server.core.predict(toy_request(x=x)).outputs['y'])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    for i, y in results.items():   # each request gets its own rows back
      np.testing.assert_allclose(y, toy_expected([[float(i), 1.0]], 1))
    text = server.core.metrics.render()
    count = float(text.split(':tfx_ctr:serving:batch_size_count ')[1].split()[0])
    assert count < 6   # fewer session runs than requests
    assert ':tfx_ctr:serving:batch_padding_sum' in text
    with pytest.raises(errors.ServingError) as e:
      server.core.predict(toy_request(x=np.ones([9, 2])))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.message == 'Task size 9 is larger than maximum input batch size 8'
  finally:
    server.stop()
