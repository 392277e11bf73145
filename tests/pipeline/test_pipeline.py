"""pipeline/pipeline.py's ExampleGen: CSV and Parquet folders read into train / eval / test at
the spec's ratio, each split in its canonical row order."""
import hashlib
import os

import pytest
import tensorflow as tf
from tfx import v1 as tfx

from components import canonical_example_gen
from datagen import synthetic
from pipeline import configs
from pipeline.pipeline import _example_gen
from transform import feature_spec as fs

from helpers import REPO_ROOT

ROWS = 2000


def _run_example_gen(tmp_path, data_root, fmt, name):
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'default.yaml'))
  config = configs.PipelineConfig(pipeline_name=name, data_root=data_root,
                                  pipeline_root=str(tmp_path / 'tfx'))
  gen = _example_gen(config, spec, fmt)
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name=name, pipeline_root=os.path.join(config.pipeline_root, name),
      components=[gen], metadata_connection_config=tfx.orchestration.metadata
      .sqlite_metadata_connection_config(config.metadata),
      beam_pipeline_args=config.beam_pipeline_args()))
  root = os.path.join(config.pipeline_root, name, 'ExampleGen', 'examples')
  (run,) = os.listdir(root)
  out = {}
  for split in ('train', 'eval', 'test'):
    folder = os.path.join(root, run, f'Split-{split}')
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
    out[f'{split}_files'] = [os.path.basename(f) for f in files]
    out[f'{split}_digests'] = [hashlib.sha256(r.numpy()).digest() for r in
                               tf.data.TFRecordDataset(files, compression_type='GZIP')]
    times = []
    for rec in tf.data.TFRecordDataset(files, compression_type='GZIP'):
      ex = tf.train.Example.FromString(rec.numpy())
      times.append(ex.features.feature['event_time'].int64_list.value[0])
      if split == 'train' and len(times) == 1:
        f = ex.features.feature
        assert f['seq'].bytes_list.value or not f['seq'].ListFields()
        assert f['clicked'].int64_list.value[0] in (0, 1)
    out[split] = sorted(times)
  return out


@pytest.fixture(scope='module')
def splits(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('eg')
  table = synthetic.generate(ROWS, seed=5)
  synthetic.write(table, str(tmp / 'data'), ('csv', 'parquet'))
  out = {fmt: _run_example_gen(tmp, str(tmp / 'data' / fmt), fmt, f'eg-{fmt}')
         for fmt in ('csv', 'parquet')}
  out['times'] = sorted(table.column('event_time').to_pylist())
  return out


@pytest.mark.parametrize('fmt', ['csv', 'parquet'])
def test_every_row_in_one_split_at_the_spec_ratio(splits, fmt):
  s = splits[fmt]
  everything = s['train'] + s['eval'] + s['test']
  assert sorted(everything) == splits['times']  # each row exactly once
  assert 0.74 * ROWS < len(s['train']) < 0.86 * ROWS
  assert 0.06 * ROWS < len(s['eval']) < 0.14 * ROWS
  assert 0.06 * ROWS < len(s['test']) < 0.14 * ROWS


@pytest.mark.parametrize('fmt', ['csv', 'parquet'])
def test_splits_are_written_in_canonical_order(splits, fmt):
  s = splits[fmt]
  for split in ('train', 'eval', 'test'):
    assert s[f'{split}_files'] == [canonical_example_gen.file_name(0)]
    assert s[f'{split}_digests'] == sorted(s[f'{split}_digests'])


