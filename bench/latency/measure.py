"""What bench.latency measures: four models, each part of a Predict call timed alone
with the server's own code, the call end to end, and open-loop load."""
from __future__ import annotations

import threading
import time

import numpy as np

from bench.latency.model import TARGET_MS
from serving import signatures as sig

# Eight of the default spec's features (4 categorical, 4 numeric): the feature-count axis.
FEW_FEATURES = ('gender', 'age_group', 'hour', 'ad_category',
                'feat_0', 'feat_1', 'history_0', 'history_1')
MODELS = {
    'dnn': {},
    'dnn_8_features': {'features': FEW_FEATURES},
    'dnn_wide': {'model_config': {'hidden_units': [1024, 512, 256]}},
    'dcn_v2': {'model': 'dcn_v2'},
}
LOAD_FRACTIONS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3)   # of the first estimate


def median_ms(fn, n):
  """Median ms of ``n`` calls of ``fn``, after one untimed call."""
  fn()
  out = []
  for _ in range(n):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return float(np.median(out) * 1e3)


def request(exs, model_name='ctr'):
  """A Predict of the serialized examples ``exs`` that fetches the probability only."""
  from tensorflow_serving.apis import predict_pb2
  from serving import tensors
  req = predict_pb2.PredictRequest()
  req.model_spec.name = model_name
  tensors.from_ndarray(np.array(exs, dtype=object), out=req.inputs[sig.EXAMPLES])
  req.output_filter.append(sig.PROBABILITY)
  return req


def parts(version_dir, exs, batches, n):
  """{batch: {decode, graph, encode (ms), request_bytes, response_bytes}}, each part
  timed alone with the server's own code (median of n): decode and encode with
  ``serving.tensors``, the graph (tf.Example parse, Transform and model: the
  ``serving_default`` signature) with the server's ``Servable`` session."""
  from tensorflow_serving.apis import predict_pb2
  from serving import tensors
  from serving.servable import Servable
  s = Servable('ctr', 1, version_dir)
  s.load()
  try:
    full = s.signatures[sig.DEFAULT]
    x_full, prob = full.inputs[sig.EXAMPLES].name, full.outputs[sig.PROBABILITY]
    out = {}
    for b in batches:
      req = request(exs[:b]).SerializeToString()
      arr = tensors.to_ndarray(predict_pb2.PredictRequest.FromString(req).inputs[sig.EXAMPLES])

      def decode():
        tensors.to_ndarray(predict_pb2.PredictRequest.FromString(req).inputs[sig.EXAMPLES])

      value = s.run_direct({x_full: arr}, [prob.name])[0]

      def encode():
        r = predict_pb2.PredictResponse()
        r.model_spec.name = 'ctr'
        r.model_spec.version.value = 1
        r.model_spec.signature_name = sig.DEFAULT
        tensors.from_ndarray(value, prob.dtype, r.outputs[sig.PROBABILITY])
        return r.SerializeToString()

      out[b] = {'decode': median_ms(decode, n),
                'graph': median_ms(lambda: s.run_direct({x_full: arr}, [prob.name]), n),
                'encode': median_ms(encode, n),
                'request_bytes': len(req), 'response_bytes': len(encode())}
    return out
  finally:
    s.close()


def end_to_end(port, req, n, model_name='ctr'):
  """Median client-side latency (ms) of ``n`` sequential gRPC Predicts."""
  import grpc
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  req.model_spec.name = model_name
  with grpc.insecure_channel(f'127.0.0.1:{port}', options=[
      ('grpc.max_receive_message_length', 1 << 28)]) as ch:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
    return median_ms(lambda: stub.Predict(req, timeout=60), n)


def open_loop(port, req, rate, seconds, seed=0):
  """p50/p99 (ms), achieved rate and failures of Poisson traffic at ``rate`` requests/s,
  latency counted from each request's scheduled time (so client lag is not hidden). A
  request that fails (overload can cancel some) counts as infinitely late."""
  import grpc
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  rng = np.random.default_rng(seed)
  n = max(20, int(rate * seconds))
  send = np.cumsum(rng.exponential(1.0 / rate, n))
  lat = np.full(n, np.nan)
  errors = []
  done = threading.Semaphore(0)
  with grpc.insecure_channel(f'127.0.0.1:{port}') as ch:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
    stub.Predict(req, timeout=60)
    t0 = time.perf_counter()

    def finish(i):
      def cb(f):
        if f.exception() is not None:   # shed or cancelled under overload: never served
          errors.append(repr(f.exception()))
          lat[i] = np.inf
        else:
          lat[i] = time.perf_counter() - (t0 + send[i])
        done.release()
      return cb

    for i in range(n):
      wait = t0 + send[i] - time.perf_counter()
      if wait > 0:
        time.sleep(wait)
      stub.Predict.future(req, timeout=60).add_done_callback(finish(i))
    for _ in range(n):
      done.acquire(timeout=120)
    wall = time.perf_counter() - t0
  if len(errors) == n:
    raise RuntimeError(f'every request failed, first: {errors[0]}')
  lat *= 1e3
  return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
          'achieved_per_s': (n - len(errors)) / wall, 'failed': len(errors)}


def saturated(port, req, clients=8, seconds=5.0):
  """Requests/s with ``clients`` requests always in flight (closed loop)."""
  import grpc
  from tensorflow_serving.apis import prediction_service_pb2_grpc
  with grpc.insecure_channel(f'127.0.0.1:{port}') as ch:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
    stub.Predict(req, timeout=60)
    count = [0]
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def loop():
      while time.perf_counter() < end:
        stub.Predict(req, timeout=60)
        with lock:
          count[0] += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    return count[0] / (time.perf_counter() - t0)


def load_test(port, req, seconds, repeats=3):
  """Open-loop Poisson sweeps at fractions of a first capacity estimate (closed loop);
  each rate runs ``repeats`` times in rounds (a sweep, then the next), and its p50, p99
  and achieved rate are the medians over the rounds. The capacity mu is the highest of
  those achieved rates (closed-loop clients in one process under-state it at batch 1 and
  over-state it at batch 64); :func:`bench.latency.model.predict_load` predicts from that
  mu and nothing else."""
  mu0 = saturated(port, req)
  offered = [f * mu0 for f in LOAD_FRACTIONS]
  runs = {rate: [] for rate in offered}
  for i in range(repeats):
    for rate in offered:
      r = open_loop(port, req, rate, seconds, seed=i)
      runs[rate].append(r)
      print(f'load round {i} offered {rate:.0f}/s', r, flush=True)
  rates = []
  for rate, rs in runs.items():
    row = {k: float(np.median([r[k] for r in rs])) for k in ('p50_ms', 'p99_ms',
                                                              'achieved_per_s')}
    row.update(failed=int(sum(r['failed'] for r in rs)), offered=rate,
               p99_runs_ms=[r['p99_ms'] for r in rs])
    rates.append(row)
  over = [r['offered'] for r in rates if r['p99_ms'] > TARGET_MS]
  return {'mu': max(r['achieved_per_s'] for r in rates), 'rates': rates,
          'break_measured': min(over) if over else None}
