"""Joins MovieLens-100K's raw files into the one table the pipeline reads.

The conversion step named in ``specs/movielens_100k.yaml``: ``u.data`` (ratings) joined
with ``u.user`` (age, gender, occupation, zip) and ``u.item`` (19 genre flags, written as
one ``|``-separated ``genres`` sequence), plus ``hour`` and ``day_of_week`` of the
rating's UTC timestamp. The label (``rating >= 4``) is applied by the spec, not here, so
the table keeps the raw rating. The data is read from ``../shared/data`` and never copied
into the repository.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from datagen.synthetic import write_csv

RAW_FILES = ('u.data', 'u.user', 'u.item', 'u.genre')


def default_raw_dir() -> str:
  here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(here), 'shared', 'data', 'movielens_100k')


def load(raw_dir: str) -> pa.Table:
  """Returns the joined table (100,000 rows for ML-100K)."""
  missing = [f for f in RAW_FILES if not os.path.isfile(os.path.join(raw_dir, f))]
  if missing:
    raise FileNotFoundError(f'{raw_dir}: not a MovieLens-100K folder, missing {missing}')
  ratings = np.loadtxt(os.path.join(raw_dir, 'u.data'), dtype=np.int64)
  users = {}
  with open(os.path.join(raw_dir, 'u.user'), encoding='latin-1') as f:
    for line in f:
      uid, age, gender, occupation, zipcode = line.rstrip('\n').split('|')
      users[int(uid)] = (int(age), gender, occupation, zipcode)
  with open(os.path.join(raw_dir, 'u.genre'), encoding='latin-1') as f:
    genre_names = [l.split('|')[0] for l in f if l.strip()]
  genres = {}
  with open(os.path.join(raw_dir, 'u.item'), encoding='latin-1') as f:
    for line in f:
      parts = line.rstrip('\n').split('|')
      flags = parts[5:5 + len(genre_names)]
      genres[int(parts[0])] = '|'.join(g for g, x in zip(genre_names, flags) if x == '1')
  user_id, item_id, rating, ts = ratings.T
  u = [users[i] for i in user_id]
  return pa.table({
      'user_id': user_id, 'item_id': item_id,
      'age': np.array([x[0] for x in u], np.int64),
      'gender': [x[1] for x in u], 'occupation': [x[2] for x in u],
      'zip': [x[3] for x in u],
      'hour': (ts // 3600) % 24,
      'day_of_week': (ts // 86400 + 3) % 7,  # 1970-01-01 was a Thursday: 0 = Monday
      'genres': [genres[i] for i in item_id],
      'rating': rating, 'timestamp': ts,
  })


def convert(raw_dir: str, out_dir: str) -> str:
  """Writes the joined table to ``out_dir/csv/movielens.csv``; returns that folder."""
  table = load(raw_dir)
  folder = os.path.join(out_dir, 'csv')
  os.makedirs(folder, exist_ok=True)
  write_csv(table, os.path.join(folder, 'movielens.csv'))
  return folder
