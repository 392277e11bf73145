"""``python -m serving COMMAND``: serve, predict, batch-predict, deploy.

    python -m serving serve --model_name=ctr --model_base_path=$PWD/workdir/serving/ctr
    python -m serving predict --model ctr --input rows.jsonl [--server localhost:8500]
    python -m serving batch-predict --model-dir workdir/serving/ctr --input data.parquet \\
        --output predictions.jsonl
    python -m serving deploy --serving-dir workdir/serving --out serving/deploy/config
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from serving import signatures as sig

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Before TensorFlow is imported: TF 2.16's oneDNN CPU kernels corrupt the heap when one
# graph with Keras attention (Einsum / batch matmul) runs concurrently at varying batch
# sizes; the server then aborts with "free(): invalid pointer" (docs/SERVING.md, "oneDNN").
# TF_ENABLE_ONEDNN_OPTS=1 turns it back on, and then the server serializes model runs
# (serving.servable.onednn_enabled).
if __name__ == '__main__':   # only in the server's own process, never in an importer's
  os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')


def _predict(args) -> int:
  from serving import json_response
  from serving.client import PredictionClient
  from serving.errors import ServingError
  target = args.server or ('localhost:8501' if args.protocol == 'rest' else 'localhost:8500')
  rows = []
  try:
    with (sys.stdin if args.input == '-' else open(args.input)) as f:
      for number, line in enumerate(f, 1):
        if line.strip():
          try:
            row = json.loads(line)
          except json.JSONDecodeError as e:
            print(f'error: {args.input} line {number}: not JSON ({e.msg})', file=sys.stderr)
            return 2
          if not isinstance(row, dict):
            print(f'error: {args.input} line {number}: expected a JSON object of features',
                  file=sys.stderr)
            return 2
          rows.append(row)
  except OSError as e:
    print(f'error: cannot read {args.input}: {e}', file=sys.stderr)
    return 2
  if not rows:
    print(f'error: {args.input} has no rows', file=sys.stderr)
    return 2
  out = sys.stdout if args.output == '-' else open(args.output, 'w')
  try:
    with PredictionClient(target, args.model, protocol=args.protocol, version=args.version,
                          label=args.label, signature=args.signature) as client:
      for start in range(0, len(rows), args.batch_size):
        chunk = rows[start:start + args.batch_size]
        features = [{k: v for k, v in r.items() if k != args.key} for r in chunk]
        result = client.predict(features, output_filter=args.output_filter or ())
        for i, row in enumerate(chunk):
          record = {args.key: row.get(args.key, start + i)}
          for name, values in sorted(result.items()):
            record[name] = json_response.row_value(values[i])
          out.write(json.dumps(record) + '\n')
  except ServingError as e:
    print(f'error: {e.code.name}: {e.message}', file=sys.stderr)
    return 1
  finally:
    if out is not sys.stdout:
      out.close()
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m serving', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest='command', required=True)

  from serving import server
  p = sub.add_parser('serve', help='run the embedded model server (TF Serving flags)')
  server.add_arguments(p)

  p = sub.add_parser('predict', help='score JSON-lines rows against a running server')
  p.add_argument('--model', required=True, help='model name on the server')
  p.add_argument('--input', required=True, help='JSON lines, one object of raw features per '
                                                'line ("-" for stdin)')
  p.add_argument('--output', default='-', help='JSON lines of predictions (default stdout)')
  p.add_argument('--server', default='', help='host:port (default localhost:8500 for gRPC, '
                                              'localhost:8501 for REST)')
  p.add_argument('--protocol', choices=['grpc', 'rest'], default='grpc')
  p.add_argument('--version', type=int, default=None)
  p.add_argument('--label', default=None)
  p.add_argument('--signature', default=sig.DEFAULT)
  p.add_argument('--key', default='row_id',
                 help='field that identifies a row; copied to the output, never sent as a '
                      'feature (default row_id; the line number when absent)')
  p.add_argument('--output-filter', action='append', default=[],
                 help='only this output (repeatable)')
  p.add_argument('--batch-size', type=int, default=256)

  from serving import batch
  p = sub.add_parser('batch-predict', help='offline scoring of CSV/Parquet with Beam')
  batch.add_arguments(p)

  from serving.deploy import render
  p = sub.add_parser('deploy', help='render models.config, batching and monitoring configs')
  render.add_arguments(p)

  args = parser.parse_args(argv)
  if args.command == 'serve':
    return server.serve(args)
  if args.command == 'predict':
    if args.batch_size <= 0:
      parser.error('--batch-size must be positive')
    return _predict(args)
  if args.command == 'batch-predict':
    return batch.main(args)
  return render.main(args)


if __name__ == '__main__':
  sys.exit(main())
