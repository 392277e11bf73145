"""The file system side of serving: which versions under a model's base path are ready to
load, read again every few seconds (TF Serving's ``FileSystemStoragePathSource``).

* a version directory is a non-negative integer; it is ready once ``saved_model.pb`` (or
  ``.pbtxt``) is in it, and the Pusher writes that file last;
* a version's stamp is that file's mtime, so a failed version is retried only when a new
  file replaces it.

What to load and unload from this is the manager's (``serving/manager.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, List, Optional

SAVED_MODEL_FILES = ('saved_model.pb', 'saved_model.pbtxt')

log = logging.getLogger('serving')


def is_loadable(version_dir: str) -> bool:
  """A version may load once its SavedModel file is present (the Pusher writes it last)."""
  return any(os.path.isfile(os.path.join(version_dir, f)) for f in SAVED_MODEL_FILES)


def saved_model_stamp(version_dir: str) -> Optional[float]:
  """The mtime of the version's SavedModel file; None while it has none."""
  for f in SAVED_MODEL_FILES:
    p = os.path.join(version_dir, f)
    if os.path.isfile(p):
      return os.path.getmtime(p)
  return None


def ready_versions(base_path: str) -> List[int]:
  """The versions under ``base_path`` that may load, unsorted; ``OSError`` when the base
  path cannot be read."""
  return [int(entry) for entry in os.listdir(base_path)
          if entry.isdigit() and is_loadable(os.path.join(base_path, entry))]


class PollThread:
  """Calls ``poll`` every ``seconds`` on a daemon thread until ``stop``; an exception in
  one poll is logged and the next poll still runs. ``seconds <= 0``: no thread."""

  def __init__(self, poll: Callable[[], None], seconds: float):
    self._poll = poll
    self.seconds = seconds
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None

  def start(self) -> None:
    if self.seconds > 0:
      self._thread = threading.Thread(target=self._loop, name='model-poll', daemon=True)
      self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=30)

  def _loop(self) -> None:
    while not self._stop.wait(self.seconds):
      try:
        self._poll()
      except Exception:  # a poll must never kill the thread
        log.exception('model poll failed')
