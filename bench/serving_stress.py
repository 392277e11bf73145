"""Concurrency stress for the embedded server: survival under concurrent load, and the
reproduction of the abort first seen in bench/serving (``free(): invalid pointer``;
docs/SERVING.md, "oneDNN").

    python -m bench.serving_stress --mode session|inprocess|subprocess|processes \
        [--seconds 60] [--batching]

* ``session``: 8 threads call the loaded model's session directly, at batch sizes from 1
  to 512 and without the servable's oneDNN lock: with ``TF_ENABLE_ONEDNN_OPTS=1`` this
  aborts within seconds (TF 2.16's oneDNN kernels), with ``=0`` (the default here, as in
  ``python -m serving``) it runs;
* ``inprocess``: a ModelServer in this process, 8 gRPC client threads;
* ``subprocess``: ``python -m serving serve`` in its own process (as bench/serving runs it),
  8 gRPC client threads here;
* ``processes``: as bench/serving runs it: the server in its own process, and rounds of 8
  client *processes* (each started, connected, timed and exited, as in bench/serving) until
  ``--seconds`` have passed.

The other modes send bench/serving's 64-example gRPC requests. Each runs for ``--seconds``
and prints the number of completed calls, or the failure (the server's exit code and log
tail). Not part of ``make bench``: it measures survival, not speed.
"""
from __future__ import annotations

import argparse
import collections
import tempfile
import threading
import time

import grpc
import numpy as np

from bench import serving as bs
from serving import signatures as sig


def _hammer(call, seconds: float, threads: int = 8) -> tuple:
  done, failures, stop = [0], [], time.time() + seconds

  def work(i):
    while time.time() < stop and not failures:
      try:
        call(i)
        done[0] += 1
      except Exception as e:  # the failure is the result
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
                           out=req.inputs[sig.EXAMPLES])
      req.output_filter.append(sig.PROBABILITY)
      requests[i] = req
    stubs[i].Predict(requests[i], timeout=60)
  return call


def _rounds(server, exs, seconds: float, work: str) -> tuple:
  done, failures, stop = 0, [], time.time() + seconds
  while time.time() < stop and not failures:
    try:
      bs.load('grpc', server.port, exs, 64, 8, 50, work)
      done += 8 * 50
    except Exception as e:  # the failure is the result
      failures.append(repr(e)[:300])
    if server.proc.poll() is not None:
      failures.append(f'server exited with {server.proc.returncode}')
  return done, failures


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog='python -m bench.serving_stress',
                              description=__doc__.split('\n\n')[0])
  p.add_argument('--mode', choices=['session', 'inprocess', 'subprocess', 'processes'],
                 required=True)
  p.add_argument('--batching', action='store_true',
                 help='server-side batching on (subprocess and processes modes)')
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
    signature = s.signatures[sig.DEFAULT]
    fn = s.session.make_callable([signature.outputs[sig.PROBABILITY].name],
                                 feed_list=[signature.inputs[sig.EXAMPLES].name])
    sizes = (1, 7, 64, 128, 256, 512)

    def call(i):
      # The session itself, without the servable's oneDNN lock, at mixed batch sizes.
      n = sizes[(call.count[i] + i) % len(sizes)]
      call.count[i] += 1
      x = np.empty(n, dtype=object)
      x[:] = (exs * 2)[:n]
      fn(x)
    call.count = collections.Counter()
  elif args.mode == 'inprocess':
    from serving import config as cfg
    from serving.core import ServerOptions
    from serving.server import ModelServer
    server = ModelServer(ServerOptions(model_config=cfg.single_model_config(bs.MODEL, base)),
                         port=0, rest_api_port=0, host='127.0.0.1').start()
    call = _grpc_call(server.port, exs)
  else:
    batching = None
    if args.batching:
      batching = bs.batching_configs()['batching']
    server = bs.Server(base, work, batching)
    call = _grpc_call(server.port, exs)
  if args.mode == 'processes':
    done, failures = _rounds(server, exs, args.seconds, work)
  else:
    done, failures = _hammer(call, args.seconds)
  from serving.servable import onednn_enabled
  print(f'mode={args.mode} onednn={onednn_enabled()} seconds={args.seconds:g} '
        f'completed_calls={done} '
        f'failures={failures[:1] or "none"}', flush=True)
  if server is not None:
    server.stop()


if __name__ == '__main__':
  main()
