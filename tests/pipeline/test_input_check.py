"""Bad input is refused with a clear error before any long work starts."""
import os
import time

import pytest

from datagen import synthetic
from pipeline import local_runner
from pipeline.input_check import InputError, check_data
from transform import feature_spec as fs

from helpers import REPO_ROOT

SPEC = os.path.join(REPO_ROOT, 'specs', 'default.yaml')


@pytest.fixture(scope='module')
def spec():
  return fs.load(SPEC)


@pytest.fixture()
def good(tmp_path):
  synthetic.write(synthetic.generate(500, seed=1), str(tmp_path), ('csv', 'parquet'))
  return tmp_path


def _rewrite_csv(folder, fn):
  path = next((folder / 'csv').iterdir())
  lines = path.read_text().splitlines()
  path.write_text('\n'.join(fn(lines)) + '\n')
  return path


def test_good_data_passes(good, spec):
  assert check_data(str(good / 'csv'), spec) == {'files': 1, 'rows': 500, 'format': 'csv'}
  assert check_data(str(good / 'parquet'), spec)['format'] == 'parquet'


def test_empty_folder(tmp_path, spec):
  with pytest.raises(InputError, match='is empty'):
    check_data(str(tmp_path), spec)
  with pytest.raises(InputError, match='does not exist'):
    check_data(str(tmp_path / 'nope'), spec)


def test_empty_file(tmp_path, spec):
  (tmp_path / 'a.csv').write_text('')
  with pytest.raises(InputError, match='empty file'):
    check_data(str(tmp_path), spec)


def test_file_without_label(good, spec):
  def drop_clicked(lines):
    header = lines[0].split(',')
    i = header.index('clicked')
    return [','.join(c for j, c in enumerate(l.split(',')) if j != i) for l in lines]
  path = _rewrite_csv(good, drop_clicked)
  with pytest.raises(InputError, match=r"missing column\(s\) \['clicked'\]") as e:
    check_data(str(good / 'csv'), spec)
  assert str(path) in str(e.value)


def test_spec_names_missing_column(good, spec):
  raw = spec.to_dict()
  raw['numeric'].append({'name': 'no_such_column', 'log': False, 'default': 0.0})
  bad = fs.from_dict(raw)
  for fmt in ('csv', 'parquet'):
    with pytest.raises(InputError, match=r"missing column\(s\) \['no_such_column'\]"):
      check_data(str(good / fmt), bad)


def test_unparseable_number(good, spec):
  def corrupt(lines):
    header = lines[0].split(',')
    i = header.index('feat_3')
    row = lines[42].split(',')
    row[i] = '12,5x'.replace(',', '')
    lines[42] = ','.join(row)
    return lines
  _rewrite_csv(good, corrupt)
  with pytest.raises(InputError, match=r'column "feat_3", data row 42: \'125x\' is not a number'):
    check_data(str(good / 'csv'), spec)


def test_mixed_formats(good, spec):
  os.rename(next((good / 'parquet').iterdir()), good / 'csv' / 'x.parquet')
  with pytest.raises(InputError, match='mixes CSV and Parquet'):
    check_data(str(good / 'csv'), spec)


def test_runner_refuses_before_running(tmp_path, capsys):
  """The main job exits 2 with the message at once, without starting TFX."""
  t = time.time()
  rc = local_runner.main(['--data', str(tmp_path), '--output-dir', str(tmp_path / 'out')])
  assert rc == 2
  assert 'is empty' in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()
  assert time.time() - t < 30


def test_runner_refuses_bad_trainer_settings(tmp_path, capsys):
  bad_section = tmp_path / 'bad.yaml'
  bad_section.write_text('model: {dropout: 0.1}\n')
  assert local_runner.main(['--trainer-config', str(bad_section)]) == 2
  assert 'sections from' in capsys.readouterr().err
  bad_field = tmp_path / 'field.yaml'
  bad_field.write_text('model_config: {depth: 3}\n')
  data = tmp_path / 'data'
  data.mkdir()
  (data / 'x.csv').write_text('gender,clicked\n1,0\n')
  spec = tmp_path / 'spec.yaml'
  spec.write_text('labels: [clicked]\ncategorical: [gender]\n')
  rc = local_runner.main(['--data', str(data), '--spec', str(spec), '--model', 'dcn_v2',
                          '--trainer-config', str(bad_field),
                          '--output-dir', str(tmp_path / 'out')])
  assert rc == 2
  assert "unknown setting(s) ['depth']" in capsys.readouterr().err
  assert not (tmp_path / 'out').exists()


def test_default_data_from_an_older_generator_is_regenerated(tmp_path, monkeypatch):
  from pipeline import configs
  folder = tmp_path / 'data' / 'default' / 'csv'
  folder.mkdir(parents=True)
  (folder / 'data.csv').write_text('gender,age_group,clicked\n1,2,0\n')   # no ad_category
  monkeypatch.setattr(configs, 'DEFAULT_DATA', str(folder))
  config = configs.PipelineConfig(data_root=str(folder))
  local_runner.ensure_default_data(config, rows=500, seed=0)
  header = next(folder.glob('*.csv')).read_text().splitlines()[0].split(',')
  assert 'ad_category' in header
  before = sorted(p.stat().st_mtime_ns for p in folder.iterdir())
  local_runner.ensure_default_data(config, rows=500, seed=0)   # current data: kept
  assert sorted(p.stat().st_mtime_ns for p in folder.iterdir()) == before
