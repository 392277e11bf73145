"""Which model versions are loaded: version policies, labels, and the lifecycle TF Serving
reports (START -> LOADING -> AVAILABLE -> UNLOADING -> END).

Follows ``AspiredVersionsManager`` with the availability-preserving policy, fed by the
versions ``serving/storage_path.py`` finds ready on disk:

* the model's ``model_version_policy`` (``latest {num_versions}``, ``all``, ``specific``)
  picks the aspired versions among the ready ones;
* new aspired versions load (warm-up included) before versions that are no longer aspired
  unload, and an unloading version finishes the requests that hold it;
* a version that fails to load is reported as END with its error and never served; it is
  retried only when its ``saved_model.pb`` changes;
* a base path that cannot be read is reported and changes nothing: loaded versions keep
  serving;
* version labels may only name an AVAILABLE version (unless
  ``allow_version_labels_for_unavailable_models``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from tensorflow_serving.apis import get_model_status_pb2, model_pb2

from serving import errors
from serving.config import ModelServerConfig, aspired_versions, validate_model_server_config
from serving import storage_path
from serving.servable import Servable

State = get_model_status_pb2.ModelVersionStatus.State
log = logging.getLogger('serving')


@dataclasses.dataclass
class VersionRecord:
  state: int = State.START
  error: Optional[errors.ServingError] = None
  servable: Optional[Servable] = None
  stamp: Optional[float] = None     # mtime of saved_model.pb when the load was tried


@dataclasses.dataclass
class ModelRecord:
  config: object                               # ModelConfig
  versions: Dict[int, VersionRecord] = dataclasses.field(default_factory=dict)
  labels: Dict[str, int] = dataclasses.field(default_factory=dict)
  base_path_error: Optional[str] = None


class ModelManager:
  """Loads, serves and unloads model versions for a ``model_config_list``."""

  def __init__(self, config: ModelServerConfig, poll_seconds: float = 1.0,
               allow_labels_for_unavailable: bool = False,
               make_servable: Optional[Callable[[str, int, str], Servable]] = None,
               on_loaded: Optional[Callable[[Servable], None]] = None,
               on_event: Optional[Callable[[str, dict], None]] = None):
    validate_model_server_config(config)
    self.allow_labels_for_unavailable = allow_labels_for_unavailable
    self._make_servable = make_servable or (lambda n, v, p: Servable(n, v, p))
    self._on_loaded = on_loaded
    self._on_event = on_event or (lambda event, fields: None)
    self._lock = threading.RLock()
    self._poll_lock = threading.Lock()
    self._models: Dict[str, ModelRecord] = {}
    self._poller = storage_path.PollThread(self.poll, poll_seconds)
    self._pending_labels: Dict[str, Dict[str, int]] = {}
    self._set_config(config)

  # ----------------------------------------------------------------- lifecycle
  def start(self) -> None:
    """First poll (blocking: initial versions are loaded), labels, then the poll thread."""
    self.poll()
    with self._lock:
      for name, labels in self._pending_labels.items():
        self._apply_labels(name, labels)
      self._pending_labels = {}
    self._poller.start()

  def stop(self) -> None:
    self._poller.stop()
    with self._lock:
      records = [r for m in self._models.values() for r in m.versions.values()]
    for r in records:
      if r.servable is not None:
        r.servable.close()

  # ----------------------------------------------------------------- config
  def _set_config(self, config: ModelServerConfig) -> None:
    """Adds and retires models; their labels wait in ``_pending_labels`` until versions
    have loaded."""
    wanted = {m.name: m for m in config.model_config_list.config}
    with self._lock:
      for name in list(self._models):
        if name not in wanted:
          self._retire_model(name)
      for name, m in wanted.items():
        record = self._models.get(name)
        if record is None:
          self._models[name] = ModelRecord(config=m)
        else:
          record.config = m
        self._pending_labels[name] = dict(m.version_labels)

  def reload(self, config: ModelServerConfig) -> None:
    """``HandleReloadConfigRequest``: new models load, removed ones unload, labels move."""
    validate_model_server_config(config)
    for m in config.model_config_list.config:
      if not os.path.isdir(m.base_path):
        raise errors.invalid_argument(
            f'Could not find base path {m.base_path} for servable {m.name}')
    with self._lock:
      for m in config.model_config_list.config:
        if m.name in self._models:   # labels of a known model are checked before anything moves
          self._check_labels(m.name, dict(m.version_labels))
      self._set_config(config)
    self.poll()
    with self._lock:
      pending, self._pending_labels = self._pending_labels, {}
      for name, labels in pending.items():
        self._apply_labels(name, labels)

  def _check_labels(self, name: str, labels: Dict[str, int]) -> None:
    if self.allow_labels_for_unavailable:
      return
    record = self._models.get(name)
    for label, version in labels.items():
      v = record.versions.get(version) if record else None
      if v is None or v.state != State.AVAILABLE:
        raise errors.failed_precondition(
            f'Request to assign label to version {version} of model {name}, which is not '
            'currently available for inference. Available versions: '
            f'[{", ".join(map(str, self.available_versions(name)))}]')

  def _apply_labels(self, name: str, labels: Dict[str, int]) -> None:
    self._check_labels(name, labels)
    record = self._models.get(name)
    if record is not None:
      record.labels = labels

  # ----------------------------------------------------------------- versions on disk
  def _list_ready(self, record: ModelRecord) -> Optional[List[int]]:
    base = record.config.base_path
    try:
      ready = storage_path.ready_versions(base)
    except OSError as e:
      message = f'Could not read base path {base} for servable {record.config.name}: {e}'
      if record.base_path_error != message:
        log.error(message)
        self._on_event('base_path_error', {'model': record.config.name, 'error': str(e)})
      record.base_path_error = message
      return None
    record.base_path_error = None
    return ready

  def poll(self) -> None:
    with self._poll_lock:
      with self._lock:
        models = list(self._models.values())
      for record in models:
        self._poll_model(record)

  def _poll_model(self, record: ModelRecord) -> None:
    name = record.config.name
    ready = self._list_ready(record)
    if ready is None:
      return
    aspired = aspired_versions(record.config, ready)
    for version in aspired:
      path = os.path.join(record.config.base_path, str(version))
      stamp = storage_path.saved_model_stamp(path)
      with self._lock:
        current = record.versions.get(version)
        if current is not None and current.state in (State.LOADING, State.AVAILABLE):
          continue
        if current is not None and current.error is not None and current.stamp == stamp:
          continue   # failed before, and nothing changed on disk
        current = record.versions[version] = VersionRecord(state=State.LOADING, stamp=stamp)
      self._load(name, version, path, current)
    with self._lock:
      available_aspired = [v for v in aspired
                           if record.versions.get(v) and
                           record.versions[v].state == State.AVAILABLE]
      retire = [v for v, r in record.versions.items()
                if r.state == State.AVAILABLE and v not in aspired and
                (available_aspired or v not in ready)]
    for version in retire:
      self._unload(name, version, record.versions[version])

  def _load(self, name: str, version: int, path: str, record: VersionRecord) -> None:
    started = time.monotonic()
    self._on_event('loading', {'model': name, 'version': version})
    servable = None
    try:
      servable = self._make_servable(name, version, path)
      servable.load()
      if self._on_loaded is not None:
        self._on_loaded(servable)      # warm-up and batching setup
    except Exception as e:  # any load failure is reported, not raised
      if servable is not None:
        servable.close()
      error = e if isinstance(e, errors.ServingError) else errors.ServingError(
          errors.Code.UNKNOWN if not hasattr(e, 'error_code') else
          errors.code_from_number(e.error_code), f'{type(e).__name__}: {e}')
      with self._lock:
        record.state, record.error = State.END, error
      log.error('Loading servable %s version %d failed: %s', name, version, error.message)
      self._on_event('load_failed', {'model': name, 'version': version,
                                     'error': error.message})
      return
    with self._lock:
      record.servable, record.state, record.error = servable, State.AVAILABLE, None
    self._on_event('available', {'model': name, 'version': version,
                                 'load_seconds': round(time.monotonic() - started, 3)})

  def _unload(self, name: str, version: int, record: VersionRecord) -> None:
    with self._lock:
      if record.state != State.AVAILABLE:
        return
      record.state = State.UNLOADING
      servable = record.servable
    self._on_event('unloading', {'model': name, 'version': version})

    def finish():
      servable.wait_idle()
      servable.close()
      with self._lock:
        record.state, record.servable = State.END, None
      self._on_event('unloaded', {'model': name, 'version': version})

    threading.Thread(target=finish, name=f'unload-{name}-{version}', daemon=True).start()

  def _retire_model(self, name: str) -> None:
    record = self._models.pop(name)
    for version, r in record.versions.items():
      if r.state == State.AVAILABLE:
        self._unload(name, version, r)

  # ----------------------------------------------------------------- queries
  def available_versions(self, name: str) -> List[int]:
    with self._lock:
      record = self._models.get(name)
      if record is None:
        return []
      return sorted(v for v, r in record.versions.items() if r.state == State.AVAILABLE)

  def model_names(self) -> List[str]:
    with self._lock:
      return sorted(self._models)

  def _labelled(self, spec: model_pb2.ModelSpec) -> int:
    """The version a ``ModelSpec``'s ``version_label`` names (call under the lock)."""
    record = self._models.get(spec.name)
    if record is None or spec.version_label not in record.labels:
      raise errors.invalid_argument(f'Unrecognized servable version label: {spec.version_label}')
    return record.labels[spec.version_label]

  def _resolve(self, spec: model_pb2.ModelSpec) -> Tuple[VersionRecord, str]:
    name = spec.name
    record = self._models.get(name)
    choice = spec.WhichOneof('version_choice')
    if choice == 'version_label':
      version = self._labelled(spec)
      request = f'Specific({name}, {version})'
    elif choice == 'version':
      version = spec.version.value
      request = f'Specific({name}, {version})'
    else:
      available = self.available_versions(name) if record else []
      if not available:
        raise errors.not_found(f'Servable not found for request: Latest({name})')
      version = available[-1]
      request = f'Latest({name})'
    r = record.versions.get(version) if record else None
    if r is None or r.state != State.AVAILABLE or r.servable is None:
      raise errors.not_found(f'Servable not found for request: {request}')
    return r, request

  @contextlib.contextmanager
  def handle(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
    """The servable a ``ModelSpec`` names, held for the duration of the request."""
    with self._lock:
      record, _ = self._resolve(spec)
      servable = record.servable
      servable.acquire()
    try:
      yield servable
    finally:
      servable.release()

  def status(self, spec: model_pb2.ModelSpec) -> get_model_status_pb2.GetModelStatusResponse:
    """``GetModelStatus`` (get_model_status_impl.cc)."""
    name = spec.name
    response = get_model_status_pb2.GetModelStatusResponse()
    with self._lock:
      record = self._models.get(name)
      versions = dict(record.versions) if record else {}
      choice = spec.WhichOneof('version_choice')
      if choice == 'version_label':
        wanted = [self._labelled(spec)]
      elif choice == 'version':
        wanted = [spec.version.value]
      else:
        wanted = sorted(versions)
      if choice is not None and wanted[0] not in versions:
        raise errors.not_found(f'Could not find version {wanted[0]} of model {name}')
      if not wanted:
        raise errors.not_found(f'Could not find any versions of model {name}')
      for v in wanted:
        r = versions[v]
        s = response.model_version_status.add()
        s.version = v
        s.state = r.state
        s.status.SetInParent()   # OK is reported too, as TF Serving does
        if r.error is not None:
          s.status.error_code = r.error.code.value[0]
          s.status.error_message = r.error.message
    return response

  def base_path_errors(self) -> Dict[str, str]:
    with self._lock:
      return {n: r.base_path_error for n, r in self._models.items() if r.base_path_error}
