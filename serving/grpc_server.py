"""gRPC front end: TF Serving's ``PredictionService`` and ``ModelService``.

The servicers subclass the generated bases from ``tensorflow-serving-api``, so the wire
protocol is TF Serving's own; errors become the call's status code and message.
"""

from __future__ import annotations

from concurrent import futures
from typing import Optional, Tuple

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from serving.core import ServerCore
from serving.errors import ServingError

# TF Serving raises gRPC's 4 MB default ("--grpc_max_receive_message_length" defaults to
# INT_MAX in model_servers/server.cc); batch requests of serialized examples need it.
MAX_MESSAGE_BYTES = 2 ** 31 - 1


def _serve(context, fn, *args):
  try:
    return fn(*args)
  except ServingError as e:
    context.abort(e.code, e.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, core: ServerCore):
    self.core = core

  def Predict(self, request, context):  # gRPC method names
    return _serve(context, self.core.predict, request)

  def Classify(self, request, context):
    return _serve(context, self.core.classify, request)

  def Regress(self, request, context):
    return _serve(context, self.core.regress, request)

  def MultiInference(self, request, context):
    return _serve(context, self.core.multi_inference, request)

  def GetModelMetadata(self, request, context):
    return _serve(context, self.core.model_metadata, request)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, core: ServerCore):
    self.core = core

  def GetModelStatus(self, request, context):
    return _serve(context, self.core.model_status, request)

  def HandleReloadConfigRequest(self, request, context):
    return _serve(context, self.core.reload_config, request)


def create_server(core: ServerCore, port: int, host: str = '0.0.0.0',
                  max_threads: Optional[int] = None) -> Tuple[grpc.Server, int]:
  """A started-ready (not started) gRPC server and the port it bound (0 picks one)."""
  server = grpc.server(
      futures.ThreadPoolExecutor(max_workers=max_threads or 16, thread_name_prefix='grpc'),
      options=[('grpc.max_receive_message_length', MAX_MESSAGE_BYTES),
               ('grpc.max_send_message_length', MAX_MESSAGE_BYTES),
               ('grpc.so_reuseport', 0)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(core), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
  bound = server.add_insecure_port(f'{host}:{port}')
  if bound == 0:
    raise OSError(f'could not bind gRPC port {host}:{port}')
  return server, bound
