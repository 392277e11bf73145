"""The result format every benchmark writes: bench/results/<benchmark>.json.

A JSON object ``{"benchmark", "command", "date", "machine", "results": [...]}``, where
``results`` is a list of flat objects such as
``{"dataset": ..., "model": ..., "metric": ..., "value": ..., "unit": ...}``.
"""
import datetime
import json
import os
import platform
import sys

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def machine() -> str:
  mem = ''
  try:
    with open('/proc/meminfo') as f:
      mem = f'{int(f.readline().split()[1]) / 2**20:.0f} GiB, '
  except OSError:
    pass
  return f'{os.cpu_count()} CPUs, {mem}{platform.machine()}, Python {platform.python_version()}'


def write_results(benchmark: str, results: list) -> str:
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, f'{benchmark}.json')
  doc = {'benchmark': benchmark,
         'command': 'python -m ' + ' '.join([f'bench.{benchmark}'] + sys.argv[1:]),
         'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
         'machine': machine(), 'results': results}
  with open(path, 'w') as f:
    json.dump(doc, f, indent=1)
  return path
