"""What several test modules share and that is not a fixture: the repository's root and
the real datasets of ../shared/data (a test that needs one skips with the reason when it
is absent). Fixtures live in conftest.py, which tests never import."""
import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')


def shared_data(name: str) -> str:
  """Path of a real dataset under ../shared/data, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f'real data {name} not found at {path} (../shared/data is absent)')
  return path
