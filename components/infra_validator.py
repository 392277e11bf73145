"""``ServingInfraValidator``: before the Pusher, the candidate model is loaded by the
embedded TF-Serving-compatible server and answers real requests.

TFX's own InfraValidator starts ``tensorflow/serving`` with Docker or Kubernetes, neither
of which a local run has; this component does the same checks with the project's server
(:mod:`serving`), which speaks the same API:

1. the SavedModel (``Format-Serving`` of the Trainer's model) is copied into a model base
   path as version 1 and loaded, warm-up included; a load failure is the verdict;
2. ``num_examples`` held-out examples are sent over gRPC ``Predict``, REST ``:predict``,
   gRPC ``Classify`` and ``Regress``; every output must be finite, probabilities in [0, 1],
   and gRPC and REST must agree;
3. the requests are written as the model's warm-up file
   (``assets.extra/tf_serving_warmup_requests``) into a copy of the model inside the
   blessing (``stamped_model``, flagged ``has_model`` as InfraValidator's ``make_warmup``
   does), so the Pusher pushes a model that TF Serving warms up at load.

The output is a standard ``InfraBlessing`` (custom property ``blessed``, files
``INFRA_BLESSED``/``INFRA_NOT_BLESSED``), which the Pusher checks.
"""

# No "from __future__ import annotations": the @component decorator reads real annotations.

import json
import os
import shutil
import tempfile
import time
from typing import Dict, List

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from serving import signatures as sig

BLESSED_FILE = 'INFRA_BLESSED'
NOT_BLESSED_FILE = 'INFRA_NOT_BLESSED'
REPORT_FILE = 'infra_validation.json'


def _warmup_records(examples: List[bytes], model_name: str) -> List[bytes]:
  from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
  from serving import tensors
  import numpy as np
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = sig.DEFAULT
  tensors.from_ndarray(np.array(examples, dtype=object), out=request.inputs[sig.EXAMPLES])
  log = prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))
  return [log.SerializeToString()]


def write_warmup(saved_model_dir: str, records: List[bytes]) -> str:
  import tensorflow as tf
  path = os.path.join(saved_model_dir, 'assets.extra', 'tf_serving_warmup_requests')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path) as w:
    for r in records:
      w.write(r)
  return path


def validate(model_dir: str, examples: List[bytes], model_name: str = 'candidate',
             timeout_seconds: float = 300.0) -> Dict:
  """Loads ``model_dir`` in the embedded server and checks real requests; returns a report
  with ``blessed`` and the reason. Never raises for a bad model: that is the verdict."""
  import numpy as np
  from serving import config as cfg
  from serving.client import PredictionClient
  from serving.core import ServerOptions
  from serving.errors import ServingError
  from serving.manager import State
  from serving.server import ModelServer

  report: Dict = {'blessed': False, 'examples': len(examples)}
  if not examples:
    report['reason'] = 'no examples to send'
    return report
  base = tempfile.mkdtemp(prefix='infra_validation_')
  try:
    shutil.copytree(model_dir, os.path.join(base, model_name, '1'))
    options = cfg.single_model_config(model_name, os.path.join(base, model_name))
    started = time.monotonic()
    server = ModelServer(ServerOptions(model_config=options, file_system_poll_wait_seconds=0),
                         port=0, rest_api_port=0, host='127.0.0.1').start()
    clients: List = []
    try:
      report['load_seconds'] = round(time.monotonic() - started, 3)
      status = server.core.manager.status(_spec(model_name))
      state = status.model_version_status[0]
      if state.state != State.AVAILABLE:
        report['reason'] = f'model did not load: {state.status.error_message}'
        return report
      grpc_client = PredictionClient(f'127.0.0.1:{server.port}', model_name,
                                     timeout=timeout_seconds)
      rest_client = PredictionClient(f'127.0.0.1:{server.rest_api_port}', model_name,
                                     protocol='rest', timeout=timeout_seconds)
      clients += [grpc_client, rest_client]
      t = time.monotonic()
      by_grpc = grpc_client.predict(examples)
      report['grpc_predict_ms'] = round((time.monotonic() - t) * 1e3, 2)
      by_rest = rest_client.predict(examples)
      checks = []
      for name, value in by_grpc.items():
        value = np.asarray(value, dtype=np.float64)
        if value.shape[0] != len(examples):
          raise ValueError(f'output {name} has {value.shape[0]} rows for {len(examples)} '
                           'examples')
        if not np.all(np.isfinite(value)):
          raise ValueError(f'output {name} is not finite')
        if name.startswith(sig.PROBABILITY) and (value.min() < 0 or value.max() > 1):
          raise ValueError(f'output {name} leaves [0, 1]: {value.min()}..{value.max()}')
        rest = np.asarray(by_rest[name], dtype=np.float64).reshape(value.shape)
        np.testing.assert_allclose(rest, value, rtol=1e-5, atol=1e-7,
                                   err_msg=f'REST and gRPC disagree on {name}')
        checks.append(name)
      signatures = grpc_client.signatures()
      if sig.CLASSIFICATION in signatures:
        scores = grpc_client.classify(examples[:4])
        if not all(abs(sum(s.values()) - 1) < 1e-5 for s in scores):
          raise ValueError('Classify scores do not sum to 1')
        checks.append('classify')
      if sig.REGRESSION in signatures:
        values = grpc_client.regress(examples[:4])
        np.testing.assert_allclose(values, np.asarray(by_grpc[sig.PROBABILITY]).ravel()[:4],
                                   rtol=1e-5, err_msg='Regress disagrees with Predict')
        checks.append('regress')
      report.update(blessed=True, checked=checks, reason='ok')
      return report
    except (ServingError, ValueError, AssertionError) as e:
      report['reason'] = f'{type(e).__name__}: {getattr(e, "message", None) or e}'
      return report
    finally:
      for client in clients:
        client.close()
      server.stop(grace=0)
  finally:
    shutil.rmtree(base, ignore_errors=True)


def _spec(name: str):
  from tensorflow_serving.apis import model_pb2
  return model_pb2.ModelSpec(name=name)


@component
def ServingInfraValidator(  # TFX component names are classes
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
    split: Parameter[str] = 'eval',
    num_examples: Parameter[int] = 16,
    timeout_seconds: Parameter[int] = 300,
) -> None:
  model_dir = path_utils.serving_model_path(model.uri)
  from transform.examples import serialized
  sample: List[bytes] = []       # the split's first num_examples examples
  for batch in serialized(artifact_utils.get_split_uri([examples], split)):
    sample += [bytes(r) for r in batch[:num_examples - len(sample)]]
    if len(sample) >= num_examples:
      break
  report = validate(model_dir, sample, timeout_seconds=timeout_seconds)
  os.makedirs(blessing.uri, exist_ok=True)
  with open(os.path.join(blessing.uri, REPORT_FILE), 'w') as f:
    json.dump(report, f, indent=1)
  if report['blessed']:
    stamped = path_utils.stamped_model_path(blessing.uri)
    shutil.copytree(model_dir, stamped, dirs_exist_ok=True)
    write_warmup(stamped, _warmup_records(sample, 'candidate'))
    blessing.set_int_custom_property('has_model', 1)
  open(os.path.join(blessing.uri, BLESSED_FILE if report['blessed'] else NOT_BLESSED_FILE),
       'w').close()
  blessing.set_int_custom_property('blessed', 1 if report['blessed'] else 0)
  blessing.set_string_custom_property('reason', report.get('reason', ''))

