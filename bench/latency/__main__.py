"""python -m bench.latency: train the four models, measure them, fit the model, report
(see the package's docstring)."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
from bench.common import onednn_off_before_tensorflow

onednn_off_before_tensorflow()

from bench import latency  # noqa: E402
from bench import serving as bench_serving  # noqa: E402
from bench.common import DOCS, write_docs_block, write_results  # noqa: E402
from bench.latency import measure, model, report  # noqa: E402


def main(argv=None) -> None:
  p = argparse.ArgumentParser(prog='python -m bench.latency',
                              description=latency.__doc__.split('\n\n')[0])
  p.add_argument('--batches', type=int, nargs='+', default=[1, 16, 64, 256])
  p.add_argument('--requests', type=int, default=200, help='timed calls per cell')
  p.add_argument('--load-seconds', type=float, default=5.0,
                 help='seconds per offered rate and round (3 rounds)')
  p.add_argument('--rows', type=int, default=30_000, help='generated rows to train on')
  p.add_argument('--no-docs', action='store_true')
  args = p.parse_args(argv)
  from bench.fixtures import write_ctr_model
  work = tempfile.mkdtemp(prefix='bench_latency_')
  n = args.requests
  try:
    models, load = {}, {}
    for name, kw in measure.MODELS.items():
      print(f'training {name}', flush=True)
      d, _, spec = write_ctr_model(os.path.join(work, name), rows=args.rows, train_steps=40,
                                   **kw)
      with open(os.path.join(work, name, 'trainer', 'model_run', 'trainer_report.json')) as f:
        trained = json.load(f)
      base = os.path.join(work, 'serving', name)
      shutil.copytree(d, os.path.join(base, '1'))
      exs = bench_serving.examples(os.path.join(base, '1'), max(args.batches))
      m = models[name] = {
          'base': base, 'exs': exs, 'features': len(spec.feature_names),
          'dense_parameters': trained['dense_parameters'],
          'parts': measure.parts(os.path.join(base, '1'), exs, args.batches, n), 'e2e': {}}
      print(name, json.dumps(m['parts']), flush=True)
      server = bench_serving.Server(base, work)
      try:
        for b in args.batches:
          m['e2e'][b] = measure.end_to_end(server.port, measure.request(exs[:b]),
                                           max(20, n // (1 + b // 64)))
        print(name, 'end to end', m['e2e'], flush=True)
        if name == 'dnn':
          for b in (1, 64):
            measured = measure.load_test(server.port, measure.request(exs[:b]),
                                         args.load_seconds)
            load[b] = model.predict_load(measured)
      finally:
        server.stop()
    coef = model.fit(models)
    print('coefficients', coef, flush=True)
    checks = model.check(models, coef)
  finally:
    shutil.rmtree(work, ignore_errors=True)
  rows = report.result_rows(models, coef, checks, load)
  path = write_results('latency', rows)
  print(path)
  if not args.no_docs:
    with open(path) as f:
      doc = json.load(f)
    text = report.markdown(models, coef, checks, load, doc['command'], doc['machine'])
    write_docs_block('latency', text, 'Serving latency budget (`bench/latency`)')
    # The same tables in the architecture document's latency section (its markers).
    write_docs_block('latency', text, 'Latency budget',
                     os.path.join(os.path.dirname(DOCS), 'ARCHITECTURE.md'))


if __name__ == '__main__':
  main()
