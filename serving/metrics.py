"""Prometheus metrics under TF Serving's names, for ``/monitoring/prometheus/metrics``.

TF Serving exports its ``/tensorflow/serving/...`` monitoring cells with ``/`` replaced by
``:`` (``prometheus_exporter.cc``):

* ``:tensorflow:serving:request_count{model_name, status}``: counter; status is the
  canonical code name (``OK``, ``INVALID_ARGUMENT``, ...);
* ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``: histogram of request
  wall time in microseconds, entrypoint ``GRPC`` or ``REST``;
* ``:tensorflow:serving:runtime_latency{model_name, API, runtime}``: histogram of the
  session run alone;
* ``:tensorflow:serving:request_example_count_total{model}``: examples received.

Histograms use TF Serving's buckets (exponential, scale 10, growth 1.8, 33 buckets).
Batching adds ``:tfx_ctr:serving:batch_size`` and ``:tfx_ctr:serving:batch_padding``, ours.

Written here rather than with ``prometheus_client``, whose counters are exposed as
``<name>_total``: dashboards and alerts written for TF Serving would not find them.
"""

from __future__ import annotations

import bisect
import threading
from typing import Dict, List, Tuple

BUCKETS = [10 * 1.8 ** i for i in range(33)]
BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]

REQUEST_COUNT = ':tensorflow:serving:request_count'
REQUEST_LATENCY = ':tensorflow:serving:request_latency'
RUNTIME_LATENCY = ':tensorflow:serving:runtime_latency'
EXAMPLE_COUNT = ':tensorflow:serving:request_example_count_total'
BATCH_SIZE = ':tfx_ctr:serving:batch_size'
BATCH_PADDING = ':tfx_ctr:serving:batch_padding'


def _labels(names: Tuple[str, ...], values: Tuple[str, ...], extra: str = '') -> str:
  parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
  if extra:
    parts.append(extra)
  return '{' + ','.join(parts) + '}' if parts else ''


def _escape(value: str) -> str:
  return str(value).replace('\\', r'\\').replace('"', r'\"').replace('\n', r'\n')


def _num(x: float) -> str:
  return repr(float(x)) if x != int(x) else str(int(x))


class _Counter:
  def __init__(self, name: str, help_: str, labels: Tuple[str, ...]):
    self.name, self.help, self.labels = name, help_, labels
    self.values: Dict[tuple, float] = {}

  def inc(self, values: tuple, amount: float = 1.0) -> None:
    self.values[values] = self.values.get(values, 0.0) + amount

  def render(self, out: List[str]) -> None:
    out.append(f'# HELP {self.name} {self.help}')
    out.append(f'# TYPE {self.name} counter')
    for values, v in sorted(self.values.items()):
      out.append(f'{self.name}{_labels(self.labels, values)} {_num(v)}')


class _Histogram:
  def __init__(self, name: str, help_: str, labels: Tuple[str, ...], buckets: List[float]):
    self.name, self.help, self.labels, self.buckets = name, help_, labels, buckets
    self.values: Dict[tuple, list] = {}

  def observe(self, values: tuple, x: float) -> None:
    cell = self.values.get(values)
    if cell is None:
      cell = self.values[values] = [[0] * (len(self.buckets) + 1), 0.0, 0]
    cell[0][bisect.bisect_left(self.buckets, x)] += 1
    cell[1] += x
    cell[2] += 1

  def render(self, out: List[str]) -> None:
    out.append(f'# HELP {self.name} {self.help}')
    out.append(f'# TYPE {self.name} histogram')
    for values, (counts, total, n) in sorted(self.values.items()):
      running = 0
      for bound, c in zip(self.buckets + [float('inf')], counts):
        running += c
        le = '+Inf' if bound == float('inf') else _num(round(bound, 6))
        extra = 'le="' + le + '"'
        out.append(f'{self.name}_bucket{_labels(self.labels, values, extra)} {running}')
      out.append(f'{self.name}_sum{_labels(self.labels, values)} {_num(total)}')
      out.append(f'{self.name}_count{_labels(self.labels, values)} {n}')


class Metrics:
  """The server's metric cells; thread-safe."""

  def __init__(self):
    self._lock = threading.Lock()
    self.request_count = _Counter(REQUEST_COUNT, 'The total number of requests.',
                                  ('model_name', 'status'))
    self.request_latency = _Histogram(
        REQUEST_LATENCY,
        'Distribution of wall time (in microseconds) for Tensorflow Serving request.',
        ('model_name', 'API', 'entrypoint'), BUCKETS)
    self.runtime_latency = _Histogram(
        RUNTIME_LATENCY, 'Distribution of wall time (in microseconds) for Tensorflow runtime.',
        ('model_name', 'API', 'runtime'), BUCKETS)
    self.examples = _Counter(EXAMPLE_COUNT, 'The total number of tensorflow.Examples.',
                             ('model',))
    self.batch_size = _Histogram(BATCH_SIZE, 'Examples per executed batch.', (),
                                 BATCH_BUCKETS)
    self.batch_padding = _Histogram(BATCH_PADDING, 'Padding rows added per executed batch.',
                                    (), BATCH_BUCKETS)

  def record_request(self, model: str, api: str, entrypoint: str, status: str,
                     micros: float) -> None:
    with self._lock:
      self.request_count.inc((model, status))
      self.request_latency.observe((model, api, entrypoint), micros)

  def record_runtime(self, model: str, api: str, micros: float, examples: int = 0) -> None:
    with self._lock:
      self.runtime_latency.observe((model, api, 'TF1'), micros)
      if examples:
        self.examples.inc((model,), examples)

  def record_batch(self, size: int, padded: int) -> None:
    with self._lock:
      self.batch_size.observe((), size)
      self.batch_padding.observe((), padded - size)

  def render(self) -> str:
    out: List[str] = []
    with self._lock:
      for cell in (self.request_count, self.request_latency, self.runtime_latency,
                   self.examples, self.batch_size, self.batch_padding):
        if cell.values:
          cell.render(out)
    return '\n'.join(out) + '\n'
