"""The deep side's search (trainer.tuning): its space follows the model's config, its
first trial is the configured settings, and the Tuner component's best values reach
run_fn as fn_args.hyperparameters and train that trial's model again."""
import json
import os

import pytest

from trainer import task, tuning
from trainer.args import TrainerArgs
from transform import local


def test_space_defaults_are_the_configured_settings():
  config = {'model': 'dnn', 'batch_size': 1024, 'optimizer': {'learning_rate': 5e-3},
            'model_config': {'embedding_dim': 12, 'hidden_units': [64, 32]}}
  hp = tuning.hyperparameters(config)
  space = {p.name: p for p in hp.space}
  assert set(space) == {s[0] for s in tuning.SPACE}
  # A configured value outside a range or a choice widens it, so trial 0 can be it.
  assert space['optimizer.learning_rate'].default == 5e-3
  assert space['optimizer.learning_rate'].max_value == 5e-3
  assert space['model_config.embedding_dim'].default == 12
  assert 12 in space['model_config.embedding_dim'].values
  assert space['model_config.hidden_units'].default == '64,32'
  assert space['batch_size'].default == 1024
  # A mechanism the config turns off (None) is left out of the search.
  off = {p.name for p in tuning.hyperparameters(
      {'model': 'dnn', 'model_config': {'wide_cell_information': None}}).space}
  assert off == set(space) - {'model_config.wide_cell_information'}
  # A setting the model's config lacks is not searched.
  resort = {p.name for p in tuning.hyperparameters({'model': 'resort'}).space}
  from trainer import models
  fields = {f for f in models.model_config('resort').__dataclass_fields__}
  assert {n.split('.', 1)[1] for n in resort if n.startswith('model_config.')} <= fields


_DRAW = """
import json, os, sys
from transform import feature_spec as fs
from trainer import tuning
from trainer.args import TrainerArgs
spec = fs.load(os.path.join('specs', 'default.yaml'))
tuner = tuning.TrainerTuner(TrainerArgs(feature_spec=spec.to_dict()).to_custom_config(), 5,
                            seed=int(sys.argv[1]), directory=sys.argv[2])
tuner.oracle.create_trial('t0')                   # the first trial: the defaults
print(json.dumps(tuner.oracle.create_trial('t1').hyperparameters.values, sort_keys=True))
"""


def test_the_search_draws_the_same_trials_in_every_process(tmp_path):
  """keras-tuner takes a seed of 0 for none and draws from a random one: the deep search
  of seed 0 chose other settings in two runs of one command (docs/BENCHMARKS.md)."""
  import subprocess
  import sys
  from pipeline import configs

  def draw(seed, folder):
    return subprocess.run([sys.executable, '-c', _DRAW, str(seed), str(tmp_path / folder)],
                          cwd=configs.REPO_ROOT, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]
  first = draw(0, 'a')
  assert draw(0, 'b') == first
  assert draw(1, 'c') != first


def test_apply_hyperparameters_lays_values_over_the_config():
  base = {'model': 'dnn', 'batch_size': 512, 'model_config': {'dropout': 0.1, 'wide': True}}
  out = task.apply_hyperparameters(base, {'batch_size': 2048,
                                          'model_config.hidden_units': '128,64',
                                          'optimizer.learning_rate': 1e-3})
  assert out == {'model': 'dnn', 'batch_size': 2048, 'optimizer': {'learning_rate': 1e-3},
                 'model_config': {'dropout': 0.1, 'wide': True, 'hidden_units': [128, 64]}}
  assert base['batch_size'] == 512 and 'hidden_units' not in base['model_config']
  with pytest.raises(ValueError, match='unknown section'):
    task.apply_hyperparameters(base, {'serving.port': 1})


def test_tuner_fn_search_and_the_trainer_reuse_its_best_trial(small_transformed, tmp_path):
  spec, _, paths, _ = small_transformed
  config = dict(TrainerArgs(feature_spec=spec.to_dict(), epochs=2, batch_size=128,
                            model_config={'embedding_dim': 8}).to_custom_config(),
                tuner_trials=2)
  args = local.fn_args(paths, str(tmp_path / 'base'), config, train_steps=40, eval_steps=6)
  args.working_dir = str(tmp_path / 'tuner')
  # What TFX's Tuner executor does with the module's tuner_fn.
  result = tuning.tuner_fn(args)
  result.tuner.search(**result.fit_kwargs)
  trials = list(result.tuner.oracle.trials.values())
  assert len(trials) == 2 and all(t.status == 'COMPLETED' for t in trials)
  first = result.tuner.oracle.trials['0'].hyperparameters.values
  assert first == {p.name: p.default for p in result.tuner.oracle.hyperparameters.space}
  assert first['model_config.embedding_dim'] == 8 and first['batch_size'] == 128
  assert len({json.dumps(t.hyperparameters.values, sort_keys=True) for t in trials}) == 2
  # Each score is that trial's run_fn validation AUC, and a real one (measured: 0.65-0.74
  # on these rows; a model that learns nothing scores 0.5).
  for t in trials:
    assert t.score == result.tuner.reports[t.trial_id]['best_val_auc']
  best = result.tuner.get_best_hyperparameters()[0]
  assert max(t.score for t in trials) > 0.6

  # The Trainer gets the Tuner's best values as a HyperParameters config (JSON).
  again = local.fn_args(paths, str(tmp_path / 'trainer'),
                        {k: v for k, v in config.items() if k != 'tuner_trials'},
                        train_steps=40, eval_steps=6)
  again.hyperparameters = json.loads(json.dumps(best.get_config()))
  task.run_fn(again)
  report = json.load(open(os.path.join(again.model_run_dir, task.REPORT_FILE)))
  best_trial = max(trials, key=lambda t: t.score)
  trial_report = result.tuner.reports[best_trial.trial_id]
  # Same settings (parameter count) and, with seeded deterministic training on the same
  # files and steps, the same validation AUC.
  assert report['parameters'] == trial_report['parameters']
  assert report['best_val_auc'] == pytest.approx(trial_report['best_val_auc'], abs=1e-6)
