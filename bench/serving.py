"""Serving latency and throughput: the embedded server over gRPC and REST, side by side
with calling the loaded SavedModel signature in-process, in one run.

    python -m bench.serving [--model-base workdir/serving/ctr] [--requests 400]

The model is the latest version under ``--model-base`` (what ``make run`` pushed), or, when
there is none, the default DNN trained on generated rows (``bench.fixtures``). The server
runs in its own process (``python -m serving serve``), as in production; load comes from
separate client processes with the official ``tensorflow-serving-api`` stubs (gRPC) or
plain HTTP/1.1 keep-alive (REST). Latencies are client-side wall times. The in-process
reference is ``tf.saved_model.load(...).signatures['serving_default']`` on the same
serialized examples.

Writes bench/results/serving.json; docs/BENCHMARKS.md has the table.
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# As python -m serving runs (serving/__main__.py): the in-process reference uses the same
# TensorFlow kernels as the server it is compared with.
from bench.common import onednn_off_before_tensorflow

onednn_off_before_tensorflow()

import numpy as np  # noqa: E402

from bench.common import write_results  # noqa: E402
from serving import signatures as sig  # noqa: E402

MODEL = 'ctr'


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def model_base(path: str, work: str) -> str:
  from serving.batch import latest_version_dir
  try:
    latest_version_dir(path)
    return path
  except (FileNotFoundError, OSError):
    pass
  from bench.fixtures import write_ctr_model
  import shutil
  print(f'no model under {path}: training the default DNN on generated rows', flush=True)
  model_dir, _, _ = write_ctr_model(os.path.join(work, 'train'), rows=60_000, train_steps=60)
  base = os.path.join(work, 'serving', MODEL)
  shutil.copytree(model_dir, os.path.join(base, '1'))
  return base


def examples(version_dir: str, n: int) -> list:
  from datagen import synthetic
  from serving.batch import signature_defs
  from serving.client import make_example
  raw = signature_defs(version_dir)[sig.PREDICT_RAW]
  types = {k: v.dtype for k, v in raw.inputs.items()}
  table = synthetic.generate(n, seed=3)
  return [make_example({k: r[k] for k in types}, types) for r in table.to_pylist()]


def batching_configs():
  from serving.config import BatchingParameters
  return {
      # Large batches: what a many-core server would use.
      'batching': BatchingParameters(max_batch_size=512, batch_timeout_micros=2000,
                                     num_batch_threads=2, max_enqueued_batches=100,
                                     allowed_batch_sizes=(64, 128, 256, 512)),
      # Sized for this 2-core machine: two 64-example requests per run, one run per core.
      'batching_128': BatchingParameters(max_batch_size=128, batch_timeout_micros=1000,
                                         num_batch_threads=2, max_enqueued_batches=100,
                                         allowed_batch_sizes=(64, 128)),
  }


# ------------------------------------------------------------------ clients
def _timed(call, n, start, q, ready):
  """One call to connect, then ``n`` timed calls once every client is ready; the
  latencies (or the error, as a string) go to ``q``."""
  is_ready = False
  try:
    call()
    ready.put(1)
    is_ready = True
    start.wait()
    lat = []
    for _ in range(n):
      t = time.perf_counter()
      call()
      lat.append(time.perf_counter() - t)
  except Exception as e:  # reported to the parent, which raises
    if not is_ready:
      ready.put(1)
    q.put(repr(e))
    return
  q.put(lat)


def _grpc_worker(port, batch, n, start, q, ready):
  import grpc
  import numpy as np
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
  from serving import tensors
  exs = np.load(batch, allow_pickle=True)
  stub = prediction_service_pb2_grpc.PredictionServiceStub(
      grpc.insecure_channel(f'127.0.0.1:{port}'))
  req = predict_pb2.PredictRequest()
  req.model_spec.name = MODEL
  tensors.from_ndarray(exs, out=req.inputs[sig.EXAMPLES])
  req.output_filter.append(sig.PROBABILITY)
  _timed(lambda: stub.Predict(req, timeout=60), n, start, q, ready)


def _rest_worker(port, batch, n, start, q, ready):
  import numpy as np
  exs = np.load(batch, allow_pickle=True)
  body = json.dumps({'instances': [{'b64': base64.b64encode(e).decode()} for e in exs]})
  conn = http.client.HTTPConnection('127.0.0.1', port)

  def call():
    conn.request('POST', f'/v1/models/{MODEL}:predict', body,
                 {'Content-Type': 'application/json'})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
      raise RuntimeError(data)

  _timed(call, n, start, q, ready)


def load(protocol, port, exs, batch, clients, requests, work):
  path = os.path.join(work, f'batch_{batch}.npy')
  np.save(path, np.array(exs[:batch], dtype=object), allow_pickle=True)
  ctx = mp.get_context('spawn')
  start, q, ready = ctx.Event(), ctx.Queue(), ctx.Queue()
  target = _grpc_worker if protocol == 'grpc' else _rest_worker
  procs = [ctx.Process(target=target, args=(port, path, requests, start, q, ready))
           for _ in range(clients)]
  for p in procs:
    p.start()
  for _ in procs:   # every client has imported, connected and sent one request
    ready.get(timeout=300)
  t = time.perf_counter()
  start.set()
  lat = []
  for _ in procs:
    got = q.get(timeout=600)
    if isinstance(got, str):
      raise RuntimeError(f'a {protocol} client failed: {got}')
    lat += got
  wall = time.perf_counter() - t
  for p in procs:
    p.join()
  lat = np.array(lat) * 1e3
  return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
          'mean_ms': float(lat.mean()),
          'predictions_per_s': clients * requests * batch / wall}


class Server:
  def __init__(self, base, work, batching=None, model_name=MODEL):
    self.port, self.rest = free_port(), free_port()
    cmd = [sys.executable, '-m', 'serving', 'serve', f'--port={self.port}',
           f'--rest_api_port={self.rest}', f'--model_name={model_name}',
           f'--model_base_path={base}', '--host=127.0.0.1', '--log_level=WARNING']
    if batching is not None:
      path = os.path.join(work, 'batching.config')
      with open(path, 'w') as f:
        f.write(batching.to_text())
      cmd += ['--enable_batching', f'--batching_parameters_file={path}']
    self.log = os.path.join(work, f'server_{self.port}.log')
    self.proc = subprocess.Popen(cmd, stderr=open(self.log, 'w'))
    from serving.client import PredictionClient
    client = PredictionClient(f'127.0.0.1:{self.port}', model_name)
    end = time.time() + 120
    while time.time() < end:
      try:
        if client.status().model_version_status[0].state == 30:
          return
      except Exception:  # not up yet
        pass
      time.sleep(0.5)
    raise RuntimeError('server did not start')

  def stop(self):
    if self.proc.poll() is not None:
      print(f'server exited with {self.proc.returncode}; log tail:\n' +
            open(self.log).read()[-3000:], flush=True)
    self.proc.terminate()
    self.proc.wait(30)


def in_process(version_dir, exs, batch, n):
  import tensorflow as tf
  fn = tf.saved_model.load(version_dir).signatures[sig.DEFAULT]
  x = tf.constant(exs[:batch])
  for _ in range(5):
    fn(**{sig.EXAMPLES: x})
  lat = []
  for _ in range(n):
    t = time.perf_counter()
    fn(**{sig.EXAMPLES: x})[sig.PROBABILITY].numpy()
    lat.append(time.perf_counter() - t)
  lat = np.array(lat) * 1e3
  return {'p50_ms': float(np.percentile(lat, 50)), 'p99_ms': float(np.percentile(lat, 99)),
          'mean_ms': float(lat.mean()), 'predictions_per_s': batch / (lat.mean() / 1e3)}


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog='python -m bench.serving', description=__doc__.split('\n\n')[0])
  p.add_argument('--model-base', default='workdir/serving/ctr')
  p.add_argument('--requests', type=int, default=400, help='requests per client at batch 1')
  args = p.parse_args(argv)
  from serving.batch import latest_version_dir
  work = tempfile.mkdtemp(prefix='bench_serving_')
  base = model_base(args.model_base, work)
  version_dir = latest_version_dir(base)
  exs = examples(version_dir, 512)
  rows = []

  def add(scenario, stats, batch, clients, protocol):
    for metric, value in stats.items():
      unit = 'ms' if metric.endswith('_ms') else 'predictions/s'
      rows.append({'dataset': 'default_generated', 'model': MODEL, 'scenario': scenario,
                   'protocol': protocol, 'batch': batch, 'clients': clients,
                   'metric': metric, 'value': round(value, 4), 'unit': unit})
    print(f'{scenario:<34} {protocol:<10} b={batch:<4} c={clients} '
          + ' '.join(f'{k}={v:.2f}' for k, v in stats.items()), flush=True)

  n = args.requests
  for b, reqs in ((1, 4 * n), (256, max(20, n // 10))):
    add('in_process_signature', in_process(version_dir, exs, b, reqs), b, 1, 'in-process')
  server = Server(base, work)
  try:
    add('grpc_b1_1_client', load('grpc', server.port, exs, 1, 1, n, work), 1, 1, 'grpc')
    add('grpc_b1_4_clients', load('grpc', server.port, exs, 1, 4, n, work), 1, 4, 'grpc')
    add('rest_b1_4_clients', load('rest', server.rest, exs, 1, 4, n, work), 1, 4, 'rest')
    add('grpc_b256_1_client', load('grpc', server.port, exs, 256, 1, max(20, n // 10), work),
        256, 1, 'grpc')
    add('rest_b256_1_client', load('rest', server.rest, exs, 256, 1, max(20, n // 10), work),
        256, 1, 'rest')
    add('grpc_b64_8_clients_no_batching',
        load('grpc', server.port, exs, 64, 8, max(20, n // 2), work), 64, 8, 'grpc')
  finally:
    server.stop()
  for name, batching in batching_configs().items():
    server = Server(base, work, batching)
    try:
      if name == 'batching':
        add('grpc_b1_4_clients_batching', load('grpc', server.port, exs, 1, 4, n, work), 1, 4,
            'grpc')
      add(f'grpc_b64_8_clients_{name}',
          load('grpc', server.port, exs, 64, 8, max(20, n // 2), work), 64, 8, 'grpc')
    finally:
      server.stop()
  ref = {(r['batch'], r['metric']): r['value'] for r in rows
         if r['scenario'] == 'in_process_signature'}
  for r in list(rows):
    if r['protocol'] in ('grpc', 'rest') and r['clients'] == 1 and r['metric'] == 'mean_ms':
      rows.append({**r, 'metric': 'mean_ratio_to_in_process',
                   'value': round(r['value'] / ref[(r['batch'], 'mean_ms')], 3), 'unit': 'x'})
  print(write_results('serving', rows))


if __name__ == '__main__':
  main()
