"""Documents generated from the code stay in step with it: the architecture diagram (its
boxes name real modules; the Mermaid block and the SVG are current) and the command-line
reference (every command's --help)."""
import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'docs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module


@pytest.fixture(scope='module')
def arch():
  return _load('architecture')


def test_every_module_named_in_the_diagram_exists(arch, monkeypatch, tmp_path):
  assert arch.missing_modules() == []
  named = {m for n in arch.NODES for m in n.modules}
  assert {'trainer/task.py', 'serving/server.py', 'policy/bidding/bidders.py'} <= named
  # The check does fail: from a folder without the modules, all of them are missing.
  monkeypatch.setattr(arch, 'REPO', str(tmp_path))
  assert arch.missing_modules() == sorted(named)


def test_diagram_edges_join_known_boxes_and_every_group_is_used(arch):
  ids = {n.id for n in arch.NODES}
  assert len(ids) == len(arch.NODES)
  assert all(a in ids and b in ids for a, b, _ in arch.EDGES)
  assert {n.group for n in arch.NODES} == {g.id for g in arch.GROUPS}


def test_mermaid_block_and_svg_are_current(arch):
  with open(arch.DOC, encoding='utf-8') as f:
    doc = f.read()
  assert arch._block(doc) == arch.mermaid(), 'run python docs/architecture.py'
  with open(arch.SVG, encoding='utf-8') as f:
    svg = f.read()
  for n in arch.NODES:
    assert n.title.split('\n')[0] in svg, n.title
    assert n.modules[0] in svg


def test_cli_reference_matches_every_commands_help():
  cli = _load('cli_help')
  with open(cli.DOC, encoding='utf-8') as f:
    assert f.read() == cli.render(), 'run python docs/cli_help.py'
