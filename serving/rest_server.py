"""REST front end: TF Serving's ``/v1/models`` API and the Prometheus endpoint.

Routes (``http_rest_api_util.cc``, case-insensitive):

* ``GET  /v1/models/{m}[/versions/{v}|/labels/{l}]``: model status;
* ``GET  /v1/models/{m}[/versions/{v}|/labels/{l}]/metadata``: signature defs;
* ``POST /v1/models/{m}[/versions/{v}|/labels/{l}]:(predict|classify|regress)``;
* ``GET  /monitoring/prometheus/metrics`` (the monitoring config's path).

Other ``/v1/`` requests answer ``{"error": "Malformed request: ..."}`` with 400; errors map
to HTTP statuses as in TF Serving (:data:`serving.errors.HTTP_STATUS`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Tuple

from google.protobuf import json_format
from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2,
                                     model_pb2)

from serving import inference, json_request, json_response
from serving import signatures as sig
from serving.core import ServerCore
from serving.errors import ServingError, invalid_argument

PREDICTION_RE = re.compile(
    r'/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?'
    r':(classify|regress|predict)', re.IGNORECASE)
STATUS_RE = re.compile(
    r'/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?',
    re.IGNORECASE)
MAX_BODY_BYTES = 2 ** 31 - 1

log = logging.getLogger('serving')


def _model_spec(name: str, version: str, label: str) -> model_pb2.ModelSpec:
  spec = model_pb2.ModelSpec(name=urllib.parse.unquote(name or ''))
  if version:
    try:
      value = int(version)
      if value >= 2 ** 63:
        raise ValueError
    except ValueError:
      raise invalid_argument(f'Failed to convert version: {version} to numeric.') from None
    spec.version.value = value
  if label:
    spec.version_label = urllib.parse.unquote(label)
  return spec


class RestApi:
  """Request path and body in, (HTTP status, JSON body) out."""

  def __init__(self, core: ServerCore):
    self.core = core

  def handle(self, method: str, path: str, body: bytes) -> Tuple[int, str]:
    try:
      return 200, self._dispatch(method, path, body)
    except ServingError as e:
      return e.http_status, json_response.error_body(e.message)

  def _dispatch(self, method: str, path: str, body: bytes) -> str:
    if method == 'POST':
      m = PREDICTION_RE.fullmatch(path)
      if m:
        spec = _model_spec(m.group(1), m.group(2), m.group(3))
        verb = m.group(4).lower()
        if verb == 'predict':
          return self._predict(spec, body)
        request = json_request.classify_regress_request(body, spec, verb)
        if verb == 'classify':
          return json_response.classification_response(self.core.classify(request, 'REST'))
        return json_response.regression_response(self.core.regress(request, 'REST'))
    elif method == 'GET':
      m = STATUS_RE.fullmatch(path)
      if m:
        if not m.group(1):
          raise invalid_argument('Missing model name in request.')
        spec = _model_spec(m.group(1), m.group(2), m.group(3))
        if m.group(4):
          request = get_model_metadata_pb2.GetModelMetadataRequest(
              model_spec=spec, metadata_field=[inference.SIGNATURE_DEF_FIELD])
          return self._metadata_json(self.core.model_metadata(request, 'REST'))
        response = self.core.model_status(
            get_model_status_pb2.GetModelStatusRequest(model_spec=spec))
        return json_format.MessageToJson(response, including_default_value_fields=True,
                                         preserving_proto_field_name=True)
    raise invalid_argument(f'Malformed request: {method} {path}')

  def _predict(self, spec, body: bytes) -> str:
    doc = json_request.parse(body)
    name = json_request.signature_name(doc) or sig.DEFAULT

    def run(servable):
      signature = servable.signatures.get(name)
      if signature is None:
        raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
      request, fmt = json_request.predict_request(doc, spec, dict(signature.inputs))
      return json_response.predict_response(inference.predict(servable, request), fmt)
    return self.core.call('Predict', spec, 'REST', run)

  @staticmethod
  def _metadata_json(response) -> str:
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata[inference.SIGNATURE_DEF_FIELD].Unpack(sig_map)
    doc = {
        'model_spec': json_format.MessageToDict(
            response.model_spec, including_default_value_fields=True,
            preserving_proto_field_name=True),
        'metadata': {'signature_def': json_format.MessageToDict(
            sig_map, including_default_value_fields=True, preserving_proto_field_name=True)},
    }
    return json.dumps(doc, indent=1)


def _handler_class(api: RestApi, metrics_path: str):

  class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'tfx-ctr-serving'
    # TCP_NODELAY, and headers and body in one write: otherwise Nagle's algorithm and the
    # client's delayed ACK add 40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # base-class signature
      log.debug('http %s', format % args)

    def _reply(self, status: int, body: str, content_type: str = 'application/json'):
      data = body.encode('utf-8')
      self.send_response(status)
      self.send_header('Content-Type', content_type)
      self.send_header('Content-Length', str(len(data)))
      self._headers_buffer.append(b'\r\n')
      self.wfile.write(b''.join(self._headers_buffer) + data)
      self._headers_buffer = []

    def _read_body(self) -> bytes:
      length = self.headers.get('Content-Length')
      if length is None:
        return b''
      try:
        n = int(length)
      except ValueError:
        n = -1
      if n < 0 or n > MAX_BODY_BYTES:
        raise invalid_argument(f'Invalid Content-Length: {length}')
      return self.rfile.read(n)

    def _handle(self, method: str):
      path = urllib.parse.urlsplit(self.path).path
      try:
        body = self._read_body() if method == 'POST' else b''
      except ServingError as e:
        self.close_connection = True
        self._reply(e.http_status, json_response.error_body(e.message))
        return
      if method == 'GET' and metrics_path and path == metrics_path:
        self._reply(200, api.core.metrics.render(), 'text/plain; version=0.0.4')
        return
      if not path.lower().startswith('/v1/'):
        self._reply(HTTPStatus.NOT_FOUND, json_response.error_body(f'Not found: {path}'))
        return
      status, text = api.handle(method, path, body)
      self._reply(status, text)

    def do_GET(self):  # http.server names
      self._handle('GET')

    def do_POST(self):
      self._handle('POST')

    def do_PUT(self):
      self._handle('PUT')

    def do_DELETE(self):
      self._handle('DELETE')

  return Handler


class RestServer:
  """A threaded HTTP/1.1 server (keep-alive) in a background thread."""

  def __init__(self, core: ServerCore, port: int, host: str = '0.0.0.0'):
    monitoring = core.options.monitoring
    path = monitoring.prometheus_path if monitoring.prometheus_enable else ''
    self.httpd = ThreadingHTTPServer((host, port), _handler_class(RestApi(core), path))
    self.httpd.daemon_threads = True
    self.port = self.httpd.server_address[1]
    self._thread = threading.Thread(target=self.httpd.serve_forever, name='rest',
                                    daemon=True)

  def start(self) -> 'RestServer':
    self._thread.start()
    return self

  def stop(self) -> None:
    self.httpd.shutdown()
    self.httpd.server_close()
