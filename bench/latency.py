"""The serving latency budget: a small additive model of one Predict call, fitted to
measurements of its parts and checked against the embedded server end to end.

    python -m bench.latency [--batches 1 16 64 256] [--requests 200] [--no-docs]

One gRPC Predict of b serialized examples, for a model with F raw features and P dense
parameters (the trainer report's ``dense_parameters``, about its multiply-adds per
example), is modelled as

    latency   = decode + graph + encode + network
    decode    = a + k * request_bytes                 PredictRequest parse, TensorProto -> array
    graph     = a + c * F + k_f * b * F + k_p * b * P  one Session run of serving_default:
                  a                 the run's fixed cost
                  c * F + k_f b F   tf.Example parse and Transform, per feature and per value
                  k_p b P           the model
    encode    = a + k * b                             output array -> PredictResponse bytes
    network   = a + k * (request + response bytes)    gRPC on loopback and the server's
                                                      Python front end

Each part is timed on its own with the server's own code (``serving.tensors``, and the
``serving.servable.Servable`` session for the graph), for four models that differ in
feature count and size, at each batch size; then the same requests are timed end to end,
a ``tensorflow-serving-api`` client against ``python -m serving serve`` (bench/serving.py's
server), one request in flight, medians. Each part's coefficients are fitted by
non-negative least squares over the models and batches; the network part on what the
end-to-end time leaves after the other three. Parse, Transform and the model run inside
one graph and are not timed apart (calling the exported Keras model alone, outside the
graph, costs more than the whole graph); the fit separates them by how each scales, with
the feature count and with the model's size.

The check is leave one model out: each model's end-to-end latency is predicted from
coefficients fitted on the other three models alone, so its feature count and size are
what carries the prediction.

The load at which the 100 ms target breaks: open-loop Poisson traffic at rising rates
against the DNN (batch 1 and batch 64), p99 measured from each request's scheduled send
time, each rate in three rounds (medians). Predicted by an M/M/1 queue whose service rate
mu is the capacity, the most requests/s the server achieved: its response time is
exponential with rate mu - lambda, so p99 = ln(100) / (mu - lambda), and 100 ms breaks at
lambda* = mu - 46/s. Service times here vary (two cores shared by client, server and
TensorFlow's threads): an M/D/1 queue (constant service) predicted a p99 two to three
times too low at half load in the runs that chose between them.

Writes bench/results/latency.json and the same tables into docs/BENCHMARKS.md ("Serving
latency budget") and docs/ARCHITECTURE.md ("Latency budget").
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
from bench.common import onednn_off_before_tensorflow

onednn_off_before_tensorflow()

import numpy as np  # noqa: E402

from bench import serving as bench_serving  # noqa: E402
from bench.common import DOCS, write_docs_block, write_results  # noqa: E402
from serving import signatures as sig  # noqa: E402

# Eight of the default spec's features (4 categorical, 4 numeric): the feature-count axis.
FEW_FEATURES = ('gender', 'age_group', 'hour', 'ad_category',
                'feat_0', 'feat_1', 'history_0', 'history_1')
MODELS = {
    'dnn': {},
    'dnn_8_features': {'features': FEW_FEATURES},
    'dnn_wide': {'model_config': {'hidden_units': [1024, 512, 256]}},
    'dcn_v2': {'model': 'dcn_v2'},
}
PARTS = ('decode', 'graph', 'encode')
TARGET_MS = 100.0
LOAD_FRACTIONS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3)   # of the first estimate


# ------------------------------------------------------------------ measurements
def _median_ms(fn, n):
  fn()
  out = []
  for _ in range(n):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return float(np.median(out) * 1e3)


def _request(exs, model_name='ctr'):
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
      req = _request(exs[:b]).SerializeToString()
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

      out[b] = {'decode': _median_ms(decode, n),
                'graph': _median_ms(lambda: s.run_direct({x_full: arr}, [prob.name]), n),
                'encode': _median_ms(encode, n),
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
    return _median_ms(lambda: stub.Predict(req, timeout=60), n)


# ------------------------------------------------------------------ the model
def regressors(part, b, m, p):
  """The x of each part's linear model for batch b of model m (measurements p)."""
  return {'decode': [1.0, p['request_bytes']],
          'graph': [1.0, m['features'], b * m['features'], b * m['dense_parameters']],
          'encode': [1.0, b],
          'network': [1.0, p['request_bytes'] + p['response_bytes']]}[part]


TERMS = {'decode': ('a', 'k per request byte'),
         'graph': ('a: per run', 'c per feature', 'k per batch x feature',
                   'k per batch x dense parameter'),
         'encode': ('a', 'k per example'),
         'network': ('a', 'k per request + response byte')}


def fit(models):
  """{part: coefficients} by non-negative least squares (scipy.optimize.nnls) over every
  model and batch: each part on its own timings, the network on what the end-to-end
  latency leaves after the parts."""
  from scipy.optimize import nnls
  coef = {}
  for part in PARTS + ('network',):
    X, y = [], []
    for m in models.values():
      for b, p in m['parts'].items():
        X.append(regressors(part, b, m, p))
        y.append(p[part] if part != 'network' else m['e2e'][b] - sum(p[k] for k in PARTS))
    X = np.asarray(X)
    scale = np.abs(X).max(axis=0)    # columns of bytes and parameters: keep NNLS conditioned
    coef[part] = [float(v) for v in nnls(X / scale, np.asarray(y))[0] / scale]
  return coef


def predict(coef, b, m, p):
  """Predicted ms of each part, the graph split into its fixed run cost, Transform (the
  feature terms) and model (the dense-parameter term), and the total."""
  out = {part: float(np.dot(coef[part], regressors(part, b, m, p)))
         for part in ('decode', 'encode', 'network')}
  a, c, kf, kp = coef['graph']
  out.update(graph_run=a, transform=c * m['features'] + kf * b * m['features'],
             model=kp * b * m['dense_parameters'])
  out['total'] = sum(out.values())
  return out


SHOWN = ('decode', 'graph_run', 'transform', 'model', 'encode', 'network')


def check(models, coef):
  """Each model x batch: the prediction of the fit on all four models (its breakdown),
  and the held-out prediction, from the fit on the other three models alone."""
  checks = []
  for name, m in models.items():
    held_out = fit({k: v for k, v in models.items() if k != name})
    for b in m['parts']:
      pred = predict(coef, b, m, m['parts'][b])
      out = predict(held_out, b, m, m['parts'][b])['total']
      checks.append({'model': name, 'batch': b, 'predicted': pred, 'measured': m['e2e'][b],
                     'error': pred['total'] / m['e2e'][b] - 1, 'held_out': out,
                     'held_out_error': out / m['e2e'][b] - 1})
      print(name, b, f'fit {pred["total"]:.2f} held out {out:.2f} measured '
            f'{m["e2e"][b]:.2f}', flush=True)
  return checks


# ------------------------------------------------------------------ load
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


def queue_p99_ms(rate, mu):
  """p99 latency (ms) of an M/M/1 queue with service rate ``mu`` at arrival ``rate``: the
  response time is exponential with rate mu - rate, so p99 = ln(100) / (mu - rate); inf
  at or above capacity."""
  if rate >= mu:
    return float('inf')
  return 1e3 * np.log(100) / (mu - rate)


def break_rate(mu, target_ms=TARGET_MS):
  """The arrival rate at which :func:`queue_p99_ms` reaches ``target_ms``."""
  return max(mu - np.log(100) / (target_ms / 1e3), 0.0)


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
  over-state it at batch 64); the predictions use that mu and nothing else."""
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
  mu = max(r['achieved_per_s'] for r in rates)
  for row in rates:
    row['predicted_p99_ms'] = queue_p99_ms(row['offered'], mu)
  over = [r['offered'] for r in rates if r['p99_ms'] > TARGET_MS]
  return {'mu': mu, 'break_predicted': break_rate(mu), 'rates': rates,
          'break_measured': min(over) if over else None}


# ------------------------------------------------------------------ report
def markdown(models, coef, checks, load, command, machine):
  lines = [f'Command: `{command}`. Machine: {machine}. Client and server share the machine\'s '
           'cores; latencies are medians of sequential requests (one in flight).', '',
           'Fitted parts (ms):', '', '| part | coefficients |', '|---|---|']
  for part in PARTS + ('network',):
    lines.append(f'| {part} | ' + ', '.join(f'{name} = {v:.3g}' for name, v in
                                           zip(TERMS[part], coef[part])) + ' |')
  lines += ['', 'Measured (ms, medians; the fit\'s input):', '',
            '| model | features | dense parameters | batch | request bytes | decode | graph '
            '| encode | end to end |', '|---|---|---|---|---|---|---|---|---|']
  for name, m in models.items():
    for b, p in m['parts'].items():
      lines.append(f'| {name} | {m["features"]} | {m["dense_parameters"]:,} | {b} | '
                   f'{p["request_bytes"]:,} | {p["decode"]:.3f} | {p["graph"]:.2f} | '
                   f'{p["encode"]:.3f} | {m["e2e"][b]:.2f} |')
  lines += ['', 'Predicted against measured (gRPC Predict, end to end, ms). The breakdown and '
            '"predicted" are the fit on all four models; "held out" predicts each model from '
            'the fit on the other three alone:', '',
            '| model | batch | decode | graph run | transform | model | encode | network '
            '| predicted | error | held out | error | measured |',
            '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for c in checks:
    p = c['predicted']
    lines.append(f'| {c["model"]} | {c["batch"]} | ' + ' | '.join(
        f'{p[k]:.2f}' for k in SHOWN) +
        f' | {p["total"]:.2f} | {c["error"]:+.0%} | {c["held_out"]:.2f} | '
        f'{c["held_out_error"]:+.0%} | {c["measured"]:.2f} |')
  errs = np.abs([c['error'] for c in checks])
  held = np.abs([c['held_out_error'] for c in checks])
  lines += ['', f'Mean absolute error {errs.mean():.0%} (largest {errs.max():.0%}) for the fit, '
            f'{held.mean():.0%} (largest {held.max():.0%}) held out, over {len(checks)} cells.',
            '',
            'Load against the 100 ms p99 target (open-loop Poisson, DNN):', '',
            '| batch | capacity mu (req/s) | predicted break (req/s) | offered req/s '
            '| achieved req/s | p50 ms | p99 ms (median) | p99 of the 3 rounds | predicted p99 ms '
            '| failed requests |', '|---|---|---|---|---|---|---|---|---|---|']
  for b, l in load.items():
    for r in l['rates']:
      lines.append(f'| {b} | {l["mu"]:.0f} | {l["break_predicted"]:.0f} | {r["offered"]:.0f} '
                   f'| {r["achieved_per_s"]:.0f} | {r["p50_ms"]:.1f} | {r["p99_ms"]:.1f} | '
                   + ', '.join(f'{v:.0f}' for v in r.get('p99_runs_ms', [])) + ' | '
                   + (f'{r["predicted_p99_ms"]:.1f}' if np.isfinite(r['predicted_p99_ms'])
                      else 'unstable') + f' | {r.get("failed", 0)} |')
    lines.append(f'| {b} | | measured break: '
                 + (f'{l["break_measured"]:.0f} req/s' if l['break_measured'] else
                    'not reached') + ' | | | | | | | |')
  return '\n'.join(lines)


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog='python -m bench.latency',
                              description=__doc__.split('\n\n')[0])
  p.add_argument('--batches', type=int, nargs='+', default=[1, 16, 64, 256])
  p.add_argument('--requests', type=int, default=200, help='timed calls per cell')
  p.add_argument('--load-seconds', type=float, default=5.0,
                 help='seconds per offered rate and round (3 rounds)')
  p.add_argument('--rows', type=int, default=30_000, help='generated rows to train on')
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  from bench.fixtures import write_ctr_model
  import json
  work = tempfile.mkdtemp(prefix='bench_latency_')
  n = args.requests
  try:
    models, load = {}, {}
    for name, kw in MODELS.items():
      print(f'training {name}', flush=True)
      d, _, spec = write_ctr_model(os.path.join(work, name), rows=args.rows, train_steps=40,
                                   **kw)
      with open(os.path.join(work, name, 'trainer', 'model_run', 'trainer_report.json')) as f:
        report = json.load(f)
      base = os.path.join(work, 'serving', name)
      shutil.copytree(d, os.path.join(base, '1'))
      exs = bench_serving.examples(os.path.join(base, '1'), max(args.batches))
      m = models[name] = {
          'base': base, 'exs': exs, 'features': len(spec.feature_names),
          'dense_parameters': report['dense_parameters'],
          'parts': parts(os.path.join(base, '1'), exs, args.batches, n), 'e2e': {}}
      print(name, json.dumps(m['parts']), flush=True)
      server = bench_serving.Server(base, work)
      try:
        for b in args.batches:
          m['e2e'][b] = end_to_end(server.port, _request(exs[:b]), max(20, n // (1 + b // 64)))
        print(name, 'end to end', m['e2e'], flush=True)
        if name == 'dnn':
          for b in (1, 64):
            load[b] = load_test(server.port, _request(exs[:b]), args.load_seconds)
      finally:
        server.stop()
    coef = fit(models)
    print('coefficients', coef, flush=True)
    checks = check(models, coef)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  rows = []
  for part, values in coef.items():
    rows += [{'dataset': 'default_generated', 'model': 'latency_model',
              'metric': f'{part}: {name}', 'value': v, 'unit': 'ms'}
             for name, v in zip(TERMS[part], values)]
  for name, m in models.items():
    for b, p in m['parts'].items():
      rows += [{'dataset': 'default_generated', 'model': name, 'batch': b,
                'metric': f'{part}_ms', 'value': round(p[part], 4), 'unit': 'ms'}
               for part in PARTS]
      rows += [{'dataset': 'default_generated', 'model': name, 'batch': b, 'metric': k,
                'value': p[k], 'unit': 'bytes'} for k in ('request_bytes', 'response_bytes')]
    rows += [{'dataset': 'default_generated', 'model': name, 'metric': 'dense_parameters',
              'value': m['dense_parameters'], 'unit': 'parameters'},
             {'dataset': 'default_generated', 'model': name, 'metric': 'features',
              'value': m['features'], 'unit': 'features'}]
  for c in checks:
    for metric, value in (('predicted_ms', c['predicted']['total']),
                          ('measured_ms', c['measured']), ('error', c['error']),
                          ('held_out_predicted_ms', c['held_out']),
                          ('held_out_error', c['held_out_error'])):
      rows.append({'dataset': 'default_generated', 'model': c['model'], 'batch': c['batch'],
                   'metric': metric, 'value': round(float(value), 4),
                   'unit': 'ratio' if metric.endswith('error') else 'ms'})
  for b, l in load.items():
    rows += [{'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'saturated_requests_per_s', 'value': l['mu'], 'unit': 'requests/s'},
             {'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'break_100ms_predicted', 'value': l['break_predicted'],
              'unit': 'requests/s'},
             {'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
              'metric': 'break_100ms_measured', 'value': l['break_measured'],
              'unit': 'requests/s'}]
    for r in l['rates']:
      rows += [{'dataset': 'default_generated', 'model': 'dnn', 'batch': b,
                'metric': f'{k}_at_offered_rate', 'offered_per_s': round(r['offered'], 1),
                'value': r[k], 'unit': 'requests/s' if k == 'achieved_per_s' else 'ms'}
               for k in ('p50_ms', 'p99_ms', 'predicted_p99_ms', 'achieved_per_s')]
  path = write_results('latency', rows)
  print(path)
  if not args.no_docs:
    with open(path) as f:
      doc = json.load(f)
    text = markdown(models, coef, checks, load, doc['command'], doc['machine'])
    write_docs_block('latency', text, 'Serving latency budget (`bench/latency`)')
    # The same tables in the architecture document's latency section (its markers).
    write_docs_block('latency', text, 'Latency budget',
                     os.path.join(os.path.dirname(DOCS), 'ARCHITECTURE.md'))


if __name__ == '__main__':
  main()
