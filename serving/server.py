"""The embedded model server: TF Serving's gRPC and REST APIs over the Pusher's output.

Run it with the flags of ``tensorflow_model_server``, so that moving to the real server is a
change of binary (``docs/SERVING.md``)::

    python -m serving serve --port=8500 --rest_api_port=8501 \\
        --model_name=ctr --model_base_path=$PWD/workdir/serving/ctr
    python -m serving serve --model_config_file=models.config \\
        --enable_batching --batching_parameters_file=batching.config \\
        --monitoring_config_file=monitoring.config

Logs are JSON lines on stderr (``--log_format=text`` for plain text).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import signal
import sys
import threading
from typing import List, Optional

from serving import config as cfg
from serving.core import ServerCore, ServerOptions
from serving.errors import ServingError, invalid_argument
from serving.grpc_server import create_server
from serving.rest_server import RestServer
from serving.servable import onednn_enabled

log = logging.getLogger('serving')


class JsonFormatter(logging.Formatter):
  """One JSON object per line: time, level, event, and the record's ``fields``."""

  def format(self, record: logging.LogRecord) -> str:
    entry = {'ts': round(record.created, 6), 'level': record.levelname.lower(),
             'logger': record.name, 'event': record.getMessage()}
    entry.update(getattr(record, 'fields', {}) or {})
    if record.exc_info:
      entry['exception'] = self.formatException(record.exc_info)
    return json.dumps(entry, default=str)


def configure_logging(fmt: str = 'json', level: str = 'INFO') -> None:
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(JsonFormatter() if fmt == 'json' else logging.Formatter(
      '%(asctime)s %(levelname)s %(name)s %(message)s %(fields)s', defaults={'fields': ''}))
  log.handlers[:] = [handler]
  log.setLevel(level.upper())
  log.propagate = False


class ModelServer:
  """gRPC + REST servers over one :class:`ServerCore`. Ports 0 pick free ones."""

  def __init__(self, options: ServerOptions, port: int = 8500, rest_api_port: int = 8501,
               host: str = '0.0.0.0', grpc_max_threads: Optional[int] = None):
    self.core = ServerCore(options)
    self._grpc, self.port = create_server(self.core, port, host, grpc_max_threads)
    self._rest = RestServer(self.core, rest_api_port, host) if rest_api_port >= 0 else None
    self.rest_api_port = self._rest.port if self._rest else None

  def start(self) -> 'ModelServer':
    self.core.start()
    self._grpc.start()
    if self._rest is not None:
      self._rest.start()
    onednn = onednn_enabled()
    log.info('server_started', extra={'fields': {
        'grpc_port': self.port, 'rest_api_port': self.rest_api_port,
        'models': self.core.manager.model_names(), 'onednn': onednn}})
    if onednn:
      log.warning('onednn_serialized_runs', extra={'fields': {
          'reason': 'TensorFlow was imported with oneDNN on; its kernels are not safe under '
                    'concurrent runs, so model runs are serialized. Start the server with '
                    'TF_ENABLE_ONEDNN_OPTS=0 (python -m serving does) to run them '
                    'concurrently.'}})
    return self

  def stop(self, grace: float = 2.0) -> None:
    if self._rest is not None:
      self._rest.stop()
    self._grpc.stop(grace).wait()
    self.core.stop()

  def __enter__(self) -> 'ModelServer':
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()


def options_from_args(args) -> ServerOptions:
  if args.model_config_file:
    model_config = cfg.read_model_server_config(args.model_config_file)
  elif args.model_base_path:
    model_config = cfg.single_model_config(args.model_name, args.model_base_path)
  else:
    raise invalid_argument('Give --model_base_path (with --model_name) or --model_config_file')
  batching = cfg.BatchingParameters()
  if args.batching_parameters_file:
    with open(args.batching_parameters_file) as f:
      batching = cfg.BatchingParameters.from_text(f.read())
  monitoring = cfg.MonitoringConfig()
  if args.monitoring_config_file:
    with open(args.monitoring_config_file) as f:
      monitoring = cfg.MonitoringConfig.from_text(f.read())
  return ServerOptions(
      model_config=model_config,
      file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
      enable_batching=args.enable_batching, batching_parameters=batching,
      monitoring=monitoring, enable_model_warmup=args.enable_model_warmup,
      allow_version_labels_for_unavailable_models=(
          args.allow_version_labels_for_unavailable_models),
      tensorflow_intra_op_parallelism=args.tensorflow_intra_op_parallelism,
      tensorflow_inter_op_parallelism=args.tensorflow_inter_op_parallelism)


def _bool(text: str) -> bool:
  if text.lower() in ('1', 'true', 'yes'):
    return True
  if text.lower() in ('0', 'false', 'no'):
    return False
  raise argparse.ArgumentTypeError(f'not a boolean: {text}')


def add_arguments(p: argparse.ArgumentParser) -> None:
  """``tensorflow_model_server``'s flags (the subset this server implements)."""
  p.add_argument('--port', type=int, default=8500, help='gRPC port (default 8500)')
  p.add_argument('--rest_api_port', type=int, default=8501,
                 help='REST port (default 8501; -1 turns REST off)')
  p.add_argument('--host', default='0.0.0.0', help='address to bind')
  p.add_argument('--model_name', default='default', help='name of the single model')
  p.add_argument('--model_base_path', default='', help='base path of the single model')
  p.add_argument('--model_config_file', default='',
                 help='text-format ModelServerConfig (model_config_list)')
  p.add_argument('--model_config_file_poll_wait_seconds', type=float, default=0,
                 help='re-read --model_config_file this often (0: never)')
  p.add_argument('--file_system_poll_wait_seconds', type=float, default=1,
                 help='seconds between base-path polls for new versions')
  p.add_argument('--enable_batching', type=_bool, nargs='?', const=True, default=False)
  p.add_argument('--batching_parameters_file', default='',
                 help='text-format BatchingParameters')
  p.add_argument('--monitoring_config_file', default='', help='text-format MonitoringConfig')
  p.add_argument('--enable_model_warmup', type=_bool, nargs='?', const=True, default=True)
  p.add_argument('--allow_version_labels_for_unavailable_models', type=_bool, nargs='?',
                 const=True, default=False)
  p.add_argument('--tensorflow_intra_op_parallelism', type=int, default=0)
  p.add_argument('--tensorflow_inter_op_parallelism', type=int, default=0)
  p.add_argument('--grpc_max_threads', type=int, default=16)
  p.add_argument('--log_format', choices=['json', 'text'], default='json')
  p.add_argument('--log_level', default='INFO')


def _watch_config(server: ModelServer, path: str, seconds: float, stop: threading.Event):
  from tensorflow_serving.apis import model_management_pb2
  last = None
  while not stop.wait(seconds):
    try:
      with open(path) as f:
        text = f.read()
      if text != last:
        server.core.reload_config(model_management_pb2.ReloadConfigRequest(
            config=cfg.parse_model_server_config(text)))
      last = text
    except (OSError, ServingError) as e:
      log.error('config_poll_failed', extra={'fields': {'path': path, 'error': str(e)}})


def serve(args) -> int:
  configure_logging(args.log_format, args.log_level)
  # A native crash (SIGSEGV, SIGABRT) still prints every thread's Python stack to stderr.
  faulthandler.enable()
  try:
    options = options_from_args(args)
    server = ModelServer(options, args.port, args.rest_api_port, args.host,
                         args.grpc_max_threads).start()
  except (ServingError, OSError) as e:
    log.error('server_start_failed', extra={'fields': {'error': str(e)}})
    return 1
  stop = threading.Event()
  signal.signal(signal.SIGTERM, lambda *_: stop.set())
  signal.signal(signal.SIGINT, lambda *_: stop.set())
  if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
    threading.Thread(target=_watch_config, daemon=True, args=(
        server, args.model_config_file, args.model_config_file_poll_wait_seconds, stop)).start()
  while not stop.wait(0.5):
    pass
  server.stop()
  log.info('server_stopped')
  return 0


def main(argv: Optional[List[str]] = None) -> int:
  p = argparse.ArgumentParser(prog='python -m serving serve', description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  add_arguments(p)
  return serve(p.parse_args(argv))


if __name__ == '__main__':
  sys.exit(main())
