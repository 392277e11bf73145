"""Server-side batching of concurrent requests, configured by TF Serving's
``BatchingParameters`` (:class:`serving.config.BatchingParameters`).

As in TF Serving's ``BatchingSession``: requests to one servable with the same feeds and
fetches wait in one queue; a batch thread takes a batch when it holds ``max_batch_size``
examples or when its oldest request has waited ``batch_timeout_micros``; the inputs are
concatenated along dimension 0, padded up to the next ``allowed_batch_sizes`` entry by
repeating the first row, run once, and the outputs are split back per request. A full queue
(``max_enqueued_batches``) answers UNAVAILABLE; a request larger than a batch is refused,
or split when ``enable_large_batch_splitting`` is on.

One difference, on purpose: requests whose non-batch dimensions differ get separate queues
instead of failing each other's batch (TF Serving fails the whole batch unless
``pad_variable_length_inputs`` is set).
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Deque, Dict, List, Optional

import numpy as np

from serving import errors
from serving.config import BatchingParameters


class _Task:
  __slots__ = ('feeds', 'size', 'done', 'result', 'error', 'arrival')

  def __init__(self, feeds: Dict[str, np.ndarray], size: int):
    self.feeds = feeds
    self.size = size
    self.done = threading.Event()
    self.result: Optional[List[np.ndarray]] = None
    self.error: Optional[BaseException] = None
    self.arrival = time.monotonic()


class _Queue:
  def __init__(self, servable, feed_names, fetches):
    self.servable = servable
    self.feed_names = feed_names
    self.fetches = fetches
    self.tasks: Deque[_Task] = collections.deque()
    self.size = 0


class BatchScheduler:
  """Shared batch threads over per-(servable, signature) queues."""

  def __init__(self, params: BatchingParameters, on_batch=None):
    self.params = params
    self._on_batch = on_batch   # callback(batch_size, padded_size) for metrics
    self._queues: Dict[tuple, _Queue] = {}
    self._cond = threading.Condition()
    self._running = True
    self._timeout = params.batch_timeout_micros / 1e6
    self._max = params.execution_batch_size
    self._threads = [threading.Thread(target=self._loop, name=f'batch-{i}', daemon=True)
                     for i in range(params.num_batch_threads)]
    for t in self._threads:
      t.start()

  def stop(self) -> None:
    with self._cond:
      self._running = False
      self._cond.notify_all()
    for t in self._threads:
      t.join(timeout=5)

  # ------------------------------------------------------------------ submit
  def run(self, servable, feeds: Dict[str, np.ndarray], fetches: List[str]) -> List[np.ndarray]:
    sizes = set()
    for value in feeds.values():
      if value.ndim == 0:
        raise errors.invalid_argument(
            'Batching Run() input tensors must have at least one dimension')
      sizes.add(value.shape[0])
    if len(sizes) != 1:
      raise errors.invalid_argument(
          'Batching Run() input tensors must have equal 0th-dimension size')
    size = sizes.pop()
    if size > self._max:
      if not self.params.enable_large_batch_splitting:
        raise errors.invalid_argument(
            f'Task size {size} is larger than maximum input batch size {self._max}')
      parts = [self.run(servable, {k: v[i:i + self._max] for k, v in feeds.items()}, fetches)
               for i in range(0, size, self._max)]
      return [np.concatenate([p[j] for p in parts]) for j in range(len(fetches))]
    if size == 0:
      return servable.run_direct(feeds, fetches)
    names = tuple(sorted(feeds))
    key = (id(servable), names, tuple(fetches),
           tuple(feeds[n].shape[1:] for n in names))
    task = _Task(feeds, size)
    with self._cond:
      if not self._running:
        raise errors.unavailable('The batch scheduler is stopped')
      queue = self._queues.get(key)
      if queue is None:
        queue = self._queues[key] = _Queue(servable, names, tuple(fetches))
      batches = -(-(queue.size + size) // self._max)
      if batches > self.params.max_enqueued_batches:
        raise errors.unavailable(
            'The batch scheduling queue to which this task was submitted is full')
      queue.tasks.append(task)
      queue.size += size
      self._cond.notify()
    task.done.wait()
    if task.error is not None:
      raise task.error
    return task.result

  # ------------------------------------------------------------------ batch threads
  def _ready_queue(self, now: float):
    """A queue whose batch is full or whose oldest task has waited long enough, and
    the time until the next one will be."""
    best, wait = None, None
    for key, q in self._queues.items():
      if not q.tasks:
        continue
      due = q.tasks[0].arrival + self._timeout
      if q.size >= self._max or due <= now:
        if best is None or q.tasks[0].arrival < self._queues[best].tasks[0].arrival:
          best = key
      else:
        wait = due - now if wait is None else min(wait, due - now)
    return best, wait

  def _loop(self) -> None:
    while True:
      with self._cond:
        while True:
          if not self._running:
            return
          key, wait = self._ready_queue(time.monotonic())
          if key is not None:
            break
          self._cond.wait(wait)
        queue = self._queues[key]
        batch, total = [], 0
        while queue.tasks and (not batch or total + queue.tasks[0].size <= self._max):
          task = queue.tasks.popleft()
          batch.append(task)
          total += task.size
        queue.size -= total
        if not queue.tasks:
          del self._queues[key]
        if queue.tasks or self._queues:
          self._cond.notify()
      self._execute(queue, batch, total)

  def _padded_size(self, total: int) -> int:
    for s in self.params.allowed_batch_sizes:
      if s >= total:
        return s
    return total

  def _execute(self, queue: _Queue, batch: List[_Task], total: int) -> None:
    try:
      padded = self._padded_size(total)
      feeds = {}
      for name in queue.feed_names:
        parts = [t.feeds[name] for t in batch]
        if padded > total:
          first = parts[0][:1]
          parts.append(np.repeat(first, padded - total, axis=0))
        feeds[name] = parts[0] if len(parts) == 1 else np.concatenate(parts)
      outputs = queue.servable.run_direct(feeds, list(queue.fetches))
      if self._on_batch is not None:
        self._on_batch(total, padded)
      for value in outputs:
        if value.ndim == 0 or value.shape[0] != padded:
          raise errors.internal(
              f'Batched output tensor has 0th dimension '
              f'{value.shape[0] if value.ndim else 0} which doesn\'t match batch size '
              f'{padded}')
      offset = 0
      for task in batch:
        task.result = [v[offset:offset + task.size] for v in outputs]
        offset += task.size
    except BaseException as e:  # every waiting request gets the batch's error
      for task in batch:
        task.error = e
    finally:
      for task in batch:
        task.done.set()
