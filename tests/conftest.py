"""Shared fixtures. TF_USE_LEGACY_KERAS is set before anything imports TensorFlow."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')


def shared_data(name: str) -> str:
  """Path of a real dataset under ../shared/data, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f'real data {name} not found at {path} (../shared/data is absent)')
  return path
