"""Compiles the pipeline for Kubeflow Pipelines (V2) into a pipeline-spec JSON file.

    python -m pipeline.kubeflow_v2_runner --output pipeline.json \
        --image gcr.io/PROJECT/ctr-tfx:latest --pipeline-root gs://BUCKET/tfx \
        --data gs://BUCKET/data/default/csv --serving-dir gs://BUCKET/serving

The image must hold this package (``pip install .`` on top of a ``tfx:1.16.0`` image):
the components import ``transform.preprocessing`` and ``trainer.task`` by module path.
The data format is given (``--data-format``) because the data is not read at compile
time. Submit the JSON with the KFP client or Vertex AI Pipelines.
"""

from __future__ import annotations

import os
import sys

import argparse
from typing import List, Optional

from pipeline import configs
from transform import feature_spec as fs


def compile_pipeline(config: configs.PipelineConfig, output: str, image: str,
                     data_format: str = 'csv') -> str:
  from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as kfv2
  from pipeline.pipeline import create_pipeline
  spec = fs.load(config.spec_path)
  pipeline = create_pipeline(config, spec, data_format, local_metadata=False)
  runner = kfv2.KubeflowV2DagRunner(
      config=kfv2.KubeflowV2DagRunnerConfig(default_image=image),
      output_dir=os.path.dirname(os.path.abspath(output)),
      output_filename=os.path.basename(output))
  runner.run(pipeline, write_out=True)
  return output


def main(argv: Optional[List[str]] = None) -> int:
  d = configs.PipelineConfig()
  p = argparse.ArgumentParser(prog='python -m pipeline.kubeflow_v2_runner',
                              description='Compile the pipeline to a KFP V2 pipeline spec.')
  p.add_argument('--output', default='ctr_pipeline.json', help='JSON file to write')
  p.add_argument('--image', default='tensorflow/tfx:1.16.0',
                 help='container image holding this package')
  p.add_argument('--pipeline-name', default=d.pipeline_name)
  p.add_argument('--pipeline-root', default=d.pipeline_root)
  p.add_argument('--data', default=d.data_root)
  p.add_argument('--data-format', default='csv', choices=['csv', 'parquet'])
  p.add_argument('--spec', default=d.spec_path)
  p.add_argument('--serving-dir', default=d.serving_model_dir)
  p.add_argument('--model-name', default=d.model_name)
  p.add_argument('--train-steps', type=int, default=d.train_steps)
  p.add_argument('--beam-preset', default='dataflow', choices=sorted(configs.beam_presets()))
  p.add_argument('--beam-arg', action='append', default=[])
  p.add_argument('--distribution-strategy', default='multi_worker_mirrored')
  a = p.parse_args(argv)
  config = configs.PipelineConfig(
      pipeline_name=a.pipeline_name, pipeline_root=a.pipeline_root, data_root=a.data,
      spec_path=a.spec, serving_model_dir=a.serving_dir, model_name=a.model_name,
      train_steps=a.train_steps, beam_preset=a.beam_preset, beam_args=a.beam_arg,
      distribution_strategy=a.distribution_strategy)
  print(compile_pipeline(config, a.output, a.image, a.data_format))
  return 0


if __name__ == '__main__':
  sys.exit(main())
