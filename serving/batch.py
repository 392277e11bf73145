"""Offline batch scoring: a CSV or Parquet file through the served SavedModel, with Beam.

    python -m serving batch-predict --model-dir workdir/serving/ctr --input data.parquet \\
        --output predictions.jsonl [--key row_id] [--beam-arg=--runner=DirectRunner ...]

The same SavedModel and signature as online serving (``serving_default``), run by tfx-bsl's
``RunInference`` (the TFX ecosystem's batch inference transform, which BulkInferrer uses).
Rows become ``tf.Example``s typed by the model's ``predict_raw`` signature, exactly as the
online client builds them. The output is JSON lines ``{<key>: ..., <output>: ...}``, one per
input row; the key is the ``--key`` column, or the row's position in the file when the file
has none.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tensorflow.core.protobuf import saved_model_pb2
from tfx_bsl.public.beam import run_inference
from tfx_bsl.public.proto import model_spec_pb2

from serving import json_response, tensors
from serving import signatures as sig
from serving.client import make_example


def latest_version_dir(model_dir: str) -> str:
  """``model_dir`` itself when it is a SavedModel, else its highest numbered version."""
  if os.path.isfile(os.path.join(model_dir, 'saved_model.pb')):
    return model_dir
  versions = [int(v) for v in os.listdir(model_dir)
              if v.isdigit() and os.path.isfile(os.path.join(model_dir, v, 'saved_model.pb'))]
  if not versions:
    raise FileNotFoundError(f'no SavedModel in {model_dir} or its numbered versions')
  return os.path.join(model_dir, str(max(versions)))


def signature_defs(saved_model_dir: str) -> Dict[str, object]:
  sm = saved_model_pb2.SavedModel()
  with open(os.path.join(saved_model_dir, 'saved_model.pb'), 'rb') as f:
    sm.ParseFromString(f.read())
  for mg in sm.meta_graphs:
    if 'serve' in mg.meta_info_def.tags:
      return dict(mg.signature_def)
  raise ValueError(f'{saved_model_dir} has no "serve" MetaGraph')


def input_files(path: str) -> List[str]:
  files = ([os.path.join(path, f) for f in sorted(os.listdir(path))
            if f.endswith(('.csv', '.parquet', '.csv.gz'))] if os.path.isdir(path) else [path])
  if not files or not all(os.path.isfile(f) for f in files):
    raise FileNotFoundError(f'no .csv or .parquet files at {path}')
  for f in files:
    if not f.endswith(('.csv', '.parquet', '.csv.gz')):
      raise ValueError(f'{f}: batch scoring reads .csv or .parquet files')
  return files


class _ReadRows(beam.DoFn):
  """A file -> (position key, row) in batches; files are read in parallel by the runner.
  The position is the row's index, prefixed by the file name when there are several."""

  def __init__(self, several: bool, batch_rows: int = 10_000):
    self.several, self.batch_rows = several, batch_rows

  def process(self, path: str):
    if path.endswith('.parquet'):
      batches = pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows)
    else:
      batches = pacsv.read_csv(path).to_batches(max_chunksize=self.batch_rows)
    position = 0
    prefix = os.path.basename(path) + ':' if self.several else ''
    for batch in batches:
      for row in batch.to_pylist():
        yield f'{prefix}{position}', row
        position += 1


class _ToKeyedExample(beam.DoFn):
  def __init__(self, types: Dict[str, int], key: str):
    self.types, self.key = types, key

  def process(self, element: Tuple[str, dict]):
    position, row = element
    key = row.get(self.key, position) if self.key else position
    features = {k: v for k, v in row.items() if k != self.key}
    yield str(key), make_example(features, self.types)


def _format(element, output_filter: Optional[List[str]], key_name: str) -> str:
  key, log = element
  record = {key_name: int(key) if key.lstrip('-').isdigit() else key}
  outputs = log.predict_log.response.outputs
  for name in sorted(outputs):
    if output_filter and name not in output_filter:
      continue
    record[name] = json_response.row_value(tensors.to_ndarray(outputs[name], name))
  return json.dumps(record)


def score(model_dir: str, input_path: str, output_path: str, key: str = 'row_id',
          signature: str = sig.DEFAULT, output_filter: Optional[List[str]] = None,
          beam_args: Optional[List[str]] = None) -> str:
  """Scores every row; returns the output file's path."""
  version_dir = latest_version_dir(model_dir)
  sigs = signature_defs(version_dir)
  if signature not in sigs:
    raise ValueError(f'signature {signature!r} not in {version_dir}: {sorted(sigs)}')
  raw = sigs.get(sig.PREDICT_RAW)
  types = {k: v.dtype for k, v in raw.inputs.items()} if raw else {}
  spec = model_spec_pb2.InferenceSpecType(saved_model_spec=model_spec_pb2.SavedModelSpec(
      model_path=version_dir, signature_name=[signature], tag=['serve']))

  files = input_files(input_path)
  key_name = key or 'row'
  os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
  prefix = output_path[:-len('.jsonl')] if output_path.endswith('.jsonl') else output_path
  options = beam.options.pipeline_options.PipelineOptions(beam_args or [])
  with beam.Pipeline(options=options) as p:
    _ = (p
         | 'Files' >> beam.Create(files)
         | 'Read' >> beam.ParDo(_ReadRows(len(files) > 1))
         | 'ToExamples' >> beam.ParDo(_ToKeyedExample(types, key)).with_output_types(
             Tuple[str, bytes])
         | 'RunInference' >> run_inference.RunInference(spec)
         | 'Format' >> beam.Map(_format, output_filter, key_name)
         | 'Write' >> beam.io.WriteToText(prefix, file_name_suffix='.jsonl',
                                          shard_name_template=''))
  return prefix + '.jsonl'


def add_arguments(p: argparse.ArgumentParser) -> None:
  p.add_argument('--model-dir', required=True,
                 help='a SavedModel, or a model base path (its latest version is used)')
  p.add_argument('--input', required=True, help='CSV or Parquet file, or a folder of them')
  p.add_argument('--output', required=True, help='JSON lines file of predictions')
  p.add_argument('--key', default='row_id',
                 help='column that identifies a row (default row_id; the row position when '
                      'the file has no such column)')
  p.add_argument('--signature', default=sig.DEFAULT)
  p.add_argument('--output-filter', action='append', default=[])
  p.add_argument('--beam-arg', action='append', default=[],
                 help='a Beam pipeline option, e.g. --beam-arg=--direct_num_workers=2')


def main(args) -> int:
  try:
    path = score(args.model_dir, args.input, args.output, args.key, args.signature,
                 args.output_filter, args.beam_arg)
  except (FileNotFoundError, ValueError) as e:
    print(f'error: {e}')
    return 2
  print(f'wrote {path}')
  return 0
