"""python -m serving predict (serving/__main__.py): rows from a file scored over gRPC; bad
input exits 2."""
import json

import numpy as np

from serving import __main__ as cli
from helpers import CTR_MODEL


def test_predict_cli(ctr, tmp_path, capsys):
  rows = ctr['rows'][:6]
  path = tmp_path / 'rows.jsonl'
  with open(path, 'w') as f:
    for i, r in enumerate(rows):
      f.write(json.dumps({'row_id': f'r{i}', **r}) + '\n')
  out = tmp_path / 'out.jsonl'
  assert cli.main(['predict', '--model', CTR_MODEL, '--input', str(path), '--output', str(out),
                   '--server', f'127.0.0.1:{ctr["server"].port}', '--batch-size', '4']) == 0
  records = [json.loads(line) for line in open(out)]
  assert [r['row_id'] for r in records] == [f'r{i}' for i in range(6)]
  np.testing.assert_allclose([r['probability'] for r in records],
                             ctr['expected']['probability'][:6], rtol=1e-5)
  (tmp_path / 'bad.jsonl').write_text('{"hour": 1}\nnot json\n')
  assert cli.main(['predict', '--model', CTR_MODEL, '--input', str(tmp_path / 'bad.jsonl'),
                   '--server', f'127.0.0.1:{ctr["server"].port}']) == 2
  assert 'line 2: not JSON' in capsys.readouterr().err
