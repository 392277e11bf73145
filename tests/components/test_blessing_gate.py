"""components/blessing_gate.py: the gate blesses only when every verdict does, and leaves
what the Pusher reads."""
import json
import os

import pytest


class _Blessing:
  """A ModelBlessing artifact as the Evaluator leaves it."""

  def __init__(self, uri, blessed, model_id=7):
    from tfx.types import standard_artifacts
    self.artifact = standard_artifacts.ModelBlessing()
    self.artifact.uri = str(uri)
    self.artifact.set_int_custom_property('blessed', int(blessed))
    self.artifact.set_int_custom_property('current_model_id', model_id)
    self.artifact.set_string_custom_property('current_model', '/models/7')


def test_a_blessing_without_a_verdict_is_neither():
  from tfx.types import standard_artifacts
  from components import blessing_gate
  empty = standard_artifacts.ModelBlessing()
  assert blessing_gate.is_blessed(empty) is None
  assert blessing_gate.is_blessed(empty.mlmd_artifact) is None


@pytest.mark.parametrize('evaluator,gbdt_ok', [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_blessing_gate_blesses_only_when_both_do(evaluator, gbdt_ok, tmp_path):
  from tfx.types import standard_artifacts
  from components import blessing_gate
  out = standard_artifacts.ModelBlessing()
  out.uri = str(tmp_path / 'out')
  ok = blessing_gate.combine({'evaluator': _Blessing(tmp_path / 'a', evaluator).artifact,
                              'gbdt': _Blessing(tmp_path / 'b', gbdt_ok).artifact}, out)
  assert ok is bool(evaluator and gbdt_ok)
  assert blessing_gate.is_blessed(out) is ok
  # The run's report reads the same verdict from ML Metadata's copy of the artifact.
  assert blessing_gate.is_blessed(out.mlmd_artifact) is ok
  assert os.path.isfile(out.uri + ('/BLESSED' if ok else '/NOT_BLESSED'))
  # What the Pusher and the latest-blessed-model resolver read.
  assert out.get_int_custom_property('current_model_id') == 7
  assert out.get_string_custom_property('current_model') == '/models/7'
  assert out.get_int_custom_property('gbdt_blessed') == gbdt_ok
  detail = json.load(open(os.path.join(out.uri, blessing_gate.REPORT_FILE)))
  assert detail['inputs'] == {'evaluator': bool(evaluator), 'gbdt': bool(gbdt_ok)}
