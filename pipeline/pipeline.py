"""The TFX pipeline: ExampleGen -> ... -> Pusher, built from a PipelineConfig.

Components (ids as they appear in ML Metadata and the pipeline root):

* ``ExampleGen`` (``FileBasedExampleGen`` with CsvExampleGen's reader or
  :mod:`components.parquet_example_gen`'s): train / eval / test by hash buckets of the
  spec's ``split`` ratio (of ``split_key`` if set), each split's rows in one canonical
  order (:mod:`components.canonical_example_gen`), so that one seed trains one model.
* ``StatisticsGen``, ``SchemaGen`` (inferred) and ``ExampleValidator``.
* ``Transform``: ``transform.preprocessing.preprocessing_fn``, analysed on train.
* ``Trainer``: ``trainer.task.run_fn``, early-stopped on eval.
* ``GbdtTrainer``: the GBDT baseline, ``trainer.gbdt.run_fn`` (LightGBM, tuned on eval)
  on the same rows, ExampleGen's raw splits; evaluated, never pushed.
* ``latest_blessed_model_resolver``: the baseline for the Evaluator's change threshold
  (the latest ``Trainer`` model that ``BlessingGate`` blessed).
* ``Evaluator``: TFMA on the held-out ``test`` split (:mod:`pipeline.evaluation`): the
  gates and no regression against the latest blessed model.
* ``GbdtEvaluator``: the candidate against the GBDT baseline on the same test rows, TFMA
  metrics of both (:mod:`components.gbdt_evaluator`).
* ``OffPolicyEvaluator``: when the spec names an ``action_key`` (a logged action and its
  propensity), the candidate's greedy policy over its predicted clicks, evaluated
  off-policy (DR) on the test split; with ``ope_min_lift`` it blesses only if the lift's
  lower confidence bound is above it (:mod:`components.off_policy_evaluator`).
* ``BlessingGate``: blessed iff the Evaluators (and the OffPolicyEvaluator) blessed
  (:mod:`components.blessing_gate`).
* ``ServingInfraValidator``: the candidate loads in the embedded TF-Serving-compatible
  server and answers real gRPC and REST requests (:mod:`components.infra_validator`); its
  blessing carries the model with a warm-up file.
* ``Pusher``: the model, when the gate's and the infra validator's blessings say yes, to
  ``<serving_model_dir>/<model_name>/<version>``.
"""

from __future__ import annotations

import json
import os
from tfx import v1 as tfx
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec

from components import canonical_example_gen
from components import parquet_example_gen
from components.gbdt_evaluator import GbdtEvaluator
from components.blessing_gate import BlessingGate
from components.off_policy_evaluator import OffPolicyEvaluator
from components.infra_validator import ServingInfraValidator
from pipeline import evaluation
from pipeline.configs import PipelineConfig
from pipeline.input_check import data_format
from trainer.args import TrainerArgs
from transform import feature_spec as fs

PREPROCESSING_FN = 'transform.preprocessing.preprocessing_fn'
RUN_FN = 'trainer.task.run_fn'
GBDT_RUN_FN = 'trainer.gbdt.run_fn'
COMPONENT_IDS = ('ExampleGen', 'StatisticsGen', 'SchemaGen', 'ExampleValidator',
                 'Transform', 'Trainer', 'GbdtTrainer', 'latest_blessed_model_resolver',
                 'Evaluator', 'GbdtEvaluator', 'OffPolicyEvaluator', 'BlessingGate',
                 'ServingInfraValidator', 'Pusher')


def _example_gen(config: PipelineConfig, spec: fs.FeatureSpec, fmt: str):
  splits = [tfx.proto.SplitConfig.Split(name=name, hash_buckets=spec.split[name])
            for name in ('train', 'eval', 'test') if name in spec.split]
  split_config = tfx.proto.SplitConfig(splits=splits)
  if spec.split_key:
    split_config.partition_feature_name = spec.split_key
  output = tfx.proto.Output(split_config=split_config)
  executor = (parquet_example_gen.Executor if fmt == 'parquet'
              else canonical_example_gen.CsvExecutor)
  return FileBasedExampleGen(
      input_base=config.data_root, output_config=output,
      custom_executor_spec=executor_spec.BeamExecutorSpec(executor)
  ).with_id('ExampleGen')


def create_pipeline(config: PipelineConfig, spec: fs.FeatureSpec, data_fmt: str = '',
                    local_metadata: bool = True) -> tfx.dsl.Pipeline:
  """The pipeline for ``config`` and ``spec``.

  ``data_fmt`` ('csv' or 'parquet') defaults to the format found in ``data_root``;
  compiling for Kubeflow, where the data is not local, passes it explicitly, together
  with ``local_metadata=False`` (Kubeflow has its own ML Metadata service).
  """
  fmt = data_fmt or data_format(config.data_root)
  spec_dict = spec.to_dict()
  example_gen = _example_gen(config, spec, fmt)
  statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs['examples'])
  schema_gen = tfx.components.SchemaGen(statistics=statistics_gen.outputs['statistics'],
                                        infer_feature_shape=True)
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'], schema=schema_gen.outputs['schema'])
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'], schema=schema_gen.outputs['schema'],
      preprocessing_fn=PREPROCESSING_FN, custom_config={fs.SPEC_KEY: spec_dict},
      splits_config=tfx.proto.SplitsConfig(analyze=['train'], transform=['train', 'eval']))
  trainer_args = dict(
      examples=transform.outputs['transformed_examples'],
      transform_graph=transform.outputs['transform_graph'],
      schema=schema_gen.outputs['schema'],
      train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps))
  settings = TrainerArgs(
      feature_spec=spec_dict, model=config.model, batch_size=config.batch_size,
      epochs=config.epochs, patience=config.patience, seed=config.train_seed,
      distribution_strategy=config.distribution_strategy, **config.trainer_config)
  trainer = tfx.components.Trainer(run_fn=RUN_FN, custom_config=settings.to_custom_config(),
                                   **trainer_args)
  # Only models of the deep Trainer that the final gate blessed are baselines.
  model_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model,
                            producer_component_id='Trainer', output_key='model'),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing,
          producer_component_id=config.final_gate(spec),
          output_key='blessing'),
  ).with_id('latest_blessed_model_resolver')
  test_split = ['test' if 'test' in spec.split else 'eval']
  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=model_resolver.outputs['model'],
      example_splits=test_split,
      eval_config=evaluation.eval_config(spec, config.gates, config.tasks))
  blessing = evaluator.outputs['blessing']
  gate_inputs = {}
  gbdt_components = []
  if config.gbdt_baseline:
    # LightGBM reads the raw splits: Transform's z-scores and vocabulary indices would
    # only take information away from trees.
    gbdt_trainer = tfx.components.Trainer(
        run_fn=GBDT_RUN_FN, examples=example_gen.outputs['examples'],
        schema=schema_gen.outputs['schema'],
        train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps),
        custom_config=TrainerArgs(
            feature_spec=spec_dict, heads=settings.heads, gbdt=settings.gbdt,
        ).to_custom_config(),
    ).with_id('GbdtTrainer')
    gates = config.gates
    gbdt_evaluator = GbdtEvaluator(
        examples=example_gen.outputs['examples'], model=trainer.outputs['model'],
        baseline_model=gbdt_trainer.outputs['model'], split=test_split[0],
        config_json=json.dumps({
            fs.SPEC_KEY: spec_dict,
            'gates': {'gbdt_auc_margin': gates.gbdt_auc_margin,
                      'gbdt_max_logloss_rise': gates.gbdt_max_logloss_rise}}),
    ).with_id('GbdtEvaluator')
    gate_inputs['gbdt_blessing'] = gbdt_evaluator.outputs['blessing']
    gbdt_components = [gbdt_trainer, gbdt_evaluator]
  ope_components = []
  if config.uses_ope(spec):
    label = spec.primary_label
    ope_config = {'reward_column': label.column, 'reward_threshold': label.threshold,
                  'action_column': spec.action_key,
                  'propensity_column': spec.propensity_key,
                  'gate': config.ope_min_lift is not None,
                  'min_lift': config.ope_min_lift or 0.0}
    off_policy = OffPolicyEvaluator(
        examples=example_gen.outputs['examples'], model=trainer.outputs['model'],
        split=test_split[0], config_json=json.dumps(ope_config)
    ).with_id('OffPolicyEvaluator')
    gate_inputs['ope_blessing'] = off_policy.outputs['blessing']
    ope_components = [off_policy]
  gate_components = []
  if gate_inputs:
    gate = BlessingGate(model_blessing=evaluator.outputs['blessing'], **gate_inputs
                        ).with_id('BlessingGate')
    blessing = gate.outputs['blessing']
    gate_components = [gate]
  infra_validator = ServingInfraValidator(
      model=trainer.outputs['model'], examples=example_gen.outputs['examples'],
      split='eval')
  # Without a ``model`` input the Pusher pushes the infra blessing's copy, which holds the
  # warm-up requests.
  pusher = tfx.components.Pusher(
      model_blessing=blessing,
      infra_blessing=infra_validator.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.push_base)))
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=os.path.join(config.pipeline_root, config.pipeline_name),
      components=[example_gen, statistics_gen, schema_gen, example_validator, transform,
                  trainer, model_resolver, evaluator, *gbdt_components, *ope_components,
                  *gate_components, infra_validator, pusher],
      enable_cache=config.enable_cache,
      metadata_connection_config=(tfx.orchestration.metadata
                                  .sqlite_metadata_connection_config(config.metadata)
                                  if local_metadata else None),
      beam_pipeline_args=config.beam_pipeline_args())
