"""datagen/movielens.py: MovieLens-100K's ratings joined with their users and items, on a
hand-made folder (always) and on the real data (skipped where ../shared/data is absent)."""
import datetime

import numpy as np
import pyarrow.csv as pv
import pytest

from datagen import movielens
from helpers import shared_data


def _raw(folder):
  (folder / 'u.data').write_text('1\t10\t5\t881250949\n2\t11\t2\t0\n1\t11\t4\t86399\n')
  (folder / 'u.user').write_text('1|24|M|technician|85711\n2|53|F|other|94043\n')
  (folder / 'u.genre').write_text('unknown|0\nAction|1\nComedy|2\n\n')
  (folder / 'u.item').write_text('10|A (1995)|01-Jan-1995||url|0|1|1\n'
                                 '11|B (1995)|01-Jan-1995||url|1|0|0\n')
  return folder


def test_join_on_a_hand_made_folder(tmp_path):
  t = movielens.load(str(_raw(tmp_path)))
  assert t.num_rows == 3
  rows = t.to_pylist()
  assert rows[0] == {'user_id': 1, 'item_id': 10, 'age': 24, 'gender': 'M',
                     'occupation': 'technician', 'zip': '85711', 'hour': 15,
                     'day_of_week': 3, 'genres': 'Action|Comedy', 'rating': 5,
                     'timestamp': 881250949}
  # 1997-12-04 15:55:49 UTC was a Thursday (Monday = 0).
  when = datetime.datetime.fromtimestamp(881250949, datetime.timezone.utc)
  assert (when.hour, when.weekday()) == (15, 3)
  assert rows[1]['genres'] == 'unknown' and rows[1]['gender'] == 'F'
  assert (rows[1]['hour'], rows[1]['day_of_week']) == (0, 3)       # the epoch: a Thursday
  assert (rows[2]['hour'], rows[2]['day_of_week']) == (23, 3)
  folder = movielens.convert(str(tmp_path), str(tmp_path / 'out'))
  back = pv.read_csv(f'{folder}/movielens.csv')
  assert back.column('rating').to_pylist() == [5, 2, 4]
  (tmp_path / 'u.genre').unlink()
  with pytest.raises(FileNotFoundError, match=r"missing \['u.genre'\]"):
    movielens.load(str(tmp_path))


def test_the_real_data():
  t = movielens.load(shared_data('movielens_100k'))
  assert t.num_rows == 100_000
  assert len(set(t.column('user_id').to_pylist())) == 943
  assert len(set(t.column('item_id').to_pylist())) == 1682
  first = t.slice(0, 1).to_pylist()[0]       # u.data's first line: 196 242 3 881250949
  assert (first['user_id'], first['item_id'], first['rating']) == (196, 242, 3)
  assert (first['age'], first['gender'], first['occupation']) == (49, 'M', 'writer')
  assert first['genres'] == 'Comedy'         # Kolya (1996)
  liked = np.asarray(t.column('rating')) >= 4
  assert 0.54 < liked.mean() < 0.56          # the spec's label: 55,375 of 100,000
