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


def onednn_off_before_tensorflow() -> None:
  """Turns TensorFlow's oneDNN kernels off, as ``python -m serving`` does, where TensorFlow
  is not imported yet; otherwise leaves them as they are.

  TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` when it loads, and
  ``serving.servable.onednn_enabled`` reads it again on its first call. Set after the
  import, the variable made that check say off while the loaded kernels were on; the
  embedded server then ran models concurrently, and a test process that imported a
  serving benchmark after TensorFlow aborted under load (2026-12-07)."""
  if 'tensorflow' not in sys.modules:
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')


def machine() -> str:
  mem = ''
  try:
    with open('/proc/meminfo') as f:
      mem = f'{int(f.readline().split()[1]) / 2**20:.0f} GiB, '
  except OSError:
    pass
  return f'{os.cpu_count()} CPUs, {mem}{platform.machine()}, Python {platform.python_version()}'


def write_results(benchmark: str, results: list, merge_by: str = '', module: str = '') -> str:
  """Writes the results (``module``: the bench module that ran, where ``benchmark``, the
  file's name, is another). With ``merge_by`` (e.g. ``dataset``), rows of the existing file
  whose ``merge_by`` value this run did not produce are kept, and ``commands`` records
  the command and date that produced each value."""
  os.makedirs(RESULTS_DIR, exist_ok=True)
  path = os.path.join(RESULTS_DIR, f'{benchmark}.json')
  command = 'python -m ' + ' '.join([f'bench.{module or benchmark}'] + sys.argv[1:])
  date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
  doc = {'benchmark': benchmark, 'command': command, 'date': date, 'machine': machine(),
         'results': results}
  if merge_by:
    new = {r[merge_by] for r in results}
    old = {}
    if os.path.isfile(path):
      with open(path) as f:
        old = json.load(f)
    kept = [r for r in old.get('results', []) if r.get(merge_by) not in new]
    commands = {k: v for k, v in old.get('commands', {}).items() if k not in new}
    for r in kept:  # files written before 'commands' existed: their run's command
      commands.setdefault(r[merge_by], {'command': old.get('command'), 'date': old.get('date')})
    commands.update({k: {'command': command, 'date': date} for k in new})
    doc.update(results=kept + results, commands=commands)
  with open(path, 'w') as f:
    json.dump(doc, f, indent=1)
  return path


DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs',
                    'BENCHMARKS.md')


def write_docs_block(benchmark: str, text: str, heading: str, path: str = DOCS) -> None:
  """Replaces the text between ``<!-- bench.<benchmark>:start -->`` and ``:end -->`` in
  docs/BENCHMARKS.md, or appends the block under ``heading`` when the markers are absent."""
  start, end = f'<!-- bench.{benchmark}:start -->', f'<!-- bench.{benchmark}:end -->'
  with open(path, encoding='utf-8') as f:
    doc = f.read()
  block = f'{start}\n{text}\n{end}'
  if start in doc and end in doc:
    doc = doc[:doc.index(start)] + block + doc[doc.index(end) + len(end):]
  else:
    doc = doc.rstrip('\n') + f'\n\n## {heading}\n\n' + block + '\n'
  with open(path, 'w', encoding='utf-8') as f:
    f.write(doc)
