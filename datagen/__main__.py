"""Command line: ``python -m datagen {default,movielens,talkingdata} ...`` (``--help`` for
each)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
  p = argparse.ArgumentParser(prog='python -m datagen',
                              description='Write a dataset the pipeline can read.')
  sub = p.add_subparsers(dest='command', required=True)
  d = sub.add_parser('default', help='generate the synthetic default ad logs')
  d.add_argument('--rows', type=int, default=200_000)
  d.add_argument('--seed', type=int, default=0)
  d.add_argument('--out', required=True, help='writes <out>/<format>/data-*.<format>')
  d.add_argument('--formats', default='csv', help='comma-separated: csv,parquet')
  d.add_argument('--shards', type=int, default=1)
  d.add_argument('--spurious', action='store_true',
                 help='add the spurious column (leaks the label until --drift-at)')
  d.add_argument('--drift-at', type=float, default=0.8)
  m = sub.add_parser('movielens', help='join MovieLens-100K raw files into one CSV table')
  m.add_argument('--raw', default=None, help='folder with u.data, u.user, u.item, u.genre '
                 '(default: ../shared/data/movielens_100k)')
  m.add_argument('--out', required=True, help='writes <out>/csv/movielens.csv')
  td = sub.add_parser('talkingdata',
                      help='convert the TalkingData AdTracking sample into one CSV table')
  td.add_argument('--raw', default=None, help='folder with train_sample.csv '
                  '(default: ../shared/data/talkingdata_adtracking_sample)')
  td.add_argument('--out', required=True, help='writes <out>/csv/talkingdata.csv')
  a = p.parse_args(argv)
  try:
    return _run(a)
  except (FileNotFoundError, ValueError) as e:   # bad input: named, nothing written
    print(f'error: {e}', file=sys.stderr)
    return 2


def _run(a: argparse.Namespace) -> int:
  t = time.time()
  if a.command == 'default':
    from datagen import synthetic
    table = synthetic.generate(a.rows, a.seed, spurious=a.spurious, drift_at=a.drift_at)
    folders = synthetic.write(table, a.out, [f for f in a.formats.split(',') if f], a.shards)
    print(f'{a.rows} rows in {time.time() - t:.1f}s -> ' + ', '.join(folders.values()))
  elif a.command == 'talkingdata':
    from datagen import talkingdata
    folder = talkingdata.convert(a.raw or talkingdata.default_raw_dir(), a.out)
    print(f'TalkingData sample -> {folder} in {time.time() - t:.1f}s')
  else:
    from datagen import movielens
    folder = movielens.convert(a.raw or movielens.default_raw_dir(), a.out)
    print(f'MovieLens-100K -> {folder} in {time.time() - t:.1f}s')
  return 0


if __name__ == '__main__':
  sys.exit(main())
