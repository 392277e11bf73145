"""serving/batch.py: Beam batch scoring gives the online scores."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from serving import batch


def test_beam_batch_scoring_matches_online(ctr, tmp_path):
  table = ctr['test'].slice(0, 40)
  pq.write_table(table, tmp_path / 'rows.parquet')
  path = batch.score(str(ctr['base']), str(tmp_path / 'rows.parquet'),
                     str(tmp_path / 'scores.jsonl'))
  records = sorted((json.loads(line) for line in open(path)), key=lambda r: r['row_id'])
  assert [r['row_id'] for r in records] == list(range(40))
  np.testing.assert_allclose([r['probability'] for r in records],
                             ctr['expected']['probability'], rtol=1e-5)
  with pytest.raises(FileNotFoundError):
    batch.score(str(ctr['base']), str(tmp_path / 'missing.parquet'), str(tmp_path / 'x'))
