"""The lint of ruff.toml (pycodestyle's errors, Pyflakes, and no noqa that silences
nothing) over the whole tree, with the pinned ruff of requirements/constraints.txt."""
import subprocess
import sys

from pipeline import configs


def test_the_tree_passes_the_lint():
  run = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '.'],
                       cwd=configs.REPO_ROOT, capture_output=True, text=True)
  assert 'No module named ruff' not in run.stderr, 'ruff is a test requirement: make test'
  assert run.returncode == 0, run.stdout + run.stderr


def test_the_lint_fails_on_what_it_checks(tmp_path):
  # An unused import and a noqa that silences nothing: both must fail under ruff.toml.
  bad = tmp_path / 'bad.py'
  bad.write_text('import os\nx = 1  # noqa: E402\n')
  run = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '--config',
                        str(configs.REPO_ROOT) + '/ruff.toml', str(bad)],
                       capture_output=True, text=True)
  assert run.returncode == 1
  assert 'F401' in run.stdout and 'RUF100' in run.stdout
