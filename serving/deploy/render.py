"""Render TF Serving's config files from the pipeline's push destination.

    python -m serving deploy --serving-dir workdir/serving --out serving/deploy/config

finds every model under ``--serving-dir`` (a folder per model name holding numbered
versions, the Pusher's layout; or ``--model NAME`` for models not pushed yet) and writes:

* ``models.config``: a ``model_config_list`` whose base paths are
  ``<--models-root>/<name>`` (``/models`` inside the container, where the serving dir is
  mounted);
* ``batching.config``: ``BatchingParameters`` for ``--enable_batching``;
* ``monitoring.config``: Prometheus at ``/monitoring/prometheus/metrics``.
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, List, Optional

from serving.config import (BatchingParameters, MonitoringConfig, model_server_config_text,
                            parse_model_server_config)

MODELS_CONFIG = 'models.config'
BATCHING_CONFIG = 'batching.config'
MONITORING_CONFIG = 'monitoring.config'
CONTAINER_MODELS_ROOT = '/models'

# Serving defaults for CTR models on CPU: requests of a few rows meet in batches of up to
# 256 within 1 ms; the sizes bound padding to at most 2x (and the compiled shapes to 6).
PRODUCTION_BATCHING = BatchingParameters(
    max_batch_size=256, batch_timeout_micros=1000, max_enqueued_batches=1000,
    num_batch_threads=4, allowed_batch_sizes=(8, 16, 32, 64, 128, 256))


def pushed_models(serving_dir: str) -> List[str]:
  """Model names under a push destination: folders holding numbered version folders."""
  if not os.path.isdir(serving_dir):
    return []
  names = []
  for name in sorted(os.listdir(serving_dir)):
    path = os.path.join(serving_dir, name)
    if os.path.isdir(path) and any(v.isdigit() for v in os.listdir(path)):
      names.append(name)
  return names


def render(out_dir: str, models: List[str], models_root: str = CONTAINER_MODELS_ROOT,
           labels: Optional[Dict[str, Dict[str, int]]] = None, latest: int = 1,
           batching: BatchingParameters = PRODUCTION_BATCHING,
           monitoring: MonitoringConfig = MonitoringConfig()) -> Dict[str, str]:
  """Writes the three files; returns {file name: path}."""
  if not models:
    raise ValueError('no models to serve: push one first, or name it with --model')
  os.makedirs(out_dir, exist_ok=True)
  root = models_root.rstrip('/')
  text = model_server_config_text({m: f'{root}/{m}' for m in models}, labels, latest)
  parse_model_server_config(text)   # what we write must read back
  files = {MODELS_CONFIG: text, BATCHING_CONFIG: batching.to_text(),
           MONITORING_CONFIG: monitoring.to_text()}
  paths = {}
  for name, content in files.items():
    paths[name] = os.path.join(out_dir, name)
    with open(paths[name], 'w') as f:
      f.write(content)
  return paths


def add_arguments(p: argparse.ArgumentParser) -> None:
  p.add_argument('--serving-dir', default='workdir/serving',
                 help="the pipeline's push destination (default workdir/serving)")
  p.add_argument('--model', action='append', default=[],
                 help='model name to serve (repeatable; default: every pushed model)')
  p.add_argument('--out', default='serving/deploy/config', help='output folder')
  p.add_argument('--models-root', default=CONTAINER_MODELS_ROOT,
                 help='where the serving dir is seen by the server (default /models, the '
                      'container mount; give the absolute serving dir for a local server)')
  p.add_argument('--latest', type=int, default=1, help='versions to keep loaded per model')
  p.add_argument('--label', action='append', default=[],
                 help='version label MODEL:LABEL=VERSION (repeatable)')


def main(args) -> int:
  models = args.model or pushed_models(args.serving_dir)
  labels: Dict[str, Dict[str, int]] = {}
  for item in args.label:
    try:
      model, rest = item.split(':', 1)
      label, version = rest.split('=', 1)
      labels.setdefault(model, {})[label] = int(version)
    except ValueError:
      raise SystemExit(f'--label takes MODEL:LABEL=VERSION, got {item!r}') from None
  try:
    paths = render(args.out, models, args.models_root, labels, args.latest)
  except ValueError as e:
    raise SystemExit(f'error: {e} (serving dir {args.serving_dir})') from None
  for name, path in paths.items():
    print(f'wrote {path}')
  return 0
