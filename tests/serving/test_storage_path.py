"""serving/storage_path.py: which version folders are ready, their stamps, and the poll
thread that outlives a failing poll."""
import os
import threading

import pytest

from serving import storage_path


def _version(base, name, files):
  folder = base / name
  folder.mkdir()
  for f in files:
    (folder / f).write_bytes(b'x')
  return folder


def test_ready_versions_are_numeric_folders_with_a_saved_model(tmp_path):
  _version(tmp_path, '1', ['saved_model.pb'])
  _version(tmp_path, '2', ['variables.index'])          # the Pusher has not finished
  _version(tmp_path, '3', ['saved_model.pbtxt'])
  _version(tmp_path, '10', ['saved_model.pb'])
  _version(tmp_path, 'latest', ['saved_model.pb'])      # not a version number
  _version(tmp_path, '-4', ['saved_model.pb'])
  (tmp_path / '7').write_bytes(b'a file, not a folder')
  assert sorted(storage_path.ready_versions(str(tmp_path))) == [1, 3, 10]
  assert storage_path.is_loadable(str(tmp_path / '3'))
  assert not storage_path.is_loadable(str(tmp_path / '2'))
  with pytest.raises(OSError):
    storage_path.ready_versions(str(tmp_path / 'gone'))


def test_stamp_is_the_saved_model_files_mtime(tmp_path):
  folder = _version(tmp_path, '1', [])
  assert storage_path.saved_model_stamp(str(folder)) is None
  pb = folder / 'saved_model.pb'
  pb.write_bytes(b'first')
  os.utime(pb, (1_000_000, 1_000_000))
  assert storage_path.saved_model_stamp(str(folder)) == 1_000_000
  os.utime(pb, (2_000_000, 2_000_000))                # a new file replaced it
  assert storage_path.saved_model_stamp(str(folder)) == 2_000_000


def test_poll_thread_survives_a_failing_poll_and_stops():
  calls, done = [], threading.Event()

  def poll():
    calls.append(1)
    if len(calls) == 2:
      raise RuntimeError('a poll that fails')
    if len(calls) >= 4:
      done.set()

  poller = storage_path.PollThread(poll, 0.01)
  poller.start()
  assert done.wait(10), calls                       # polls went on after the failure
  poller.stop()
  stopped = len(calls)
  assert not poller._thread.is_alive()
  done.clear()
  assert not done.wait(0.1) and len(calls) == stopped


def test_no_poll_thread_when_polling_is_off():
  poller = storage_path.PollThread(lambda: None, 0)
  poller.start()
  assert poller._thread is None
  poller.stop()
