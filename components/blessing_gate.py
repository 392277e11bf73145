"""``BlessingGate``: one model blessing from several Evaluators, blessed only if all are.

TFMA compares a candidate with one baseline per evaluation, and the pipeline has two:
the latest blessed model (no regression) and the GBDT baseline (beat the trees). Each has
its own Evaluator, and the OffPolicyEvaluator may add a third verdict (the candidate's
policy's lift); the Pusher takes one ``model_blessing``. TFX has no component that
combines blessings, so this one does: its output is a standard ``ModelBlessing``
(``BLESSED``/``NOT_BLESSED`` file, custom properties ``blessed``, ``current_model`` and
``current_model_id`` from the first input, as the Evaluator writes them), which the
Pusher checks and the ``latest_blessed_model_resolver`` reads. The reasons are kept in
``blessing_gate.json`` (which inputs said no).
"""

# No "from __future__ import annotations": the @component decorator reads real annotations.

import json
import os
from typing import Optional

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'
REPORT_FILE = 'blessing_gate.json'
COPIED_PROPERTIES = ('current_model', 'current_model_id', 'baseline_model',
                     'baseline_model_id')


def is_blessed(blessing) -> Optional[bool]:
  """A ModelBlessing's verdict, read as the Pusher reads it (its ``blessed`` property):
  of a TFX artifact, or of the ML Metadata artifact a run's report reads; None for a
  blessing without a verdict."""
  props = getattr(blessing, 'mlmd_artifact', blessing).custom_properties
  return bool(props['blessed'].int_value) if 'blessed' in props else None


def write_verdict(output, ok: bool) -> None:
  """A ModelBlessing's verdict as the Pusher and the resolver read it: the
  ``BLESSED``/``NOT_BLESSED`` file and the ``blessed`` property."""
  output.set_int_custom_property('blessed', int(ok))
  os.makedirs(output.uri, exist_ok=True)
  with open(os.path.join(output.uri, BLESSED_FILE if ok else NOT_BLESSED_FILE), 'w'):
    pass


def write_blessing(output, model, ok: bool, report, report_file: str) -> None:
  """A custom evaluator's ModelBlessing of ``model``: the verdict, the model properties
  the resolver reads (as the Evaluator writes them), and ``report`` as JSON beside it."""
  output.set_string_custom_property('current_model', model.uri)
  output.set_int_custom_property('current_model_id', model.id)
  write_verdict(output, ok)
  with open(os.path.join(output.uri, report_file), 'w') as f:
    json.dump(report, f, indent=2)


def combine(blessings, output) -> bool:
  """Writes ``output`` (a ModelBlessing) as the conjunction of ``blessings`` ({name:
  ModelBlessing}); the first one's model properties are copied. Returns the verdict."""
  verdicts = {name: bool(is_blessed(b)) for name, b in blessings.items()}
  first = next(iter(blessings.values()))
  props = first.mlmd_artifact.custom_properties
  for key in COPIED_PROPERTIES:
    if key in props:
      if props[key].HasField('int_value'):
        output.set_int_custom_property(key, props[key].int_value)
      else:
        output.set_string_custom_property(key, props[key].string_value)
  ok = all(verdicts.values())
  for name, v in verdicts.items():
    output.set_int_custom_property(f'{name}_blessed', int(v))
  write_verdict(output, ok)
  with open(os.path.join(output.uri, REPORT_FILE), 'w') as f:
    json.dump({'blessed': ok, 'inputs': verdicts,
               'uris': {name: b.uri for name, b in blessings.items()}}, f, indent=2)
  return ok


@component
def BlessingGate(
    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    gbdt_blessing: InputArtifact[standard_artifacts.ModelBlessing] = None,
    ope_blessing: InputArtifact[standard_artifacts.ModelBlessing] = None,
) -> None:
  """Blessed iff the Evaluator (gates and no regression) blessed the candidate, and so did
  those of the GbdtEvaluator (beats the GBDT baseline) and the OffPolicyEvaluator (its
  policy's lift) that the pipeline has."""
  inputs = {'evaluator': model_blessing, 'gbdt': gbdt_blessing, 'ope': ope_blessing}
  combine({k: v for k, v in inputs.items() if v is not None}, blessing)
