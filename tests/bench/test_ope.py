"""bench/ope: its rows are flat result objects and its docs tables are built from them
(small sizes; the real run is `python -m bench.ope`)."""
from bench import ope


def test_exact_and_speed_rows_make_the_tables():
  rows = ope.exact(sizes=(2_000,), pool_rows=50_000)
  rows += ope.speed(n=20_000, n_actions=10, repeats=1)
  for r in rows:
    assert {'dataset', 'policy', 'estimator', 'metric', 'value', 'unit'} <= set(r)
  ips = {r['metric']: r['value'] for r in rows if r.get('n') == 2_000
         and r['estimator'] == 'ips'}
  assert ips['rmse'] > 0 and 0 <= ips['coverage'] <= 1 and ips['sd'] > 0
  text = ope.markdown(rows, {r['dataset']: {'command': 'python -m bench.ope', 'date': 'today'}
                            for r in rows})
  assert '| 2,000 |' in text and 'cov.' in text
  assert 'Speed' in text and 'of the 10 s target' in text
  assert 'Command: `python -m bench.ope` (today).' in text
