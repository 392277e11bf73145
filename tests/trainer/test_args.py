"""trainer/args.py: the Trainer's arguments, one definition read by both run_fns and built
by every caller (the pipeline's two Trainers among them)."""
import json
import types

import pytest

from pipeline import configs
from trainer.args import SECTIONS, TrainerArgs
from transform import feature_spec as fs

SPEC = fs.load(configs.DEFAULT_SPEC).to_dict()


def test_round_trip_through_the_custom_config():
  args = TrainerArgs(feature_spec=SPEC, model='mtt', batch_size=256, epochs=4, patience=1,
                     seed=3, distribution_strategy='one_device_cpu',
                     model_config={'dropout': 0.2}, optimizer={'learning_rate': 1e-3},
                     gbdt={'trials': 4})
  custom = args.to_custom_config()
  assert json.loads(json.dumps(custom)) == custom          # what TFX stores: JSON
  assert TrainerArgs.from_custom_config(custom) == args
  assert set(custom) == {'feature_spec', 'model', 'batch_size', 'epochs', 'patience',
                         'seed', 'distribution_strategy', *SECTIONS}


def test_the_spec_travels_under_the_key_every_component_uses():
  import dataclasses
  assert dataclasses.fields(TrainerArgs)[0].name == fs.SPEC_KEY


def test_defaults_are_the_pipelines():
  args = TrainerArgs.from_custom_config({'feature_spec': SPEC})
  pipeline = configs.PipelineConfig()
  assert (args.batch_size, args.epochs, args.patience) == (
      pipeline.batch_size, pipeline.epochs, pipeline.patience) == (512, 10, 2)
  assert args.model == 'dnn' and args.seed == 0 and args.model_config == {}
  # None sections (a YAML key with nothing under it) are empty, not an error.
  assert TrainerArgs.from_custom_config({'feature_spec': SPEC, 'heads': None}).heads == {}


def test_a_tuners_values_are_cast_where_whole():
  args = TrainerArgs.from_custom_config({'feature_spec': SPEC, 'batch_size': 1024.0,
                                         'epochs': '6'})
  assert (args.batch_size, args.epochs) == (1024, 6)
  assert isinstance(args.batch_size, int)


@pytest.mark.parametrize('custom, message', [
    ({}, 'feature_spec'),
    ({'feature_spec': {}}, 'feature_spec'),
    ({'feature_spec': SPEC, 'epoch': 3}, r"unknown trainer argument\(s\) \['epoch'\]"),
    ({'feature_spec': SPEC, 'batch_size': 0}, 'batch_size'),
    ({'feature_spec': SPEC, 'batch_size': 12.5}, 'batch_size'),
    ({'feature_spec': SPEC, 'patience': 'two'}, 'patience'),
    ({'feature_spec': SPEC, 'seed': -1}, 'seed'),
    ({'feature_spec': SPEC, 'epochs': True}, 'epochs'),
    ({'feature_spec': SPEC, 'optimizer': [1e-3]}, 'optimizer'),
])
def test_bad_arguments_fail_with_their_name(custom, message):
  with pytest.raises(ValueError, match=message):
    TrainerArgs.from_custom_config(custom)


def test_both_run_fns_refuse_an_unknown_argument_before_any_work():
  from trainer import gbdt, task
  fn_args = types.SimpleNamespace(custom_config={'feature_spec': SPEC, 'epoch': 3},
                                  hyperparameters=None)
  for run_fn in (task.run_fn, gbdt.run_fn):
    with pytest.raises(ValueError, match='epoch'):
      run_fn(fn_args)


def test_the_pipelines_trainers_carry_the_pipeline_config(tmp_path):
  from pipeline import pipeline
  data = tmp_path / 'csv'
  data.mkdir()
  (data / 'part.csv').write_text('x\n1\n')
  config = configs.PipelineConfig(
      data_root=str(data), pipeline_root=str(tmp_path / 'tfx'), model='deepfm',
      batch_size=256, train_seed=5, trainer_config={'model_config': {'dropout': 0.3},
                                                    'gbdt': {'trials': 3}})
  spec = fs.load(configs.DEFAULT_SPEC)
  components = {c.id: c for c in pipeline.create_pipeline(config, spec).components}
  custom = {name: TrainerArgs.from_custom_config(json.loads(
      components[name].exec_properties['custom_config']))
      for name in ('Trainer', 'GbdtTrainer')}
  deep = custom['Trainer']
  assert (deep.model, deep.batch_size, deep.seed) == ('deepfm', 256, 5)
  assert deep.model_config == {'dropout': 0.3} and deep.feature_spec == spec.to_dict()
  assert custom['GbdtTrainer'].gbdt == {'trials': 3}
  assert custom['GbdtTrainer'].model_config == {}    # only heads and gbdt reach it
