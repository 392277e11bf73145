"""TF Serving's inference APIs on one loaded servable: Predict, Classify, Regress,
MultiInference and GetModelMetadata, request proto in, response proto out.

Behaviour and messages follow ``tensorflow_serving/servables/tensorflow/`` (``predict_util``,
``classifier``, ``regressor``, ``multi_inference``, ``get_model_metadata_impl``,
``util.cc``), so a client sees the same codes here as from ``tensorflow_model_server``.
The gRPC and REST front ends both go through these functions.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import tensorflow as tf
from google.protobuf import any_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     inference_pb2, model_pb2, predict_pb2,
                                     regression_pb2)

from serving import errors, tensors
from serving import signatures as sig
from serving.servable import Servable

# TensorFlow's names for the signatures' methods and for the Classify and Regress
# signatures' inputs and outputs.
PREDICT_METHOD = tf.saved_model.PREDICT_METHOD_NAME
CLASSIFY_METHOD = tf.saved_model.CLASSIFY_METHOD_NAME
REGRESS_METHOD = tf.saved_model.REGRESS_METHOD_NAME
CLASSIFY_INPUTS = tf.saved_model.CLASSIFY_INPUTS
CLASSIFY_CLASSES = tf.saved_model.CLASSIFY_OUTPUT_CLASSES
CLASSIFY_SCORES = tf.saved_model.CLASSIFY_OUTPUT_SCORES
REGRESS_INPUTS = tf.saved_model.REGRESS_INPUTS
REGRESS_OUTPUTS = tf.saved_model.REGRESS_OUTPUTS
SIGNATURE_DEF_FIELD = 'signature_def'


def _join(keys) -> str:
  return ','.join(sorted(keys))


def fill_model_spec(spec: model_pb2.ModelSpec, servable: Servable, signature_name: str):
  spec.name = servable.name
  spec.version.value = servable.version
  if signature_name:
    spec.signature_name = signature_name


# --------------------------------------------------------------------------- Predict
def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
  name = request.model_spec.signature_name or sig.DEFAULT
  signature = servable.signatures.get(name)
  if signature is None:
    raise errors.failed_precondition(f'Serving signature key "{name}" not found.')
  if signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
    raise errors.internal(
        f'Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, '
        f'{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}')
  sent, wanted = set(request.inputs), set(signature.inputs)
  defaults = getattr(signature, 'defaults', {})
  if len(sent) > len(wanted) or (len(sent) < len(wanted) and not defaults):
    raise errors.invalid_argument(
        f'input size does not match signature: {len(sent)}!={len(wanted)} '
        f'len({{{_join(sent)}}}) != len({{{_join(wanted)}}}). '
        f'Sent extra: {{{_join(sent - wanted)}}}. '
        f'Missing but required: {{{_join(wanted - sent)}}}.')
  feeds = {}
  for alias in sorted(request.inputs):
    info = signature.inputs.get(alias)
    if info is None:
      raise errors.invalid_argument(
          f'input tensor alias not found in signature: {alias}. '
          f'Inputs expected to be in the set {{{_join(wanted)}}}.')
    feeds[info.name] = check_input(alias, tensors.to_ndarray(request.inputs[alias], alias), info)
  for alias in wanted - sent:
    if alias not in defaults:
      raise errors.invalid_argument(f'Missing input: {alias}')
  aliases: List[str] = []
  for alias in request.output_filter:
    if alias not in signature.outputs:
      raise errors.invalid_argument(
          f'output tensor alias not found in signature: {alias} Outputs expected to be in '
          f'the set {{{_join(signature.outputs)}}}.')
    if alias in aliases:
      raise errors.invalid_argument(f'duplicate output tensor alias: {alias}')
    aliases.append(alias)
  if not aliases:
    aliases = sorted(signature.outputs)
  fetched = servable.run(feeds, [signature.outputs[a].name for a in aliases])
  response = predict_pb2.PredictResponse()
  fill_model_spec(response.model_spec, servable, name)
  for alias, value in zip(aliases, fetched):
    tensors.from_ndarray(value, signature.outputs[alias].dtype, response.outputs[alias])
  return response


def check_input(alias: str, array: np.ndarray, info) -> np.ndarray:
  """INVALID_ARGUMENT for a dtype or shape the signature's TensorInfo does not accept."""
  if not tensors.tensor_info_dtype_ok(array, info.dtype):
    raise errors.invalid_argument(
        f'Expects arg[{alias}] to be {tensors.dtype_name(info.dtype)[3:].lower()} but '
        f'{_array_dtype_name(array)} is provided')
  expected = tensors.shape_of(info.tensor_shape)
  if not tensors.check_shape(array, expected):
    shown = '[' + ','.join('?' if d < 0 else str(d) for d in expected) + ']'
    raise errors.invalid_argument(
        f'input tensor alias {alias}: shape [{",".join(map(str, array.shape))}] is not '
        f'compatible with the signature shape {shown}')
  return array


def _array_dtype_name(array: np.ndarray) -> str:
  return 'string' if array.dtype == object else str(array.dtype)


# --------------------------------------------------------------- Classify / Regress
def serialized_examples(request_input) -> np.ndarray:
  """``Input`` -> a [batch] string tensor of serialized ``tf.Example`` (util.cc)."""
  kind = request_input.WhichOneof('kind')
  if kind == 'example_list':
    examples = [e.SerializeToString() for e in request_input.example_list.examples]
  elif kind == 'example_list_with_context':
    lc = request_input.example_list_with_context
    context = lc.context.SerializeToString()
    # Concatenated serializations parse as a proto merge: example features win.
    examples = [context + e.SerializeToString() for e in lc.examples]
  else:
    examples = []
  if not examples:
    raise errors.invalid_argument('Input is empty.')
  out = np.empty(len(examples), dtype=object)
  out[:] = examples
  return out


def _signature_for(servable: Servable, spec: model_pb2.ModelSpec, method: str, what: str):
  name = spec.signature_name or sig.DEFAULT
  signature = servable.signatures.get(name)
  if signature is None:
    raise errors.invalid_argument(f'No signature was found with the name: {name}')
  if signature.method_name != method:
    raise errors.invalid_argument(
        f'Expected {what} signature method_name to be {method}. '
        f'Was: {signature.method_name}')
  if len(signature.inputs) != 1:
    raise errors.invalid_argument('Expected one input Tensor.')
  return name, signature


def _classify_fetches(signature) -> List[str]:
  if len(signature.outputs) not in (1, 2):
    raise errors.invalid_argument(
        f'Expected one or two output Tensors, found {len(signature.outputs)}')
  keys = [k for k in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if k in signature.outputs]
  if not keys:
    raise errors.invalid_argument(
        f'Expected classification signature outputs to contain at least one of '
        f'"{CLASSIFY_CLASSES}" or "{CLASSIFY_SCORES}". Signature was: {signature}')
  return keys


def _classification_result(keys, values, n: int, result) -> None:
  out = dict(zip(keys, values))
  classes, scores = out.get(CLASSIFY_CLASSES), out.get(CLASSIFY_SCORES)
  for key, value, dtype in ((CLASSIFY_CLASSES, classes, 'DT_STRING'),
                            (CLASSIFY_SCORES, scores, 'DT_FLOAT')):
    if value is None:
      continue
    if value.ndim != 2:
      raise errors.invalid_argument(
          f'Expected Tensor shape: [batch_size num_classes] but got {list(value.shape)}')
    ok = value.dtype == object if dtype == 'DT_STRING' else value.dtype == np.float32
    if not ok:
      raise errors.invalid_argument(f'Expected {key} Tensor of {dtype}.')
    if value.shape[0] != n:
      raise errors.invalid_argument(
          f'Expected {key} output batch size of {n}. Got: {value.shape[0]}')
  if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
    raise errors.invalid_argument(
        'Tensors class and score should match in dim_size(1). '
        f'Got {classes.shape[1]} vs. {scores.shape[1]}')
  num_classes = (classes if classes is not None else scores).shape[1]
  for i in range(n):
    c = result.classifications.add()
    for j in range(num_classes):
      cl = c.classes.add()
      if classes is not None:
        cl.label = classes[i, j].decode() if isinstance(classes[i, j], bytes) else classes[i, j]
      if scores is not None:
        cl.score = float(scores[i, j])


def _regression_result(value: np.ndarray, n: int, result) -> None:
  if value.dtype != np.float32:
    raise errors.invalid_argument(
        f'Expected output Tensor of DT_FLOAT.  Got: {_array_dtype_name(value)}')
  if not (value.ndim == 1 or (value.ndim == 2 and value.shape[1] == 1)):
    raise errors.invalid_argument(
        'Expected output Tensor shape to be either [batch_size] or [batch_size, 1] '
        f'but got {list(value.shape)}')
  if value.shape[0] != n:
    raise errors.invalid_argument(
        f'Input batch size did not match output batch size: {n} vs. {value.shape[0]}')
  for v in value.reshape(-1):
    result.regressions.add().value = float(v)


def classify(servable: Servable, request: classification_pb2.ClassificationRequest
             ) -> classification_pb2.ClassificationResponse:
  name, signature = _signature_for(servable, request.model_spec, CLASSIFY_METHOD,
                                   'classification')
  keys = _classify_fetches(signature)
  examples = serialized_examples(request.input)
  input_name = next(iter(signature.inputs.values())).name
  values = servable.run({input_name: examples}, [signature.outputs[k].name for k in keys],
                        api='Classify')
  response = classification_pb2.ClassificationResponse()
  fill_model_spec(response.model_spec, servable, request.model_spec.signature_name)
  _classification_result(keys, values, len(examples), response.result)
  return response


def regress(servable: Servable, request: regression_pb2.RegressionRequest
            ) -> regression_pb2.RegressionResponse:
  name, signature = _signature_for(servable, request.model_spec, REGRESS_METHOD, 'regression')
  if len(signature.outputs) != 1:
    raise errors.invalid_argument('Expected one output Tensor.')
  if REGRESS_OUTPUTS not in signature.outputs:
    raise errors.invalid_argument(
        f'No output Tensor named "{REGRESS_OUTPUTS}" in the regression signature.')
  examples = serialized_examples(request.input)
  input_name = next(iter(signature.inputs.values())).name
  (value,) = servable.run({input_name: examples}, [signature.outputs[REGRESS_OUTPUTS].name],
                          api='Regress')
  response = regression_pb2.RegressionResponse()
  fill_model_spec(response.model_spec, servable, request.model_spec.signature_name)
  _regression_result(value, len(examples), response.result)
  return response


def multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest
                    ) -> inference_pb2.MultiInferenceResponse:
  """Several classify/regress signatures of one model over one input, in one run."""
  if not request.tasks:
    raise errors.invalid_argument('Found no tasks in MultiInference request.')
  plans: List[Tuple[object, str, object, List[str]]] = []
  seen, input_name = set(), None
  for task in request.tasks:
    if task.model_spec.name != request.tasks[0].model_spec.name:
      raise errors.invalid_argument(
          'All ModelSpecs in a MultiInferenceRequest must access the same model name.')
    name = task.model_spec.signature_name or sig.DEFAULT
    if name in seen:
      raise errors.invalid_argument(f'Duplicate evaluation of signature: {name}')
    seen.add(name)
    if task.method_name == CLASSIFY_METHOD:
      _, signature = _signature_for(servable, task.model_spec, CLASSIFY_METHOD,
                                    'classification')
      keys = _classify_fetches(signature)
    elif task.method_name == REGRESS_METHOD:
      _, signature = _signature_for(servable, task.model_spec, REGRESS_METHOD, 'regression')
      if REGRESS_OUTPUTS not in signature.outputs:
        raise errors.invalid_argument(
            f'No output Tensor named "{REGRESS_OUTPUTS}" in the regression signature.')
      keys = [REGRESS_OUTPUTS]
    else:
      raise errors.unimplemented_method(task.method_name)
    this_input = next(iter(signature.inputs.values())).name
    if input_name is not None and this_input != input_name:
      raise errors.invalid_argument('Input tensor must be the same for all Signatures.')
    input_name = this_input
    plans.append((task, task.method_name, signature, keys))
  examples = serialized_examples(request.input)
  fetches: List[str] = []
  for _, _, signature, keys in plans:
    fetches += [signature.outputs[k].name for k in keys if signature.outputs[k].name not in fetches]
  values = dict(zip(fetches, servable.run({input_name: examples}, fetches,
                                         api='MultiInference')))
  response = inference_pb2.MultiInferenceResponse()
  for task, method, signature, keys in plans:
    result = response.results.add()
    fill_model_spec(result.model_spec, servable, task.model_spec.signature_name)
    got = [values[signature.outputs[k].name] for k in keys]
    if method == CLASSIFY_METHOD:
      _classification_result(keys, got, len(examples), result.classification_result)
    else:
      _regression_result(got[0], len(examples), result.regression_result)
  return response


# ---------------------------------------------------------------- GetModelMetadata
def model_metadata(servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest
                   ) -> get_model_metadata_pb2.GetModelMetadataResponse:
  if not request.metadata_field:
    raise errors.invalid_argument(
        'GetModelMetadataRequest must specify at least one metadata_field')
  for field in request.metadata_field:
    if field != SIGNATURE_DEF_FIELD:
      raise errors.invalid_argument(f'Metadata field {field} is not supported')
  response = get_model_metadata_pb2.GetModelMetadataResponse()
  response.model_spec.name = servable.name
  response.model_spec.version.value = servable.version
  sig_map = get_model_metadata_pb2.SignatureDefMap()
  for k, v in servable.signatures.items():
    sig_map.signature_def[k].CopyFrom(v)
  packed = any_pb2.Any()
  packed.Pack(sig_map)
  response.metadata[SIGNATURE_DEF_FIELD].CopyFrom(packed)
  return response

