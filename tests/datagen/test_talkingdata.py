"""TalkingData AdTracking's sample through the conversion step and its spec: the table the
pipeline reads, with no label leak, accepted by the input checks."""
import os

import numpy as np
import pytest

from pipeline.input_check import check_data
from transform import feature_spec as fs

from helpers import REPO_ROOT, shared_data


def test_conversion_and_spec(tmp_path):
  from datagen import talkingdata
  raw = shared_data('talkingdata_adtracking_sample')
  table = talkingdata.load(raw)
  assert table.num_rows == 100_000
  assert 'attributed_time' not in table.column_names        # only set on positives: a leak
  assert int(np.sum(table.column('is_attributed').to_numpy())) == 227
  hours = table.column('hour').to_numpy()
  assert hours.min() >= 0 and hours.max() <= 23 and len(np.unique(hours)) > 12
  assert set(np.unique(table.column('day_of_week').to_numpy())) <= set(range(7))
  # The first row of the Kaggle file: 87540,12,1,13,497,2017-11-07 09:30:38 (a Tuesday).
  first = table.slice(0, 1).to_pylist()[0]
  assert (first['ip'], first['app'], first['hour'], first['day_of_week']) == (87540, 12, 9, 1)
  folder = talkingdata.convert(raw, str(tmp_path))
  spec = fs.load(os.path.join(REPO_ROOT, 'specs', 'talkingdata.yaml'))
  summary = check_data(folder, spec)
  assert summary['rows'] == 100_000 and summary['format'] == 'csv'
  assert spec.primary_label.column == 'is_attributed'


def test_missing_file_is_a_clear_error(tmp_path):
  from datagen import talkingdata
  with pytest.raises(FileNotFoundError, match='train_sample.csv'):
    talkingdata.load(str(tmp_path))
  (tmp_path / 'train_sample.csv').write_text('ip,app\n1,2\n')
  with pytest.raises(ValueError, match='missing column'):
    talkingdata.load(str(tmp_path))
