"""The serving API section of docs/ARCHITECTURE.md: one request and its response for every
endpoint, gRPC and REST, recorded from the embedded server.

    python docs/api_examples.py           # train a small CTR model, serve it, record
    python docs/api_examples.py --check   # exit 1 when the Markdown block is stale

The examples live in ``docs/api_examples.json`` (requests as sent, responses as received);
the Markdown block is generated from it. ``tests/serving/test_client.py`` sends every
recorded request to its own server and model and checks that the response has the
recorded shape: the same fields, lists of the same lengths, the same strings, numbers
where there were numbers (model weights differ between trainings, so values may).
gRPC messages are written in protobuf's JSON mapping (what ``grpcurl`` takes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, 'docs', 'ARCHITECTURE.md')
SOURCE = os.path.join(REPO, 'docs', 'api_examples.json')
START, END = '<!-- api:start -->', '<!-- api:end -->'
MODEL = 'ctr'
BASE_PATH = '{base_path}'      # placeholder for the model base path in reload requests
LABELS = ('clicked', 'converted', 'true_ctr', 'true_cvr', 'true_ctcvr')


def _row(table) -> dict:
  row = table.slice(0, 1).to_pylist()[0]
  return {k: v for k, v in row.items() if k not in LABELS}


def _feature(v) -> dict:
  if isinstance(v, str):
    return {'bytesList': {'value': [__import__('base64').b64encode(v.encode()).decode()]}}
  if isinstance(v, int):
    return {'int64List': {'value': [str(v)]}}
  return {'floatList': {'value': [v]}}


def requests_for(row: dict, types: Dict[str, str]) -> List[dict]:
  """Every endpoint's request for one raw feature ``row``; ``types``: feature -> DT_*."""
  import base64
  spec = {'name': MODEL}
  example = {'features': {'feature': {k: _feature(v) for k, v in row.items()}}}
  rest_row = dict(row)
  tensors = {}
  for k, v in row.items():
    dtype = types[k]
    t = {'dtype': dtype, 'tensorShape': {'dim': [{'size': '1'}]}}
    if dtype == 'DT_STRING':
      t['stringVal'] = [base64.b64encode(str(v).encode()).decode()]
    elif dtype == 'DT_INT64':
      t['int64Val'] = [str(int(v))]
    else:
      t['floatVal'] = [float(v)]
    tensors[k] = t
  return [
      {'name': 'Predict (predict_raw: one tensor per raw feature)', 'protocol': 'grpc',
       'service': 'PredictionService', 'method': 'Predict',
       'request': {'modelSpec': dict(spec, signatureName='predict_raw'), 'inputs': tensors}},
      {'name': 'Classify', 'protocol': 'grpc', 'service': 'PredictionService',
       'method': 'Classify',
       'request': {'modelSpec': dict(spec, signatureName='classification'),
                   'input': {'exampleList': {'examples': [example]}}}},
      {'name': 'Regress', 'protocol': 'grpc', 'service': 'PredictionService',
       'method': 'Regress',
       'request': {'modelSpec': dict(spec, signatureName='regression'),
                   'input': {'exampleList': {'examples': [example]}}}},
      {'name': 'MultiInference (one task: the exported classification and regression '
               'signatures have separate input tensors, which MultiInference refuses, as '
               'TF Serving does)', 'protocol': 'grpc',
       'service': 'PredictionService', 'method': 'MultiInference',
       'request': {'tasks': [{'modelSpec': dict(spec, signatureName='classification'),
                              'methodName': 'tensorflow/serving/classify'}],
                   'input': {'exampleList': {'examples': [example]}}}},
      {'name': 'GetModelMetadata', 'protocol': 'grpc', 'service': 'PredictionService',
       'method': 'GetModelMetadata',
       'request': {'modelSpec': spec, 'metadataField': ['signature_def']}},
      {'name': 'GetModelStatus', 'protocol': 'grpc', 'service': 'ModelService',
       'method': 'GetModelStatus', 'request': {'modelSpec': spec}},
      {'name': 'HandleReloadConfigRequest', 'protocol': 'grpc', 'service': 'ModelService',
       'method': 'HandleReloadConfigRequest',
       'request': {'config': {'modelConfigList': {'config': [
           {'name': MODEL, 'basePath': BASE_PATH, 'modelPlatform': 'tensorflow'}]}}}},
      {'name': 'model status', 'protocol': 'rest', 'method': 'GET',
       'path': f'/v1/models/{MODEL}'},
      {'name': 'one version\'s status', 'protocol': 'rest', 'method': 'GET',
       'path': f'/v1/models/{MODEL}/versions/1'},
      {'name': 'metadata', 'protocol': 'rest', 'method': 'GET',
       'path': f'/v1/models/{MODEL}/metadata'},
      {'name': 'predict, row format, raw features', 'protocol': 'rest', 'method': 'POST',
       'path': f'/v1/models/{MODEL}:predict',
       'body': {'signature_name': 'predict_raw', 'instances': [rest_row]}},
      {'name': 'predict, columnar format', 'protocol': 'rest', 'method': 'POST',
       'path': f'/v1/models/{MODEL}/versions/1:predict',
       'body': {'signature_name': 'predict_raw',
                'inputs': {k: [v] for k, v in rest_row.items()}}},
      {'name': 'predict, serialized tf.Example (serving_default)', 'protocol': 'rest',
       'method': 'POST', 'path': f'/v1/models/{MODEL}:predict',
       'body': {'instances': [{'b64': '{example_b64}'}]}},
      {'name': 'classify', 'protocol': 'rest', 'method': 'POST',
       'path': f'/v1/models/{MODEL}:classify',
       'body': {'signature_name': 'classification', 'examples': [rest_row]}},
      {'name': 'regress', 'protocol': 'rest', 'method': 'POST',
       'path': f'/v1/models/{MODEL}:regress',
       'body': {'signature_name': 'regression', 'examples': [rest_row]}},
      {'name': 'Prometheus metrics', 'protocol': 'rest', 'method': 'GET',
       'path': '/monitoring/prometheus/metrics'},
  ]


def send(example: dict, grpc_target: str, rest_target: str, base_path: str,
         example_b64: str):
  """(status, response) of one recorded request against a server."""
  if example['protocol'] == 'grpc':
    import grpc
    from google.protobuf import json_format
    from tensorflow_serving.apis import (model_service_pb2_grpc,
                                         prediction_service_pb2_grpc)
    from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                         get_model_status_pb2, inference_pb2,
                                         model_management_pb2, predict_pb2, regression_pb2)
    classes = {'Predict': predict_pb2.PredictRequest,
               'Classify': classification_pb2.ClassificationRequest,
               'Regress': regression_pb2.RegressionRequest,
               'MultiInference': inference_pb2.MultiInferenceRequest,
               'GetModelMetadata': get_model_metadata_pb2.GetModelMetadataRequest,
               'GetModelStatus': get_model_status_pb2.GetModelStatusRequest,
               'HandleReloadConfigRequest': model_management_pb2.ReloadConfigRequest}
    body = json.loads(json.dumps(example['request']).replace(BASE_PATH, base_path))
    request = json_format.ParseDict(body, classes[example['method']]())
    with grpc.insecure_channel(grpc_target) as channel:
      stub = (prediction_service_pb2_grpc.PredictionServiceStub(channel)
              if example['service'] == 'PredictionService'
              else model_service_pb2_grpc.ModelServiceStub(channel))
      try:
        response = getattr(stub, example['method'])(request, timeout=60)
      except grpc.RpcError as e:
        return e.code().name, {'error': e.details()}
    return 'OK', json_format.MessageToDict(response)
  host, port = rest_target.rsplit(':', 1)
  conn = http.client.HTTPConnection(host, int(port), timeout=60)
  body = example.get('body')
  data = None if body is None else json.dumps(body).replace('{example_b64}', example_b64)
  conn.request(example['method'], example['path'], body=data,
               headers={'Content-Type': 'application/json'})
  r = conn.getresponse()
  text = r.read().decode()
  conn.close()
  if example['path'].startswith('/monitoring'):
    names = sorted({line.split('{')[0].split(' ')[0] for line in text.splitlines()
                    if line and not line.startswith('#')})
    return r.status, {'metric_names': names}
  return r.status, json.loads(text)


def skeleton(x):
  """The shape a response must keep: fields, list lengths, strings; numbers as 'number'."""
  if isinstance(x, dict):
    return {k: skeleton(v) for k, v in x.items()}
  if isinstance(x, list):
    return [len(x)] + [skeleton(v) for v in x[:1]]
  if isinstance(x, bool) or x is None:
    return x
  if isinstance(x, (int, float)):
    return 'number'
  try:
    float(x)
    return 'number'
  except ValueError:
    return x


def record(workdir: str) -> List[dict]:
  """Trains the small default CTR model, serves it, sends every request."""
  from serving import config as cfg
  from serving.core import ServerOptions
  from serving.server import ModelServer
  from bench.fixtures import write_ctr_model
  from transform import local
  import base64
  model_dir, test, spec = write_ctr_model(workdir)
  base = os.path.join(workdir, 'serving', MODEL)
  shutil.copytree(model_dir, os.path.join(base, '1'))
  server = ModelServer(ServerOptions(model_config=cfg.single_model_config(MODEL, base),
                                     file_system_poll_wait_seconds=0),
                       port=0, rest_api_port=0, host='127.0.0.1').start()
  try:
    from serving.client import PredictionClient
    from tensorflow.core.framework import types_pb2
    with PredictionClient(f'127.0.0.1:{server.port}', MODEL) as client:
      types = {k: types_pb2.DataType.Name(v) for k, v in client.feature_types().items()}
    row = {k: v for k, v in _row(test).items() if k in types}   # the model's raw features
    ex = base64.b64encode(local.serialize_examples(test.slice(0, 1), spec)[0]).decode()
    out = []
    for e in requests_for(row, types):
      status, response = send(e, f'127.0.0.1:{server.port}',
                              f'127.0.0.1:{server.rest_api_port}', base, ex)
      out.append(dict(e, status=status, response=response))
    return out
  finally:
    server.stop()


def compact(x, indent: int = 0, width: int = 92) -> str:
  """JSON with every object or list that fits on one line written on one line."""
  one = json.dumps(x)
  if len(one) + indent <= width or not isinstance(x, (dict, list)) or not x:
    return one
  pad = ' ' * (indent + 2)
  if isinstance(x, dict):
    items = [f'{pad}{json.dumps(k)}: {compact(v, indent + 2, width).lstrip()}'
             for k, v in x.items()]
    return '{\n' + ',\n'.join(items) + '\n' + ' ' * indent + '}'
  items = [pad + compact(v, indent + 2, width).lstrip() for v in x]
  return '[\n' + ',\n'.join(items) + '\n' + ' ' * indent + ']'


def _short(text: str, lines: int = 40) -> str:
  parts = text.splitlines()
  if len(parts) <= lines:
    return text
  return '\n'.join(parts[:lines] + [f'... ({len(parts) - lines} more lines in '
                                    f'docs/api_examples.json)'])


def signature_table(examples: List[dict]) -> str:
  """The exported signatures, from the recorded GetModelMetadata response."""
  meta = next(e for e in examples if e.get('method') == 'GetModelMetadata')['response']
  sigs = meta['metadata']['signature_def']['signatureDef']

  def tensors(d, limit=4):
    items = sorted(d.items())
    def shape(v):
      return ', '.join(x.get('size', '?') for x in v.get('tensorShape', {}).get('dim', []))

    text = ', '.join(f"`{k}` {v.get('dtype', 'DT_COMPOSITE')[3:].lower()} [{shape(v)}]"
                     for k, v in items[:limit])
    return text + (f' and {len(items) - limit} more (one per raw feature)'
                   if len(items) > limit else '')
  rows = ['| signature | method | inputs | outputs |', '|---|---|---|---|']
  for name in sorted(n for n in sigs if not n.startswith('__')):
    s = sigs[name]
    rows.append(f"| `{name}` | `{s.get('methodName', '')}` | {tensors(s.get('inputs', {}))} | "
                f"{tensors(s.get('outputs', {}), 8)} |")
  return '\n'.join(rows)


def markdown(examples: List[dict]) -> str:
  out = ['### Signatures of an exported CTR model', '',
         'From the recorded `GetModelMetadata` response below (dimension -1: the batch).', '',
         signature_table(examples), '', '### Endpoints', '']
  for e in examples:
    if e['protocol'] == 'grpc':
      out += [f"#### gRPC `{e['service']}/{e['method']}`: {e['name']}", '',
              'Request:', '', '```json', _short(compact(e['request'])), '```']
    else:
      out += [f"#### REST `{e['method']} {e['path']}`: {e['name']}", '']
      if e.get('body') is not None:
        out += ['Body:', '', '```json', _short(compact(e['body'])), '```']
    out += ['', f"Response ({e['status']}):", '', '```json',
            _short(compact(e['response'])), '```', '']
  return '\n'.join(out).rstrip()


def _replace_block(doc: str, text: str) -> str:
  return doc[:doc.index(START) + len(START)] + '\n' + text + '\n' + doc[doc.index(END):]


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python docs/api_examples.py',
                              description=__doc__.split('\n')[0])
  p.add_argument('--check', action='store_true')
  args = p.parse_args(argv)
  with open(DOC, encoding='utf-8') as f:
    doc = f.read()
  if args.check:
    with open(SOURCE) as f:
      ok = _replace_block(doc, markdown(json.load(f))) == doc
    print('up to date' if ok else 'stale: run python docs/api_examples.py')
    return 0 if ok else 1
  with tempfile.TemporaryDirectory() as tmp:
    examples = record(tmp)
  with open(SOURCE, 'w') as f:
    json.dump(examples, f, indent=1)
    f.write('\n')
  text = _replace_block(doc, markdown(examples))    # before the file is opened for writing
  with open(DOC, 'w', encoding='utf-8') as f:
    f.write(text)
  print(f'recorded {len(examples)} examples into {SOURCE} and {DOC}')
  return 0


if __name__ == '__main__':
  sys.path.insert(0, REPO)
  sys.exit(main())
