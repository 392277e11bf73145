"""The Kubeflow V2 runner compiles the same pipeline to a pipeline-spec JSON file."""
import json

from pipeline import kubeflow_v2_runner
from pipeline.pipeline import COMPONENT_IDS


def test_compiles_every_component(tmp_path):
  out = tmp_path / 'ctr.json'
  rc = kubeflow_v2_runner.main([
      '--output', str(out), '--image', 'example.org/ctr-tfx:test',
      '--pipeline-root', 'gs://bucket/tfx', '--data', 'gs://bucket/data/csv',
      '--serving-dir', 'gs://bucket/serving', '--beam-preset', 'dataflow',
      '--beam-arg=--project=p', '--beam-arg=--region=europe-west4'])
  assert rc == 0
  doc = json.loads(out.read_text())
  spec = doc.get('pipelineSpec', doc)
  tasks = spec['root']['dag']['tasks']
  for component in COMPONENT_IDS:
    # The resolver compiles to one task per resolved channel, named after it.
    assert any(t == component or t.startswith(component + '-') for t in tasks), \
        f'{component} missing from {sorted(tasks)}'
  assert len(tasks) >= len(COMPONENT_IDS)
  text = out.read_text()
  assert 'example.org/ctr-tfx:test' in text
  assert 'trainer.task.run_fn' in text and 'transform.preprocessing.preprocessing_fn' in text
  assert 'trainer.gbdt.run_fn' in text   # the GBDT baseline's Trainer
  assert '--runner=DataflowRunner' in text and '--region=europe-west4' in text
  assert 'gs://bucket/serving/ctr' in text
