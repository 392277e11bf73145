"""Pipeline configuration: Beam presets, environment overrides, paths."""
import os
import subprocess
import sys

import pytest

from pipeline import configs


def test_beam_presets():
  c = configs.PipelineConfig(beam_preset='multi_processing', beam_args=['--foo=1'])
  args = c.beam_pipeline_args()
  assert '--direct_running_mode=multi_processing' in args and args[-1] == '--foo=1'
  for name in ('in_memory', 'flink', 'spark', 'dataflow'):
    assert configs.PipelineConfig(beam_preset=name).beam_pipeline_args()
  assert '--runner=FlinkRunner' in configs.beam_presets()['flink']
  with pytest.raises(ValueError, match='unknown beam preset'):
    configs.PipelineConfig(beam_preset='storm').beam_pipeline_args()


def test_paths():
  c = configs.PipelineConfig(pipeline_root='/r', serving_model_dir='/s', model_name='m',
                             pipeline_name='p')
  assert c.metadata == '/r/p/metadata.db'
  assert c.push_base == '/s/m'


def test_environment_overrides(tmp_path):
  env = dict(os.environ, CTR_WORKDIR=str(tmp_path), CTR_TRAIN_STEPS='7', CTR_ROWS='123',
             CTR_MIN_AUC='0.7', CTR_GBDT_BASELINE='Off', CTR_OPE='1')
  out = subprocess.run(
      [sys.executable, '-c', 'from pipeline import configs as c; p = c.PipelineConfig(); '
       'print(p.train_steps, c.DEFAULT_ROWS, p.min_auc, p.gbdt_baseline, p.ope, '
       'p.data_root, p.pipeline_root)'],
      env=env, capture_output=True, text=True, check=True).stdout.split()
  assert out[:5] == ['7', '123', '0.7', 'False', 'True']
  assert out[5].startswith(str(tmp_path)) and out[6].startswith(str(tmp_path))
