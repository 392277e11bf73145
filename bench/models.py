"""The model zoo side by side with LightGBM: training speed, serving latency, quality.

    python -m bench.models [--rows 1000000] [--models dnn dcn_v2 ...] [--movielens DIR]

Datasets: the generated default dataset (``--rows`` rows, seed 0) and MovieLens-100K
(``../shared/data``; skipped with a message when absent). Each is split at random 80/10/10
with a fixed seed and transformed once by the project's own ``preprocessing_fn``
(:mod:`transform.local`). Then, for every model, in one run:

* the Trainer's ``run_fn`` trains it (early stopping on validation AUC, ``epochs``
  checkpoints over ``passes`` passes of the training split, per dataset in
  :data:`TRAINING`), fits the calibrated head on validation and exports the SavedModel;
* training throughput: examples per second over the training batches (run_fn's report);
* latency: the exported ``serving_default`` signature (Transform graph included) called
  in-process with serialized ``tf.Example`` batches of 1 and 256; median and p99 ms;
* quality on the test split, from the served (calibrated) probabilities: AUC, logloss,
  ECE (10 equal-width bins), and the number of test positives.

LightGBM 4 is the reference row: the same splits and the raw columns as
:mod:`trainer.boosting` feeds them (every categorical a native LightGBM categorical, each
sequence as its length, its matches of its target field and multi-hot token counts),
LightGBM's default settings, early-stopped on the validation split. Ratios to LightGBM are
in the printed table. Writes bench/results/models.json; a run of some ``--datasets``
replaces only their rows.
"""
import argparse
import json
import os
import shutil
import tempfile
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from bench.common import write_results
from serving import signatures as sig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), 'shared', 'data')


def split(table, seed: int = 0):
  """Random 80/10/10 split with a fixed seed."""
  import pyarrow as pa
  rng = np.random.default_rng(seed)
  part = rng.random(table.num_rows)
  return {'train': table.filter(pa.array(part < 0.8)),
          'eval': table.filter(pa.array((part >= 0.8) & (part < 0.9))),
          'test': table.filter(pa.array(part >= 0.9))}


def quality(y, p):
  from sklearn.metrics import roc_auc_score
  from trainer.layers.calibration import expected_calibration_error
  p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
  return {'auc': float(roc_auc_score(y, p)),
          'logloss': float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
          'ece': expected_calibration_error(p, y)}


def train_lightgbm(tables, spec, params=None):
  """LightGBM (:mod:`trainer.boosting`: every categorical native, sequences as counts and
  multi-hot) on the raw columns, early-stopped on the eval split: (fitted booster,
  features and labels per split, training seconds). ``params``: LightGBM's defaults
  where not given."""
  from trainer import boosting
  names = [f.name for f in spec.categorical + spec.numeric + spec.sequence]
  cols = {k: boosting.columns_of(tables[k], names) for k in ('train', 'eval', 'test')}
  y = {k: _label(tables[k], spec.primary_label) for k in cols}
  encoder = boosting.Encoder.fit(cols['train'], spec)
  encoded = {}   # train's and eval's frames, encoded once by boosting.train
  fitted = boosting.train(encoder, cols['train'], y['train'], cols['eval'], y['eval'],
                          params, cache=encoded)
  encoding = fitted.params['id_encoding']
  (x_train, _), x_eval = encoded[encoding]
  x = {'train': x_train, 'eval': x_eval,
       'test': encoder.transform(cols['test'], encoding)[0]}
  return fitted, x, y, fitted.seconds


def run_lightgbm(tables, spec):
  fitted, x, y, train_s = train_lightgbm(tables, spec)
  booster = fitted.booster
  p = fitted.predict(x['test'])
  lat = {}
  for batch in (1, 256):
    rows = x['test'].iloc[:batch]
    times = []
    for _ in range(200 if batch == 1 else 30):
      s = time.perf_counter()
      booster.predict(rows, num_iteration=booster.best_iteration)
      times.append((time.perf_counter() - s) * 1e3)
    lat[batch] = times
  # Every boosting round reads every training row: examples/s = rows * rounds / seconds,
  # the analogue of a network's examples per second over its passes.
  return {'quality': quality(y['test'], p),
          'train_examples_per_second': len(x['train']) * booster.current_iteration() / train_s,
          'latency_ms': lat, 'best_iteration': booster.best_iteration}


def _label(table, label):
  return label.values(table.column(label.column).to_numpy()).astype(np.float64)


def served_probabilities(saved_model, table, spec, batch: int = 4096) -> np.ndarray:
  """The primary probability of every row of ``table`` from the exported model's
  default signature (the Transform graph inside it, as served). ``saved_model``: its
  folder, or that signature already loaded."""
  import tensorflow as tf
  from transform import local
  serve = (tf.saved_model.load(saved_model).signatures[sig.DEFAULT]
           if isinstance(saved_model, str) else saved_model)
  examples = local.serialize_examples(table, spec)
  out = [serve(**{sig.EXAMPLES: tf.constant(examples[i:i + batch])})[sig.PROBABILITY].numpy()
         for i in range(0, len(examples), batch)]
  return np.concatenate(out).ravel()


def latency(signature, examples, batch, repeats):
  import tensorflow as tf
  batch_examples = {sig.EXAMPLES: tf.constant(examples[:batch])}
  signature(**batch_examples)  # warm-up
  times = []
  for _ in range(repeats):
    s = time.perf_counter()
    signature(**batch_examples)
    times.append((time.perf_counter() - s) * 1e3)
  return times


# Training budget per dataset: passes over the training split at most, early-stopped at
# ``epochs`` checkpoints. Flags override them. (With Adam on the tables the deep models
# overfit after one pass of the generated data; since the Adagrad tables and L2 they keep
# improving for three.)
TRAINING = {'generated': {'passes': 3.0, 'epochs': 12, 'batch_size': 2048},
            'movielens_100k': {'passes': 10.0, 'epochs': 10, 'batch_size': 256}}


def run_model(name, spec, tables, paths, workdir, train):
  import tensorflow as tf
  from trainer import task
  from trainer.args import TrainerArgs
  from transform import local
  n_train = tables['train'].num_rows
  steps = max(1, int(train['passes'] * n_train / train['batch_size']))
  eval_steps = max(1, -(-tables['eval'].num_rows // train['batch_size']))
  config = TrainerArgs(feature_spec=spec.to_dict(), model=name,
                       batch_size=train['batch_size'], epochs=train['epochs'],
                       **MODEL_SETTINGS.get(name, {})).to_custom_config()
  out = os.path.join(workdir, name)
  fn_args = local.fn_args(paths, out, config, steps, eval_steps)
  t = time.time()
  task.run_fn(fn_args)
  run_s = time.time() - t
  with open(os.path.join(fn_args.model_run_dir, task.REPORT_FILE)) as f:
    report = json.load(f)
  serve = tf.saved_model.load(fn_args.serving_model_dir).signatures[sig.DEFAULT]
  p = served_probabilities(serve, tables['test'], spec)     # loaded once, for both
  y = _label(tables['test'], spec.primary_label)
  examples = local.serialize_examples(tables['test'], spec)
  lat = {1: latency(serve, examples, 1, 200), 256: latency(serve, examples, 256, 30)}
  return {'quality': quality(y, p), 'report': report, 'latency_ms': lat, 'run_fn_s': run_s}


# Per-model settings used by the benchmark (and recommended starting points): RE-SORT
# overfits quickly without stronger regularisation.
MODEL_SETTINGS = {
    'resort': {'model_config': {'dropout': 0.2, 'embedding_l2': 1e-5}},
}


def bench_dataset(dataset, table, spec, models, args, results, workdir):
  from transform import local
  tables = split(table)
  positives = int(_label(tables['test'], spec.primary_label).sum())
  print(f'== {dataset}: {table.num_rows} rows; test {tables["test"].num_rows} rows, '
        f'{positives} positives', flush=True)
  t = time.time()
  paths = local.transform_tables(tables, spec, os.path.join(workdir, dataset))
  print(f'   transform: {time.time() - t:.0f} s', flush=True)
  train = {k: getattr(args, k) if getattr(args, k) is not None else v
           for k, v in TRAINING[dataset].items()}
  print(f'   training budget: {train}', flush=True)
  rows = {}
  rows['lightgbm'] = run_lightgbm(tables, spec)
  print(f'   lightgbm: {rows["lightgbm"]["quality"]}', flush=True)
  for name in models:
    rows[name] = run_model(name, spec, tables, paths, os.path.join(workdir, dataset), train)
    print(f'   {name}: {rows[name]["quality"]} '
          f'{rows[name]["report"]["train_examples_per_second"]} ex/s', flush=True)
  for name, r in rows.items():
    tput = (r['train_examples_per_second'] if name == 'lightgbm'
            else r['report']['train_examples_per_second'])
    entries = [('auc', r['quality']['auc'], ''), ('logloss', r['quality']['logloss'], ''),
               ('ece', r['quality']['ece'], ''),
               ('train_throughput', tput, 'examples/s'),
               ('latency_b1_p50', float(np.median(r['latency_ms'][1])), 'ms'),
               ('latency_b1_p99', float(np.percentile(r['latency_ms'][1], 99)), 'ms'),
               ('latency_b256_p50', float(np.median(r['latency_ms'][256])), 'ms'),
               ('test_positives', positives, 'rows')]
    if name != 'lightgbm':
      entries += [('parameters', r['report']['parameters'], ''),
                  ('epochs_run', r['report']['epochs_run'], ''),
                  ('ece_before_calibration',
                   r['report']['calibration']['tasks'][_primary_key(r)]['ece_before'], ''),
                  ('temperature',
                   r['report']['calibration']['tasks'][_primary_key(r)].get('temperature'), '')]
    else:
      entries.append(('best_iteration', r['best_iteration'], ''))
    for metric, value, unit in entries:
      results.append({'dataset': dataset, 'model': name, 'metric': metric,
                      'value': value, 'unit': unit})
  for k, v in train.items():
    results.append({'dataset': dataset, 'model': 'all', 'metric': f'training_{k}',
                    'value': v, 'unit': ''})
  print_table(dataset, rows, positives)


def _primary_key(r):
  return next(iter(r['report']['calibration']['tasks']))


def print_table(dataset, rows, positives):
  ref = rows['lightgbm']
  print(f'\n{dataset} (test positives: {positives})\n')
  print('| model | AUC | logloss | ECE | AUC / LightGBM | logloss / LightGBM | train ex/s '
        '| latency b=1 p50 ms | latency b=256 p50 ms |')
  print('|---|---|---|---|---|---|---|---|---|')
  for name, r in rows.items():
    q = r['quality']
    tput = (r['train_examples_per_second'] if name == 'lightgbm'
            else r['report']['train_examples_per_second'])
    print(f'| {name} | {q["auc"]:.4f} | {q["logloss"]:.4f} | {q["ece"]:.4f} | '
          f'{q["auc"] / ref["quality"]["auc"]:.3f} | '
          f'{q["logloss"] / ref["quality"]["logloss"]:.3f} | {tput:,.0f} | '
          f'{np.median(r["latency_ms"][1]):.2f} | {np.median(r["latency_ms"][256]):.2f} |')
  print(flush=True)


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.models', description=__doc__.split('\n')[0])
  p.add_argument('--rows', type=int, default=1_000_000)
  p.add_argument('--models', nargs='+', default=None)
  p.add_argument('--datasets', nargs='+', default=['generated', 'movielens'])
  p.add_argument('--batch-size', type=int, default=None,
                 help='default per dataset (TRAINING)')
  p.add_argument('--passes', type=float, default=None,
                 help='passes over the training split at most (early stopping may end '
                 'sooner); default per dataset (TRAINING)')
  p.add_argument('--epochs', type=int, default=None,
                 help='early-stopping checkpoints over the passes; default per dataset')
  p.add_argument('--workdir', default='')
  args = p.parse_args(argv)
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  from pipeline import configs
  from transform import feature_spec as fs
  models = args.models or list(configs.MODEL_NAMES)
  workdir = args.workdir or tempfile.mkdtemp(prefix='bench_models_')
  results = []
  try:
    if 'generated' in args.datasets:
      from datagen import synthetic
      bench_dataset('generated', synthetic.generate(args.rows, seed=0),
                    fs.load(os.path.join(REPO, 'specs', 'default.yaml')), models, args,
                    results, workdir)
    if 'movielens' in args.datasets:
      raw = os.path.join(SHARED, 'movielens_100k')
      if not os.path.isdir(raw):
        print(f'MovieLens-100K not found at {raw}: skipped')
      else:
        from datagen import movielens
        bench_dataset('movielens_100k', movielens.load(raw),
                      fs.load(os.path.join(REPO, 'specs', 'movielens_100k.yaml')), models,
                      args, results, workdir)
  finally:
    if not args.workdir:
      shutil.rmtree(workdir, ignore_errors=True)
  # Datasets not run this time keep their last results (and their command).
  print('wrote', write_results('models', results, merge_by='dataset'))


if __name__ == '__main__':
  main()
