"""components/parquet_example_gen.py: a Parquet row becomes a tf.Example that keeps its
zeros and leaves its missing values out."""
import numpy as np
import pytest


def test_parquet_rows_keep_zeros():
  from components.parquet_example_gen import row_to_example
  ex = row_to_example({'label': np.int64(0), 'price': 0.0, 'cat': 0, 'flag': False,
                       'name': 'a', 'empty': '', 'missing': None, 'ids': np.array([0, 3])})
  f = ex.features.feature
  assert list(f['label'].int64_list.value) == [0]
  assert list(f['price'].float_list.value) == [0.0]
  assert list(f['cat'].int64_list.value) == [0]
  assert list(f['flag'].int64_list.value) == [0]
  assert list(f['name'].bytes_list.value) == [b'a']
  assert not f['empty'].ListFields() and not f['missing'].ListFields()
  assert list(f['ids'].int64_list.value) == [0, 3]
  with pytest.raises(TypeError, match='unsupported'):
    row_to_example({'x': {'nested': 1}})
