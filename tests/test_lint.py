"""The lint of ruff.toml (pycodestyle's errors, Pyflakes, and no noqa that silences
nothing) over the whole tree, with the pinned ruff of requirements/constraints.txt."""
import os
import re
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


def test_legacy_keras_is_set_once_per_package():
  """trainer, transform and pipeline set TF_USE_LEGACY_KERAS in their __init__, which
  runs before any of their modules: a module of theirs that sets it again does nothing."""
  again = []
  for package in ('trainer', 'transform', 'pipeline'):
    root = os.path.join(configs.REPO_ROOT, package)
    with open(os.path.join(root, '__init__.py'), encoding='utf-8') as f:
      assert "os.environ['TF_USE_LEGACY_KERAS'] = '1'" in f.read(), package
    for folder, _, files in os.walk(root):
      for name in files:
        path = os.path.join(folder, name)
        if name.endswith('.py') and path != os.path.join(root, '__init__.py'):
          with open(path, encoding='utf-8') as f:
            if re.search(r"environ(\[|\.setdefault\()'TF_USE_LEGACY_KERAS'", f.read()):
              again.append(os.path.relpath(path, configs.REPO_ROOT))
  assert again == []


def test_no_test_imports_conftest():
  tests = os.path.join(configs.REPO_ROOT, 'tests')
  importers = []
  for folder, _, files in os.walk(tests):
    for name in sorted(files):
      if name.endswith('.py'):
        with open(os.path.join(folder, name), encoding='utf-8') as f:
          if re.search(r'^\s*(from conftest import|import conftest)', f.read(), re.M):
            importers.append(os.path.relpath(os.path.join(folder, name), tests))
  assert importers == []      # shared helpers live in tests/helpers.py


def test_serving_imports_no_training_package():
  """The server and its clients depend on TensorFlow and the serving protos only: a
  serving module that imports the trainer, the transform, the generator or the pipeline
  runs against the layering (the models the serving tests need come from bench.fixtures)."""
  root = os.path.join(configs.REPO_ROOT, 'serving')
  importers = []
  for folder, _, files in os.walk(root):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        with open(path, encoding='utf-8') as f:
          if re.search(r'^\s*(from|import) (trainer|transform|datagen|pipeline|components|'
                       r'policy|bench)\b', f.read(), re.M):
            importers.append(os.path.relpath(path, configs.REPO_ROOT))
  assert importers == []


def test_every_production_module_has_its_test_module():
  """tests/ mirrors the packages: ``serving/manager.py`` is tested in
  ``tests/serving/test_manager.py`` (``__main__.py`` in ``test_main.py``)."""
  missing = []
  for package in ('datagen', 'transform', 'trainer', 'pipeline', 'components', 'serving',
                  'policy'):
    for folder, _, files in os.walk(os.path.join(configs.REPO_ROOT, package)):
      for name in files:
        if name.endswith('.py') and name != '__init__.py':
          module = os.path.relpath(os.path.join(folder, name), configs.REPO_ROOT)
          test = os.path.join('tests', os.path.dirname(module),
                              'test_' + ('main.py' if name == '__main__.py' else name))
          if not os.path.isfile(os.path.join(configs.REPO_ROOT, test)):
            missing.append(f'{module} -> {test}')
  assert missing == []
