"""The server core: model manager + batching + warm-up + metrics behind TF Serving's APIs.

``ServerCore`` is what the gRPC servicers and the REST handler call; it resolves a
``ModelSpec`` to a loaded version, runs one of :mod:`serving.inference`'s functions on it,
and records the request in :class:`serving.metrics.Metrics` and the structured log.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Optional, TypeVar

import tensorflow as tf
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_management_pb2, prediction_log_pb2)

from serving import errors, inference
from serving.batching import BatchScheduler
from serving.config import BatchingParameters, ModelServerConfig, MonitoringConfig
from serving.manager import ModelManager
from serving.metrics import Metrics
from serving.servable import Servable

log = logging.getLogger('serving')
T = TypeVar('T')

MAX_WARMUP_RECORDS = 1000


@dataclasses.dataclass
class ServerOptions:
  """Server settings; each field is the ``tensorflow_model_server`` flag of the same name."""
  model_config: Optional[ModelServerConfig] = None
  file_system_poll_wait_seconds: float = 1.0
  enable_batching: bool = False
  batching_parameters: BatchingParameters = dataclasses.field(
      default_factory=BatchingParameters)
  monitoring: MonitoringConfig = dataclasses.field(default_factory=MonitoringConfig)
  enable_model_warmup: bool = True
  num_request_iterations: int = 1   # ModelWarmupOptions.num_request_iterations
  allow_version_labels_for_unavailable_models: bool = False
  tensorflow_intra_op_parallelism: int = 0
  tensorflow_inter_op_parallelism: int = 0


class ServerCore:
  """Serves the models of a ``model_config_list``."""

  def __init__(self, options: ServerOptions):
    if options.model_config is None:
      raise errors.invalid_argument('No model config: give a model base path or a config file')
    self.options = options
    self.metrics = Metrics()
    self.batcher = (BatchScheduler(options.batching_parameters, self.metrics.record_batch)
                    if options.enable_batching else None)
    self.manager = ModelManager(
        options.model_config, poll_seconds=options.file_system_poll_wait_seconds,
        allow_labels_for_unavailable=options.allow_version_labels_for_unavailable_models,
        make_servable=self._make_servable, on_loaded=self._on_loaded,
        on_event=self._event)

  def start(self) -> 'ServerCore':
    self.manager.start()
    return self

  def stop(self) -> None:
    self.manager.stop()
    if self.batcher is not None:
      self.batcher.stop()

  def _make_servable(self, name: str, version: int, path: str) -> Servable:
    return Servable(name, version, path,
                    intra_op_threads=self.options.tensorflow_intra_op_parallelism,
                    inter_op_threads=self.options.tensorflow_inter_op_parallelism)

  def _on_loaded(self, servable: Servable) -> None:
    servable.metrics = self.metrics
    if self.options.enable_model_warmup:
      self.warmup(servable)
    servable.batcher = self.batcher   # after warm-up: warm-up runs unbatched, as TF Serving

  @staticmethod
  def _event(event: str, fields: dict) -> None:
    level = logging.ERROR if event.endswith('error') or event.endswith('failed') else logging.INFO
    log.log(level, event, extra={'fields': fields})

  # ----------------------------------------------------------------- warm-up
  def warmup(self, servable: Servable) -> int:
    """Replays ``assets.extra/tf_serving_warmup_requests`` (``PredictionLog`` records)."""
    path = servable.warmup_file()
    if path is None:
      return 0
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    if len(records) > MAX_WARMUP_RECORDS:
      raise errors.invalid_argument(
          f'Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}')
    started = time.monotonic()
    for raw in records:
      entry = prediction_log_pb2.PredictionLog.FromString(raw)
      kind = entry.WhichOneof('log_type')
      call = {'predict_log': inference.predict, 'classify_log': inference.classify,
              'regress_log': inference.regress,
              'multi_inference_log': inference.multi_inference}.get(kind)
      if call is None:
        raise errors.unimplemented_method(f'warm-up log type {kind}')
      request = getattr(entry, kind).request
      for _ in range(max(1, self.options.num_request_iterations)):
        call(servable, request)
    log.info('warmup', extra={'fields': {
        'model': servable.name, 'version': servable.version, 'records': len(records),
        'seconds': round(time.monotonic() - started, 3)}})
    return len(records)

  # ----------------------------------------------------------------- requests
  def call(self, api: str, spec, entrypoint: str, fn: Callable[[Servable], T]) -> T:
    """Runs ``fn`` on the servable ``spec`` names, recording metrics and errors."""
    started = time.perf_counter()
    status = 'OK'
    try:
      with self.manager.handle(spec) as servable:
        return fn(servable)
    except errors.ServingError as e:
      status = e.code.name
      log.debug('request_error', extra={'fields': {
          'model': spec.name, 'api': api, 'code': status, 'error': e.message}})
      raise
    except Exception as e:  # an unexpected failure is INTERNAL, not a crash
      status = 'INTERNAL'
      log.exception('request_failed')
      raise errors.internal(f'{type(e).__name__}: {e}') from e
    finally:
      self.metrics.record_request(spec.name, api, entrypoint, status,
                                  (time.perf_counter() - started) * 1e6)

  def predict(self, request, entrypoint: str = 'GRPC'):
    return self.call('Predict', request.model_spec, entrypoint,
                     lambda s: inference.predict(s, request))

  def classify(self, request, entrypoint: str = 'GRPC'):
    return self.call('Classify', request.model_spec, entrypoint,
                     lambda s: inference.classify(s, request))

  def regress(self, request, entrypoint: str = 'GRPC'):
    return self.call('Regress', request.model_spec, entrypoint,
                     lambda s: inference.regress(s, request))

  def multi_inference(self, request, entrypoint: str = 'GRPC'):
    if not request.tasks:
      raise errors.invalid_argument('Found no tasks in MultiInference request.')
    return self.call('MultiInference', request.tasks[0].model_spec, entrypoint,
                     lambda s: inference.multi_inference(s, request))

  def model_metadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest,
                     entrypoint: str = 'GRPC'):
    if not request.HasField('model_spec'):
      raise errors.invalid_argument('Missing model_spec')
    return self.call('GetModelMetadata', request.model_spec, entrypoint,
                     lambda s: inference.model_metadata(s, request))

  def model_status(self, request: get_model_status_pb2.GetModelStatusRequest
                   ) -> get_model_status_pb2.GetModelStatusResponse:
    if not request.HasField('model_spec'):
      raise errors.invalid_argument('Missing ModelSpec')
    return self.manager.status(request.model_spec)

  def reload_config(self, request: model_management_pb2.ReloadConfigRequest
                    ) -> model_management_pb2.ReloadConfigResponse:
    try:
      self.manager.reload(request.config)
    except errors.ServingError as e:   # the call's status carries code and message
      log.error('reload_config_failed', extra={'fields': {'error': e.message}})
      raise
    log.info('reload_config', extra={'fields': {
        'models': [m.name for m in request.config.model_config_list.config]}})
    return model_management_pb2.ReloadConfigResponse()
