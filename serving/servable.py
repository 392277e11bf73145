"""One loaded model version: a SavedModel in a TensorFlow session, run by signature.

Loaded the way ``tensorflow_model_server`` loads it (``SavedModelBundle``): the
``serve``-tagged MetaGraph is imported into a session, its init op runs (tables, assets),
and requests are ``Session::Run`` calls on the tensors a ``SignatureDef`` names. That keeps
every signature, including those whose method is classify or regress, callable with TF
Serving's semantics, and lets ``output_filter`` fetch only what it asks for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from serving import errors

WARMUP_FILE = os.path.join('assets.extra', 'tf_serving_warmup_requests')

log = logging.getLogger('serving')

# Held around every Session::Run while oneDNN is on (see onednn_enabled).
_ONEDNN_RUN_LOCK = threading.Lock()


def onednn_enabled() -> bool:
  """Whether this process's TensorFlow runs oneDNN kernels (``TF_ENABLE_ONEDNN_OPTS``,
  read once when TensorFlow is imported).

  TF 2.16's oneDNN kernels are not safe under concurrent ``Session::Run`` calls on the
  CTR models' attention graphs at varying batch sizes: the heap is corrupted and the process
  aborts (``free(): invalid pointer``; reproduced in ``bench/serving_stress.py``). TFX 1.16
  pins TF 2.16, so where oneDNN is on (a server embedded in a process that imported
  TensorFlow first, such as the infra validator or the tests) model runs are serialized
  process-wide. ``python -m serving`` turns oneDNN off and runs concurrently.
  """
  from tensorflow.python.util import _pywrap_util_port
  return bool(_pywrap_util_port.IsMklEnabled())


class Servable:
  """A SavedModel version, ready for ``run`` calls from many threads."""

  def __init__(self, name: str, version: int, path: str, intra_op_threads: int = 0,
               inter_op_threads: int = 0):
    self.name = name
    self.version = version
    self.path = path
    self._config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        allow_soft_placement=True)
    self.graph: Optional[tf.Graph] = None
    self.session: Optional[tf.compat.v1.Session] = None
    self.signatures: Dict[str, object] = {}
    self.batcher = None  # serving.batching.BatchScheduler, set by the server core
    self.metrics = None  # serving.metrics.Metrics, set by the server core
    self._callables: Dict[tuple, object] = {}
    self._run_lock = _ONEDNN_RUN_LOCK if onednn_enabled() else contextlib.nullcontext()
    self._lock = threading.Lock()
    self._refs = 0
    self._idle = threading.Condition(self._lock)

  def load(self) -> None:
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=self._config)
    try:
      with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(
            session, [tf.saved_model.SERVING], self.path)
    except BaseException:
      session.close()
      raise
    self.graph, self.session = graph, session
    # Every SignatureDef, ``__saved_model_init_op`` included, as TF Serving keeps them.
    self.signatures = dict(meta_graph.signature_def)

  def close(self) -> None:
    if self.session is not None:
      self.session.close()
    self.session = None
    self._callables.clear()

  # Reference counting: a request holds the servable; unloading waits for it.
  def acquire(self) -> None:
    with self._lock:
      self._refs += 1

  def release(self) -> None:
    with self._lock:
      self._refs -= 1
      if self._refs == 0:
        self._idle.notify_all()

  def wait_idle(self, timeout: Optional[float] = None) -> bool:
    with self._lock:
      return self._idle.wait_for(lambda: self._refs == 0, timeout)

  def _callable(self, feeds: Sequence[str], fetches: Sequence[str]):
    key = (tuple(feeds), tuple(fetches))
    fn = self._callables.get(key)
    if fn is None:
      with self._lock:
        fn = self._callables.get(key)
        if fn is None:
          fn = self.session.make_callable(list(fetches), feed_list=list(feeds))
          self._callables[key] = fn
    return fn

  def run_direct(self, feeds: Dict[str, np.ndarray], fetches: List[str]) -> List[np.ndarray]:
    """``Session::Run`` on tensor names; TF errors keep their code and message."""
    if self.session is None:
      raise errors.unavailable(f'Servable {self.name} version {self.version} is unloaded')
    names = list(feeds)
    try:
      fn = self._callable(names, fetches)
      with self._run_lock:
        return list(fn(*[feeds[n] for n in names]))
    except tf.errors.OpError as e:
      raise errors.from_tf_error(e) from None
    except (TypeError, ValueError) as e:
      raise errors.invalid_argument(str(e)) from None

  def run(self, feeds: Dict[str, np.ndarray], fetches: List[str],
          api: str = 'Predict') -> List[np.ndarray]:
    """Runs through the server's batch scheduler when batching is on."""
    started = time.perf_counter()
    if self.batcher is not None:
      out = self.batcher.run(self, feeds, fetches)
    else:
      out = self.run_direct(feeds, fetches)
    if self.metrics is not None:
      examples = next(iter(feeds.values())).shape[0] if feeds else 0
      self.metrics.record_runtime(self.name, api, (time.perf_counter() - started) * 1e6,
                                  examples if api != 'Predict' else 0)
    return out

  def warmup_file(self) -> Optional[str]:
    path = os.path.join(self.path, WARMUP_FILE)
    return path if os.path.isfile(path) else None
