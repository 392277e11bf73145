"""Server configuration in TF Serving's own formats.

* ``--model_config_file``: a text-format ``ModelServerConfig`` holding a
  ``model_config_list`` (the ``tensorflow_serving.config`` proto from
  ``tensorflow-serving-api``): name, base_path, ``model_version_policy`` (``latest``, ``all``,
  ``specific``) and ``version_labels`` per model.
* ``--batching_parameters_file``: a text-format ``BatchingParameters`` message
  (``max_batch_size { value: 128 } batch_timeout_micros { value: 1000 } ...``).
* ``--monitoring_config_file``: a text-format ``MonitoringConfig``
  (``prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }``).

The last two protos live in ``session_bundle_config.proto`` and ``monitoring_config.proto``,
which the pip package does not ship; :func:`_messages` declares the same fields (names,
numbers and types) so the same files parse here and in ``tensorflow_model_server``, and
unknown fields are refused alike.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

from google.protobuf import descriptor_pb2, descriptor_pool, text_format, wrappers_pb2
from google.protobuf import message_factory
from tensorflow_serving.config import model_server_config_pb2

from serving.errors import invalid_argument

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

DEFAULT_PROMETHEUS_PATH = '/monitoring/prometheus/metrics'


def _messages():
  """``BatchingParameters`` and ``MonitoringConfig`` as dynamic messages."""
  pool = descriptor_pool.DescriptorPool()
  pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
  f = descriptor_pb2.FileDescriptorProto(
      name='tfx_ctr_serving_config.proto', package='tensorflow.serving',
      syntax='proto3', dependency=['google/protobuf/wrappers.proto'])
  T = descriptor_pb2.FieldDescriptorProto
  batching = f.message_type.add(name='BatchingParameters')
  for number, name in [(1, 'max_batch_size'), (2, 'batch_timeout_micros'),
                       (3, 'max_enqueued_batches'), (4, 'num_batch_threads'),
                       (8, 'max_execution_batch_size')]:
    batching.field.add(name=name, number=number, type=T.TYPE_MESSAGE,
                       type_name='.google.protobuf.Int64Value', label=T.LABEL_OPTIONAL)
  batching.field.add(name='thread_pool_name', number=5, type=T.TYPE_MESSAGE,
                     type_name='.google.protobuf.StringValue', label=T.LABEL_OPTIONAL)
  batching.field.add(name='allowed_batch_sizes', number=6, type=T.TYPE_INT64,
                     label=T.LABEL_REPEATED)
  batching.field.add(name='pad_variable_length_inputs', number=7, type=T.TYPE_BOOL,
                     label=T.LABEL_OPTIONAL)
  batching.field.add(name='enable_large_batch_splitting', number=9, type=T.TYPE_MESSAGE,
                     type_name='.google.protobuf.BoolValue', label=T.LABEL_OPTIONAL)
  prometheus = f.message_type.add(name='PrometheusConfig')
  prometheus.field.add(name='enable', number=1, type=T.TYPE_BOOL, label=T.LABEL_OPTIONAL)
  prometheus.field.add(name='path', number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
  monitoring = f.message_type.add(name='MonitoringConfig')
  monitoring.field.add(name='prometheus_config', number=1, type=T.TYPE_MESSAGE,
                       type_name='.tensorflow.serving.PrometheusConfig',
                       label=T.LABEL_OPTIONAL)
  pool.Add(f)
  get = getattr(message_factory, 'GetMessageClass', None)
  factory = message_factory.MessageFactory(pool)
  classes = {}
  for name in ('BatchingParameters', 'MonitoringConfig'):
    d = pool.FindMessageTypeByName(f'tensorflow.serving.{name}')
    classes[name] = get(d) if get else factory.GetPrototype(d)
  return classes


_CLASSES = _messages()
BatchingParametersProto = _CLASSES['BatchingParameters']
MonitoringConfigProto = _CLASSES['MonitoringConfig']


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
  """Server-side batching, named as in TF Serving's ``BatchingParameters``.

  Defaults are TF Serving's (``batching_session.h``/``main.cc``), except
  ``batch_timeout_micros``: TF Serving's default 0 batches only requests that are
  already queued; 1 ms here lets concurrent single-example requests meet.
  """
  max_batch_size: int = 1000
  batch_timeout_micros: int = 1000
  max_enqueued_batches: int = 100
  num_batch_threads: int = max(1, os.cpu_count() or 1)
  allowed_batch_sizes: tuple = ()
  pad_variable_length_inputs: bool = False
  enable_large_batch_splitting: bool = False
  max_execution_batch_size: int = 0

  def __post_init__(self):
    for name in ('max_batch_size', 'max_enqueued_batches', 'num_batch_threads'):
      if getattr(self, name) <= 0:
        raise invalid_argument(f'BatchingParameters.{name} must be positive, '
                               f'got {getattr(self, name)}')
    if self.batch_timeout_micros < 0:
      raise invalid_argument('BatchingParameters.batch_timeout_micros must be >= 0')
    sizes = list(self.allowed_batch_sizes)
    if sizes:
      if sizes != sorted(set(sizes)) or sizes[0] <= 0:
        raise invalid_argument('allowed_batch_sizes must be positive and increasing')
      limit = self.execution_batch_size
      if sizes[-1] != limit:
        raise invalid_argument(
            f'The largest entry in allowed_batch_sizes ({sizes[-1]}) must be equal to '
            f'the maximum execution batch size ({limit})')

  @property
  def execution_batch_size(self) -> int:
    if self.enable_large_batch_splitting and self.max_execution_batch_size:
      return self.max_execution_batch_size
    return self.max_batch_size

  @classmethod
  def from_text(cls, text: str) -> 'BatchingParameters':
    proto = _parse(text, BatchingParametersProto(), 'batching parameters')
    kwargs = {}
    for name in ('max_batch_size', 'batch_timeout_micros', 'max_enqueued_batches',
                 'num_batch_threads', 'max_execution_batch_size',
                 'enable_large_batch_splitting'):
      if proto.HasField(name):
        kwargs[name] = getattr(proto, name).value
    if proto.allowed_batch_sizes:
      kwargs['allowed_batch_sizes'] = tuple(proto.allowed_batch_sizes)
    kwargs['pad_variable_length_inputs'] = proto.pad_variable_length_inputs
    return cls(**kwargs)

  def to_text(self) -> str:
    lines = [f'max_batch_size {{ value: {self.max_batch_size} }}',
             f'batch_timeout_micros {{ value: {self.batch_timeout_micros} }}',
             f'max_enqueued_batches {{ value: {self.max_enqueued_batches} }}',
             f'num_batch_threads {{ value: {self.num_batch_threads} }}']
    lines += [f'allowed_batch_sizes: {s}' for s in self.allowed_batch_sizes]
    if self.pad_variable_length_inputs:
      lines.append('pad_variable_length_inputs: true')
    if self.enable_large_batch_splitting:
      lines.append('enable_large_batch_splitting { value: true }')
      if self.max_execution_batch_size:
        lines.append(f'max_execution_batch_size {{ value: {self.max_execution_batch_size} }}')
    return '\n'.join(lines) + '\n'


@dataclasses.dataclass(frozen=True)
class MonitoringConfig:
  prometheus_enable: bool = True
  prometheus_path: str = DEFAULT_PROMETHEUS_PATH

  @classmethod
  def from_text(cls, text: str) -> 'MonitoringConfig':
    p = _parse(text, MonitoringConfigProto(), 'monitoring config').prometheus_config
    return cls(prometheus_enable=p.enable, prometheus_path=p.path or DEFAULT_PROMETHEUS_PATH)

  def to_text(self) -> str:
    return ('prometheus_config {\n'
            f'  enable: {"true" if self.prometheus_enable else "false"}\n'
            f'  path: "{self.prometheus_path}"\n'
            '}\n')


def _parse(text: str, proto, what: str):
  """Text format -> ``proto``; INVALID_ARGUMENT naming ``what`` and the position."""
  try:
    text_format.Parse(text, proto)
  except text_format.ParseError as e:
    raise invalid_argument(f'Invalid {what}: {e}') from e
  return proto


def parse_model_server_config(text: str) -> ModelServerConfig:
  config = _parse(text, ModelServerConfig(), 'model server config')
  validate_model_server_config(config)
  return config


def read_model_server_config(path: str) -> ModelServerConfig:
  with open(path) as f:
    return parse_model_server_config(f.read())


def validate_model_server_config(config: ModelServerConfig) -> None:
  if config.WhichOneof('config') != 'model_config_list':
    raise invalid_argument('ServerCore::ReloadConfig only supports model_config_list')
  names = set()
  for m in config.model_config_list.config:
    if not m.name:
      raise invalid_argument('Model config has no name')
    if m.name in names:
      raise invalid_argument(f'Illegal to list model {m.name} multiple times in config list')
    names.add(m.name)
    if not m.base_path:
      raise invalid_argument(f'Model {m.name} has no base_path')
    if m.model_platform and m.model_platform != 'tensorflow':
      raise invalid_argument(
          f'Model {m.name}: model_platform "{m.model_platform}" is not supported; '
          'this server serves TensorFlow SavedModels')


def single_model_config(name: str, base_path: str) -> ModelServerConfig:
  """What ``--model_name``/``--model_base_path`` mean: one model, latest version."""
  config = ModelServerConfig()
  m = config.model_config_list.config.add()
  m.name = name
  m.base_path = os.path.abspath(base_path) if '://' not in base_path else base_path
  m.model_platform = 'tensorflow'
  return config


def model_server_config_text(models: Dict[str, str],
                             labels: Optional[Dict[str, Dict[str, int]]] = None,
                             latest: int = 1) -> str:
  """A ``models.config`` text for ``{name: base_path}`` (used by ``serving.deploy``)."""
  config = ModelServerConfig()
  for name, base_path in models.items():
    m = config.model_config_list.config.add()
    m.name, m.base_path, m.model_platform = name, base_path, 'tensorflow'
    if latest != 1:
      m.model_version_policy.latest.num_versions = latest
    for label, version in ((labels or {}).get(name) or {}).items():
      m.version_labels[label] = version
  return text_format.MessageToString(config)


def aspired_versions(config: ModelConfig, ready: List[int]) -> List[int]:
  """The versions a model's ``model_version_policy`` asks for, among the ready ones."""
  ready = sorted(set(ready))
  policy = config.model_version_policy
  kind = policy.WhichOneof('policy_choice')
  if kind == 'all':
    return ready
  if kind == 'specific':
    wanted = set(policy.specific.versions)
    return [v for v in ready if v in wanted]
  n = policy.latest.num_versions if kind == 'latest' and policy.latest.num_versions else 1
  return ready[-n:]
