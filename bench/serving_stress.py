"""Concurrency stress for the embedded server, to chase the abort seen in bench/serving
(``free(): invalid pointer`` under 8 gRPC clients x 64 examples; docs/BENCHMARKS.md).

    python -m bench.serving_stress --mode session|inprocess|subprocess [--seconds 60]

* ``session``: 8 threads call the loaded servable's session directly;
* ``inprocess``: a ModelServer in this process, 8 gRPC client threads;
* ``subprocess``: ``python -m serving serve`` in its own process (as bench/serving runs it),
  8 gRPC client threads here.

Each sends the same 64-example requests as bench/serving for ``--seconds`` and prints the
number of completed calls, or the failure (the server's exit code and log tail). Not part
of ``make bench``: it measures survival, not speed.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time

import grpc
import numpy as np

from bench import serving as bs


def _hammer(call, seconds: float, threads: int = 8) -> tuple:
  done, failures, stop = [0], [], time.time() + seconds

  def work(i):
    while time.time() < stop and not failures:
      try:
        call(i)
        done[0] += 1
      except Exception as e:  # noqa: BLE001 -- the failure is the result
        failures.append(repr(e)[:300])

  ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for t in ts:
    t.start()
  for t in ts:
    t.join()
  return done[0], failures


def _grpc_call(port: int, exs: list):
  from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
  from serving import tensors
  stubs, requests = {}, {}

  def call(i):
    if i not in stubs:
      stubs[i] = prediction_service_pb2_grpc.PredictionServiceStub(
          grpc.insecure_channel(f'127.0.0.1:{port}'))
      req = predict_pb2.PredictRequest()
      req.model_spec.name = bs.MODEL
      tensors.from_ndarray(np.array(exs[i * 8:i * 8 + 64], dtype=object),
                           out=req.inputs['examples'])
      req.output_filter.append('probability')
      requests[i] = req
    stubs[i].Predict(requests[i], timeout=60)
  return call


def main(argv=None) -> None:
  p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  p.add_argument('--mode', choices=['session', 'inprocess', 'subprocess'], required=True)
  p.add_argument('--seconds', type=float, default=60)
  p.add_argument('--model-base', default='workdir/serving/ctr')
  args = p.parse_args(argv)
  from serving.batch import latest_version_dir
  work = tempfile.mkdtemp(prefix='serving_stress_')
  base = bs.model_base(args.model_base, work)
  exs = bs.examples(latest_version_dir(base), 512)
  server = None
  if args.mode == 'session':
    from serving.servable import Servable
    s = Servable(bs.MODEL, 1, latest_version_dir(base))
    s.load()
    sig = s.signatures['serving_default']
    feed, fetch = sig.inputs['examples'].name, [sig.outputs['probability'].name]

    def call(i):
      x = np.empty(64, dtype=object)
      x[:] = exs[i * 8:i * 8 + 64]
      s.run_direct({feed: x}, fetch)
  elif args.mode == 'inprocess':
    from serving import config as cfg
    from serving.core import ServerOptions
    from serving.server import ModelServer
    server = ModelServer(ServerOptions(model_config=cfg.single_model_config(bs.MODEL, base)),
                         port=0, rest_api_port=0, host='127.0.0.1').start()
    call = _grpc_call(server.port, exs)
  else:
    server = bs.Server(base, work)
    call = _grpc_call(server.port, exs)
  done, failures = _hammer(call, args.seconds)
  print(f'mode={args.mode} seconds={args.seconds:g} completed_calls={done} '
        f'failures={failures[:1] or "none"}', flush=True)
  if server is not None:
    server.stop()


if __name__ == '__main__':
  main()
