"""Quality: the deep models against LightGBM, default and tuned, over seeds and folds.

    python -m bench.quality [--datasets movielens generated talkingdata]
        [--seeds 0 1 2] [--folds 5] [--models deepfm dnn | --ablation | --variants JSON]
        [--lgb-trials 30] [--deep-trials 30] [--tune-model dnn] [--tune-rows 200000]
        [--rows 1000000] [--no-docs] [--resume]
    python -m bench.quality --data FOLDER --spec SPEC.yaml [--folds 5 | --seeds ...]

Any dataset given as a folder of CSV or Parquet files plus a feature spec runs the same
way (``--data``/``--spec``, named by the spec's ``name``): seeded random splits, or
cross-validation with ``--cv``.

Splits (no choice looks at the test rows):

* ``movielens_100k``: random 80/10/10 with each seed of ``--seeds``;
* ``generated``: the default dataset generated with each seed (``--rows`` rows), split
  80/10/10 at random with the same seed. Its true click probability gives the
  Bayes-optimal AUC and logloss of every test split (row ``bayes (true p)``);
* ``talkingdata``: too few positives for one split (227 in 100,000 rows), so
  ``--folds``-fold cross-validation: each fold is the test set once, and 1/9 of the other
  rows (seed 0) is the eval split.

Each split is transformed once by the project's ``preprocessing_fn``; then, in one run:

* ``lightgbm``: the external reference, as a strong user sets it up
  (:mod:`trainer.boosting`: the raw columns, every categorical a native LightGBM
  categorical, sequences as counts and multi-hot), LightGBM's default settings,
  early-stopped on the eval split;
* ``lightgbm_tuned``: the same with the settings a ``--lgb-trials``-trial search chose by
  eval AUC: the search of the pipeline's own GBDT baseline (:func:`trainer.gbdt.search`,
  whose defaults, 30 trials on at most 200,000 training rows, are this flag's and
  ``--tune-rows``'). The search runs once, on the first split, and its choice is applied
  to every split; the table says which split and how many rows;
* each deep model of ``--models``: :func:`trainer.task.run_fn` with the training budget
  of :data:`TRAINING` and :data:`bench.models.MODEL_SETTINGS`; or, with ``--variants``
  (``--ablation``: :data:`ABLATION`), one row per named set of trainer settings;
* ``<model>_tuned`` (``--tune-model``, default ``dnn``): the deep side's search with the
  same budget and rule as ``lightgbm_tuned``'s (:func:`tune_deep`: ``--deep-trials``
  trials of :mod:`trainer.tuning` over the Trainer's own settings, the first being the
  defaults, on the first split and the same ``--tune-rows`` sample, chosen by eval AUC),
  its choice applied to every split;
* ``best_deep``: on each split, the deep model with the best *eval* AUC (the choice sees
  eval, not test): the "best deep configuration" measured honestly. The model chosen on
  each split is recorded (metric ``chosen_as_best_deep``, value 1) and named in the table;
* ``ensemble(best_deep+lightgbm_tuned)``: the mean of the two models' logits,
  Platt-calibrated on the eval split;
* on the generated data, three ceilings: ``bayes (true p)``, and :mod:`bench.oracle`'s
  generator's form fitted from the training clicks, with and without the id effects.

Metrics on each test split: AUC, logloss and ECE (10 equal-width bins) after
calibration, ECE before it (the model's own output), training seconds (the wall time of
``run_fn`` for the Trainer-run models, export included; of ``lgb.train`` for LightGBM),
training examples per second (the Trainer's own count over its training steps, the
first epoch's trace left out; for LightGBM, training rows times boosting rounds over
its seconds), and the number of test positives. Calibration is what each model ships with: the
Trainer's fitted head (Platt by default) for ``run_fn`` models; Platt fitted on the
eval split for LightGBM and the ensembles.

After each split a run writes the dataset's rows so far to
``bench/results/quality.<dataset>.partial.json`` (removed when the dataset is done), so
that ``--resume`` with the same command goes on from the first unfinished split, with the
searches' choices read back, after a stop.

On the generated data every row also gets ``expected_auc``: its AUC expected over the
test labels' draw from the true probability (:func:`expected_auc`), which ranks models
with far less noise than one draw. Each row's difference to the strongest LightGBM row is
paired over the splits, with its standard error.

The table (mean ± std over splits) goes to ``docs/BENCHMARKS.md`` between the
``bench.quality`` markers (``--no-docs`` leaves it), the numbers to
``bench/results/quality.json``: one flat row per dataset, model, split and metric, plus
``<metric>_mean`` and ``<metric>_std`` rows (split ``all``).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from bench import common
from bench import models as bench_models
from bench.common import DOCS, machine, write_docs_block, write_results

REPO = bench_models.REPO
SHARED = bench_models.SHARED
SPECS = {'movielens_100k': 'movielens_100k.yaml', 'generated': 'default.yaml',
         'talkingdata': 'talkingdata.yaml'}
BEST = 'best_deep'                # the deep model with the best eval AUC on each split
CHOSEN = 'chosen_as_best_deep'    # the row that records which one that was
BAYES = 'bayes (true p)'          # the generated data's true click probability as a model
TUNED_SUFFIX = '_tuned'
TUNED = 'lightgbm' + TUNED_SUFFIX  # LightGBM with the settings its search chose on eval
ORACLE = 'oracle (form known)'    # bench/oracle: the generator's form fitted from clicks
ORACLE_GLOBAL = 'oracle (form known, no ids)'


# The ablation (--ablation): the default DNN, the DNN as it was before issue 19, and the
# default less one lever at a time; DeepFM with the same defaults beside it.
OLD_DEFAULTS = {'optimizer': {'embedding_optimizer': 'same'},
                'model_config': {'wide': False, 'embedding_l2': 0.0, 'wide_fit': 'joint'}}
ABLATION = {
    'dnn': {'model': 'dnn'},
    'dnn (old defaults)': dict(OLD_DEFAULTS, model='dnn'),
    'dnn - wide': {'model': 'dnn', 'model_config': {'wide': False}},
    'dnn - adagrad tables': {'model': 'dnn', 'optimizer': {'embedding_optimizer': 'same'}},
    'dnn - l2': {'model': 'dnn', 'model_config': {'embedding_l2': 0.0, 'wide_l2': 0.0}},
    'dnn - cells sized to rows': {'model': 'dnn',
                                  'model_config': {'wide_cell_information': None}},
    'dnn - backfit': {'model': 'dnn', 'model_config': {'wide_fit': 'joint'}},
    'deepfm': {'model': 'deepfm'},
}


def expected_auc(p_true, q):
  """The AUC of scores ``q`` expected over the labels' draw from ``p_true``: each row is
  a positive with weight p and a negative with weight 1 - p. On the generated data it
  ranks models with far less noise than the AUC of one draw of test labels."""
  from sklearn.metrics import roc_auc_score
  p_true = np.asarray(p_true, np.float64)
  q = np.asarray(q, np.float64)
  return float(roc_auc_score(np.r_[np.ones_like(p_true), np.zeros_like(p_true)],
                             np.r_[q, q], sample_weight=np.r_[p_true, 1 - p_true]))
TRAINING = dict(bench_models.TRAINING, talkingdata={'passes': 3.0, 'epochs': 6,
                                                    'batch_size': 1024})


def _logit(p):
  from trainer.layers.calibration import logit
  return logit(p)


def _sigmoid(z):
  from scipy.special import expit
  return expit(np.asarray(z, np.float64))


def _platt(eval_z, eval_y):
  from trainer.layers import calibration
  return calibration.make_calibrator('platt').fit(eval_z, eval_y)


def _uncalibrated(p, entry):
  """The model's own probability from its served (temperature / Platt) one:
  served = sigmoid(z / T + b), so z = (logit(served) - b) * T."""
  if 'temperature' not in entry:
    return np.asarray(p, np.float64)
  return _sigmoid((_logit(p) - entry.get('bias', 0.0)) * entry['temperature'])


def _metrics(y, p_after, p_before):
  from trainer.layers.calibration import expected_calibration_error
  q = bench_models.quality(y, p_after)
  return {'auc': q['auc'], 'logloss': q['logloss'], 'ece_after': q['ece'],
          'ece_before': expected_calibration_error(
              np.clip(p_before, 1e-7, 1 - 1e-7), y)}


def splits(dataset, table, seeds, folds, cv=False, skip=()):
  """(split name, {'train', 'eval', 'test'} tables) for the dataset's protocol:
  cross-validation for TalkingData (or ``cv``), seeded random splits otherwise. Splits
  named in ``skip`` are left out before their tables are made."""
  import pyarrow as pa
  if dataset == 'talkingdata' or cv:
    rng = np.random.default_rng(0)
    fold = rng.permutation(table.num_rows) % folds
    holdout = rng.random(table.num_rows) < 1 / 9
    for k in range(folds):
      if f'fold={k}' in skip:
        continue
      test = fold == k
      yield f'fold={k}', {'train': table.filter(pa.array(~test & ~holdout)),
                          'eval': table.filter(pa.array(~test & holdout)),
                          'test': table.filter(pa.array(test))}
    return
  for s in seeds:
    if f'seed={s}' in skip:
      continue
    t = table(s) if callable(table) else table
    yield f'seed={s}', bench_models.split(t, seed=s)


def trainer_args(name, spec, tables, paths, folder, train, extra=None):
  """The ``FnArgs`` of a run_fn training of model ``name`` on ``paths`` (its transformed
  splits): :data:`TRAINING`'s budget (``passes`` over ``tables['train']``), the model's
  :data:`bench.models.MODEL_SETTINGS` and ``extra`` settings."""
  from trainer.args import TrainerArgs
  from transform import local
  # A setting of ``extra`` replaces the same section of MODEL_SETTINGS whole.
  settings = {**bench_models.MODEL_SETTINGS.get(name, {}), **(extra or {})}
  config = TrainerArgs(feature_spec=spec.to_dict(), model=name,
                       batch_size=train['batch_size'], epochs=train['epochs'],
                       **settings).to_custom_config()
  steps = max(1, int(train['passes'] * tables['train'].num_rows / train['batch_size']))
  eval_steps = max(1, -(-tables['eval'].num_rows // train['batch_size']))
  return local.fn_args(paths, folder, config, steps, eval_steps)


def run_trainer(name, spec, tables, paths, workdir, train, extra=None,
                hyperparameters=None):
  """A deep model run by the Trainer's ``run_fn``: served eval and test probabilities,
  their uncalibrated counterparts, and the wall time of ``run_fn``.
  ``hyperparameters``: a search's values (:mod:`trainer.tuning`), which ``run_fn`` lays
  over the settings as the Tuner component's are."""
  from trainer import task
  fn_args = trainer_args(name, spec, tables, paths, os.path.join(workdir, name), train,
                         extra)
  if hyperparameters:
    fn_args.hyperparameters = {'values': dict(hyperparameters)}
  start = time.perf_counter()
  task.run_fn(fn_args)
  seconds = time.perf_counter() - start
  with open(os.path.join(fn_args.model_run_dir, task.REPORT_FILE)) as f:
    report = json.load(f)
  entry = next(iter(report['calibration']['tasks'].values()))
  # The Trainer's own throughput: examples per second of its training steps, the first
  # epoch (the trace) left out (trainer.task.Throughput).
  out = {'seconds': seconds, 'report': report,
         'examples_per_s': report['train_examples_per_second']}
  for split in ('eval', 'test'):
    p = bench_models.served_probabilities(fn_args.serving_model_dir, tables[split], spec)
    out[split] = p
    out[f'{split}_raw'] = _uncalibrated(p, entry)
  return out


def tune_deep(name, spec, tables, train, trials, sample_rows, workdir, seed=0):
  """The deep side's search, by the rule of :func:`tune_lightgbm`: ``trials`` trials
  (:func:`trainer.tuning.search`; the first, the settings as configured) on the same
  seeded sample of at most ``sample_rows`` training rows (transformed on its own, as the
  GBDT search fits its encoder on it), with :data:`TRAINING`'s passes over the sample,
  scored on the whole eval split. The chosen trial's values, and the trials' record."""
  from trainer import gbdt, tuning
  from transform import local
  train_table = tables['train']
  keep = gbdt.sample_rows(train_table.num_rows, sample_rows, seed)
  if keep is not None:
    train_table = train_table.take(keep)
  sample = {'train': train_table, 'eval': tables['eval']}
  paths = local.transform_tables(sample, spec, os.path.join(workdir, 'transformed'))
  fn_args = trainer_args(name, spec, sample, paths, os.path.join(workdir, 'base'), train)
  done = tuning.search(fn_args, trials, os.path.join(workdir, 'search'), seed)
  for i, t in enumerate(done):
    print(f'   {name} trial (rank {i}): eval AUC {t.val_auc:.4f}, '
          f'{t.report["epochs_run"]} epochs, {t.report["seconds"]:.0f} s, {t.values}',
          flush=True)
  record = [{'params': t.values, 'eval_auc': t.val_auc, 'epochs': t.report['epochs_run'],
             'seconds': t.report['seconds']} for t in done]
  return done[0].values, record, train_table.num_rows


def run_lightgbm(tables, spec, params=None):
  """LightGBM (:func:`bench.models.train_lightgbm`; ``params`` or LightGBM's defaults),
  with its eval-split predictions for calibration."""
  fitted, x, y, seconds = bench_models.train_lightgbm(tables, spec, params)
  raw = {k: fitted.predict(x[k]) for k in ('eval', 'test')}
  z = {k: _logit(v) for k, v in raw.items()}
  platt = _platt(z['eval'], y['eval'])
  # Every boosting round reads every training row (bench.models' throughput rule).
  rounds = fitted.booster.current_iteration()
  return {'seconds': seconds, 'eval_raw': raw['eval'], 'test_raw': raw['test'],
          'eval': platt.predict(z['eval']), 'test': platt.predict(z['test']),
          'best_iteration': fitted.best_iteration,
          'examples_per_s': len(x['train']) * rounds / max(seconds, 1e-9)}


def tune_lightgbm(tables, spec, trials, sample_rows, seed=0):
  """The LightGBM settings that the pipeline's GBDT baseline's search
  (:func:`trainer.gbdt.search`: ``trials`` trials on a seeded sample of at most
  ``sample_rows`` training rows, early-stopped on the whole eval split) chooses by eval
  AUC; and the trials' record."""
  from trainer import boosting, gbdt
  names = gbdt.feature_columns(spec)
  split = {k: (boosting.columns_of(tables[k], names),
               bench_models._label(tables[k], spec.primary_label)) for k in ('train', 'eval')}
  fitted, _, _ = gbdt.search(spec, split['train'], split['eval'],
                          gbdt.GbdtConfig(trials=trials, tune_rows=sample_rows, seed=seed),
                          log=lambda m: print('   ' + m, flush=True))
  record = [{'params': f.params, 'eval_auc': f.eval_auc, 'rounds': f.best_iteration,
             'seconds': f.seconds} for f in fitted]
  return fitted[0].params, record


def ensemble(a, b, y_eval):
  """Mean of two models' (calibrated) logits, Platt-calibrated on the eval split."""
  z = {k: (_logit(a[k]) + _logit(b[k])) / 2 for k in ('eval', 'test')}
  platt = _platt(z['eval'], y_eval)
  return {'seconds': a['seconds'] + b['seconds'],
          'eval_raw': _sigmoid(z['eval']), 'test_raw': _sigmoid(z['test']),
          'eval': platt.predict(z['eval']), 'test': platt.predict(z['test'])}


def bench_split(dataset, split_name, tables, spec, deep_models, workdir, train, results,
                lgb_params=None, world=None, deep_tuned=None):
  """One split's rows of every model. ``deep_tuned``: (model, the values its search
  chose), for the ``<model>_tuned`` row, a candidate of ``best_deep`` like the other
  deep rows. ``world``: the generated data's
  :class:`datagen.synthetic.SyntheticWorld`, for :func:`bench.oracle.learned`'s
  ``learned_<term>`` rows."""
  from sklearn.metrics import roc_auc_score
  from transform import local
  y = {k: bench_models._label(tables[k], spec.primary_label) for k in ('eval', 'test')}
  positives = int(y['test'].sum())
  print(f'== {dataset} {split_name}: train {tables["train"].num_rows}, eval '
        f'{tables["eval"].num_rows}, test {tables["test"].num_rows} rows '
        f'({positives} positives)', flush=True)
  paths = local.transform_tables(tables, spec, os.path.join(workdir, 'transformed'))
  runs = {'lightgbm': run_lightgbm(tables, spec)}
  if lgb_params is not None:
    runs[TUNED] = run_lightgbm(tables, spec, lgb_params)
  # deep_models: row names of --models, or {row name: trainer settings} (--variants).
  variants = deep_models if isinstance(deep_models, dict) else {n: {} for n in deep_models}
  for name, extra in variants.items():
    extra = dict(extra)
    model = extra.pop('model', name)
    runs[name] = run_trainer(model, spec, tables, paths,
                             os.path.join(workdir, 'runs', name.replace('/', '_')), train,
                             extra)
  candidates = list(variants)
  if deep_tuned:
    model, values = deep_tuned
    name = model + TUNED_SUFFIX
    runs[name] = run_trainer(model, spec, tables, paths,
                             os.path.join(workdir, 'runs', name), train,
                             hyperparameters=values)
    candidates.append(name)
  best = max(candidates, key=lambda n: roc_auc_score(y['eval'], runs[n]['eval']))
  runs[BEST] = runs[best]
  gb = TUNED if TUNED in runs else 'lightgbm'
  runs[f'ensemble({BEST}+{gb})'] = ensemble(runs[best], runs[gb], y['eval'])
  print(f'   {BEST} (by eval AUC): {best}', flush=True)
  rows = [{'dataset': dataset, 'model': best, 'split': split_name, 'metric': CHOSEN,
           'value': 1, 'unit': 'split'}]
  for name, r in runs.items():
    m = _metrics(y['test'], r['test'], r['test_raw'])
    m['train_s'] = r['seconds']
    if 'examples_per_s' in r:       # a model's own training, not an ensemble's
      m[EXAMPLES_PER_S] = r['examples_per_s']
    print(f'   {name:>28}: ' + ', '.join(f'{k} {v:.4f}' for k, v in m.items()), flush=True)
    for metric, value in m.items():
      rows.append({'dataset': dataset, 'model': name, 'split': split_name,
                   'metric': metric, 'value': float(value),
                   'unit': UNITS.get(metric, '')})
  rows.append({'dataset': dataset, 'model': 'all', 'split': split_name,
               'metric': 'test_positives', 'value': positives, 'unit': 'rows'})
  rows.append({'dataset': dataset, 'model': 'all', 'split': split_name,
               'metric': 'test_rows', 'value': tables['test'].num_rows, 'unit': 'rows'})
  if 'true_ctr' in tables['test'].column_names:   # the generated data: Bayes-optimal
    from bench import oracle
    p = tables['test'].column('true_ctr').to_numpy().astype(np.float64)
    ceilings = {BAYES: p}
    for model, ids in ((ORACLE, True), (ORACLE_GLOBAL, False)):
      ceilings[model] = oracle.fit(tables, spec.primary_label.column, ids=ids)['test']
    for model, q in ceilings.items():
      m = bench_models.quality(y['test'], q)
      m['expected_auc'] = expected_auc(p, q)
      print(f'   {model:>28}: ' + ', '.join(f'{k} {v:.4f}' for k, v in m.items()), flush=True)
      for metric in ('auc', 'logloss', 'expected_auc'):
        rows.append({'dataset': dataset, 'model': model, 'split': split_name,
                     'metric': metric, 'value': m[metric], 'unit': ''})
    for name, r in runs.items():
      rows.append({'dataset': dataset, 'model': name, 'split': split_name,
                   'metric': 'expected_auc', 'value': expected_auc(p, r['test']),
                   'unit': ''})
    if world is not None:
      scored = {**{n: r['test'] for n, r in runs.items()},
                **{n: q for n, q in ceilings.items() if n != BAYES}}
      for name, q in scored.items():
        for term, value in oracle.learned(tables['test'], q, world).items():
          rows.append({'dataset': dataset, 'model': name, 'split': split_name,
                       'metric': f'{LEARNED}{term}', 'value': value, 'unit': ''})
  results.extend(rows)
  shutil.rmtree(workdir, ignore_errors=True)


EXAMPLES_PER_S = 'train_examples_per_s'
UNITS = {'train_s': 's', EXAMPLES_PER_S: 'examples/s'}
RECORDS = (CHOSEN, 'search')     # rows that record a choice, not a measurement
LEARNED = 'learned_'             # + a bench.oracle term: that term's coefficient


def _split_seed(name):
  """The seed of a seeded split's name (``seed=3``; see :func:`splits`)."""
  return int(name.split('=', 1)[1])


def summarize(results):
  """``<metric>_mean`` / ``_std`` rows (split ``all``) per dataset and model."""
  groups = {}
  for r in results:
    if r['split'] != 'all' and r['metric'] not in RECORDS:
      groups.setdefault((r['dataset'], r['model'], r['metric'], r['unit']), []).append(
          r['value'])
  out = []
  for (dataset, model, metric, unit), values in groups.items():
    v = np.asarray(values, np.float64)
    out.append({'dataset': dataset, 'model': model, 'split': 'all',
                'metric': f'{metric}_mean', 'value': float(v.mean()), 'unit': unit})
    out.append({'dataset': dataset, 'model': model, 'split': 'all',
                'metric': f'{metric}_std', 'value': float(v.std(ddof=1)) if len(v) > 1
                else 0.0, 'unit': unit})
    out.append({'dataset': dataset, 'model': model, 'split': 'all',
                'metric': f'{metric}_n', 'value': len(v), 'unit': 'splits'})
  return out


def paired(results, dataset, model, reference, metric):
  """(mean, standard error) over splits of ``model``'s ``metric`` minus ``reference``'s,
  on the splits both have (the error is None for one split); None when they share none."""
  per = {}
  for r in results:
    if r['dataset'] == dataset and r['metric'] == metric and r['split'] != 'all':
      per.setdefault(r['split'], {})[r['model']] = r['value']
  d = np.array([v[model] - v[reference] for v in per.values()
                if model in v and reference in v], np.float64)
  if not len(d):
    return None
  return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None


def markdown(results, commands):
  """The docs tables: one per dataset, mean ± std over its splits, each with the command
  and date that produced it (``commands``: dataset -> {'command', 'date'}), and each
  model's paired difference to the strongest LightGBM row (tuned where it ran) with its
  paired standard error over the splits."""
  summary = {(r['dataset'], r['model'], r['metric']): r['value']
             for r in results if r['split'] == 'all'}
  datasets = list(dict.fromkeys(r['dataset'] for r in results))
  lines = [f'Machine: {machine()}.', '']
  for d in datasets:
    per_split = [r for r in results if r['dataset'] == d and r['metric'] == 'test_positives'
                 and r['split'] != 'all']
    positives = ', '.join(f'{r["split"]}: {int(r["value"])}' for r in per_split)
    n = len(per_split)
    c = commands.get(d, {})
    bayes = summary.get((d, BAYES, 'auc_mean'))   # the generated data's known optimum
    chosen = ', '.join(f'{r["split"]}: {r["model"]}' for r in results
                       if r['dataset'] == d and r['metric'] == CHOSEN)
    searches = [r for r in results if r['dataset'] == d and r['metric'] == 'search']
    ref = TUNED if (d, TUNED, 'auc_mean') in summary else 'lightgbm'
    lines += [f'**{d}** ({n} splits; test positives per split: {positives}). '
              f'Command: `{c.get("command")}` ({c.get("date")}).'
              + (f' `{BEST}` chosen by eval AUC: {chosen}.' if chosen else '')]
    for search in searches:
      params = ', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}'
                         for k, v in search['chosen'].items())
      lines += ['', f'`{search["model"]}`: a {int(search["value"])}-trial search on '
                f'{search["split"]} ({search["train_rows"]} training rows), chosen by eval '
                f'AUC: {params}.']
    lines += ['', '| model | AUC | logloss | ECE before cal. | ECE after cal. | train s | '
              f'train examples/s | AUC − {ref} (paired SE) | logloss − {ref} (paired SE) |'
              + (' AUC − Bayes | expected AUC (true p) |' if bayes else ''),
              '|---|---|---|---|---|---|---|---|---|' + ('---|---|' if bayes else '')]
    models = list(dict.fromkeys(r['model'] for r in results if r['dataset'] == d
                                and r['model'] != 'all' and r['metric'] not in RECORDS))

    def cell(model, metric, digits=4):
      mean = summary.get((d, model, f'{metric}_mean'))
      if mean is None:
        return ''
      if summary.get((d, model, f'{metric}_n'), 2) < 2:    # one split: no spread
        return f'{mean:.{digits}f}'
      std = summary.get((d, model, f'{metric}_std'), 0.0)
      return f'{mean:.{digits}f} ± {std:.{digits}f}'

    def diff(model, metric):
      pd = paired(results, d, model, ref, metric)
      if pd is None:
        return ''
      return f'{pd[0]:+.4f}' + (f' ({pd[1]:.4f})' if pd[1] is not None else '')

    for m in models:
      auc = summary.get((d, m, 'auc_mean'))
      lines.append(
          f'| {m} | {cell(m, "auc")} | {cell(m, "logloss")} | {cell(m, "ece_before")} | '
          f'{cell(m, "ece_after")} | {cell(m, "train_s", 1)} | '
          f'{cell(m, EXAMPLES_PER_S, 0)} | {diff(m, "auc")} | '
          f'{diff(m, "logloss")} |'
          + ((f' {auc - bayes:+.4f} |' if auc is not None else ' |')
             + f' {cell(m, "expected_auc")} |' if bayes else ''))
    lines.append('')
    lines += _learned_table(d, models, summary)
  return '\n'.join(lines)


def _learned_table(d, models, summary):
  """What each model's test logit carries of each term of the generator's click logit
  (:func:`bench.oracle.learned`), mean over the splits; no lines without such rows."""
  from bench import oracle
  names = list(oracle.TERMS) + ['residual_sd']
  rows = [m for m in models if (d, m, f'{LEARNED}user_mean') in summary]
  if not rows:
    return []
  lines = ['Each term of the true click logit, as carried by the model\'s test logit: the '
           'least-squares coefficient of that logit on the terms (`bench/oracle.py`; 1 = '
           'in full, 0 = not at all; mean over splits). The oracle rows show how much of '
           'each term the training clicks allow.', '',
           '| model | ' + ' | '.join(n.replace('_', ' ') for n in names) + ' |',
           '|---|' + '---|' * len(names)]
  for m in rows:
    lines.append(f'| {m} | ' + ' | '.join(
        f'{summary.get((d, m, f"{LEARNED}{n}_mean"), float("nan")):.2f}' for n in names)
        + ' |')
  return lines + ['']


def write_docs(text, path=DOCS):
  write_docs_block('quality', text, 'Quality: deep models against LightGBM', path)


def partial_path(dataset):
  """Where a run keeps a dataset's rows after each split, until the dataset is done."""
  return os.path.join(common.RESULTS_DIR, f'quality.{dataset}.partial.json')


def read_partial(dataset, command):
  """(rows, finished splits) of the stopped run of ``command`` on ``dataset``; ([], [])
  where there is none. Raises where the stopped run was another command's."""
  path = partial_path(dataset)
  if not os.path.isfile(path):
    return [], []
  with open(path) as f:
    partial = json.load(f)
  if partial['command'] != command:
    raise ValueError(f'--resume: {path} is the stopped run of another command '
                     f'({partial["command"]!r}, not {command!r}); run that command with '
                     '--resume, or delete the file to start over')
  return partial['results'], partial['splits']


def write_partial(dataset, command, results, done):
  os.makedirs(common.RESULTS_DIR, exist_ok=True)
  tmp = partial_path(dataset) + '.tmp'
  with open(tmp, 'w') as f:
    json.dump({'command': command, 'splits': done, 'results': results}, f)
  os.replace(tmp, partial_path(dataset))


def load_folder(folder):
  """Every CSV or Parquet file of ``folder`` as one table (the pipeline's input format)."""
  import pyarrow as pa
  import pyarrow.csv as pacsv
  import pyarrow.parquet as pq
  from pipeline.input_check import data_files, data_format
  fmt = data_format(folder)
  read = pq.read_table if fmt == 'parquet' else pacsv.read_csv
  return pa.concat_tables([read(f) for f in data_files(folder)], promote_options='default')


def load_dataset(dataset, rows):
  """The dataset's table (or, for ``generated``, a function of the seed), or None."""
  if dataset == 'generated':
    from datagen import synthetic
    return lambda seed: synthetic.generate(rows, seed=seed)
  if dataset == 'movielens_100k':
    raw = os.path.join(SHARED, 'movielens_100k')
    if not os.path.isdir(raw):
      return None
    from datagen import movielens
    return movielens.load(raw)
  raw = os.path.join(SHARED, 'talkingdata_adtracking_sample')
  if not os.path.isdir(raw):
    return None
  from datagen import talkingdata
  return talkingdata.load(raw)


def main(argv=None):
  from trainer.gbdt import GbdtConfig
  gbdt_defaults = GbdtConfig()   # the pipeline's GBDT baseline searches the same way
  p = argparse.ArgumentParser(prog='python -m bench.quality',
                              description=__doc__.split('\n')[0])
  p.add_argument('--datasets', nargs='+', default=['movielens', 'generated', 'talkingdata'],
                 choices=['movielens', 'generated', 'talkingdata'])
  p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
  p.add_argument('--folds', type=int, default=5)
  p.add_argument('--models', nargs='+', default=['deepfm', 'dnn'])
  p.add_argument('--rows', type=int, default=1_000_000, help='rows of the generated data')
  p.add_argument('--passes', type=float, default=None,
                 help='override the training passes of every dataset (smoke runs)')
  p.add_argument('--data', default='', help='a folder of CSV or Parquet files (with --spec)')
  p.add_argument('--spec', default='', help='the feature spec of --data')
  p.add_argument('--cv', action='store_true', help='--data: --folds-fold cross-validation '
                 'instead of one random split per seed')
  p.add_argument('--variants', default='',
                 help='JSON {row name: trainer settings (custom_config keys: model, '
                 'model_config, optimizer, ...)}: deep rows run instead of --models (the '
                 'ablation table); best_deep is chosen among them')
  p.add_argument('--ablation', action='store_true',
                 help='run the ablation variants (ABLATION) as the deep rows')
  p.add_argument('--lgb-trials', type=int, default=gbdt_defaults.trials,
                 help='trials of the LightGBM search (on the first split; 0: no '
                 'lightgbm_tuned row)')
  p.add_argument('--deep-trials', type=int, default=gbdt_defaults.trials,
                 help='trials of the deep side\'s search (trainer.tuning; on the first '
                 'split, on the LightGBM search\'s --tune-rows sample; 0: no search)')
  p.add_argument('--tune-model', default='dnn',
                 help='the model the deep search tunes (its row: <model>_tuned)')
  p.add_argument('--tune-rows', type=int, default=gbdt_defaults.tune_rows,
                 help='the search trains on a seeded sample of at most this many of the '
                 'first split\'s training rows')
  p.add_argument('--no-docs', action='store_true', help='do not rewrite docs/BENCHMARKS.md')
  p.add_argument('--resume', action='store_true',
                 help='go on with the stopped run of the same command: its finished splits '
                 'and searches are read back from bench/results/quality.<dataset>.partial'
                 '.json, which every run writes after each split')
  args = p.parse_args(argv)
  argv = sys.argv[1:] if argv is None else list(argv)
  command = ' '.join(a for a in argv if a != '--resume')
  if bool(args.data) != bool(args.spec):
    p.error('--data and --spec go together')
  from absl import logging
  logging.set_verbosity(logging.ERROR)
  from pipeline import configs
  from transform import feature_spec as fs
  deep = args.models
  if args.ablation:
    args.variants = json.dumps(ABLATION)
  if args.variants:
    try:
      deep = json.loads(args.variants)
      assert isinstance(deep, dict) and all(isinstance(v, dict) for v in deep.values())
    except (ValueError, AssertionError):
      p.error('--variants: a JSON object of {row name: {settings}}')
    args.models = sorted({v.get('model', 'dnn') for v in deep.values()})
  if args.deep_trials < 0 or args.lgb_trials < 0:
    p.error('--deep-trials and --lgb-trials: 0 or more')
  unknown = (set(args.models) | {args.tune_model}) - set(configs.MODEL_NAMES)
  if unknown:
    p.error(f'unknown model(s) {sorted(unknown)}; choose from {list(configs.MODEL_NAMES)}')
  jobs = []
  if args.data:
    spec = fs.load(args.spec)
    jobs.append((spec.name, load_folder(args.data), spec,
                 dict(TRAINING.get(spec.name, TRAINING['movielens_100k']))))
  else:
    for short in args.datasets:
      dataset = 'movielens_100k' if short == 'movielens' else short
      table = load_dataset(dataset, args.rows)
      if table is None:
        print(f'{dataset}: not found under {SHARED}; skipped', flush=True)
        continue
      jobs.append((dataset, table, fs.load(os.path.join(REPO, 'specs', SPECS[dataset])),
                   dict(TRAINING[dataset])))
  for dataset, table, spec, train in jobs:
    if args.passes is not None:
      train['passes'] = args.passes
    try:
      results, done = read_partial(dataset, command) if args.resume else ([], [])
    except ValueError as e:
      p.error(str(e))
    if done:
      print(f'== {dataset}: resumed after {", ".join(done)}', flush=True)
    searched = {r['model']: r['chosen'] for r in results if r['metric'] == 'search'}
    lgb_params = searched.get(TUNED)
    deep_tuned = ((args.tune_model, searched[args.tune_model + TUNED_SUFFIX])
                  if args.tune_model + TUNED_SUFFIX in searched else None)
    for name, tables in splits(dataset, table, args.seeds, args.folds, args.cv, done):
      if lgb_params is None and args.lgb_trials:
        # The search runs on the first split only; its choice is applied to every split.
        print(f'== {dataset}: LightGBM search, {args.lgb_trials} trials on {name}',
              flush=True)
        lgb_params, record = tune_lightgbm(tables, spec, args.lgb_trials, args.tune_rows)
        results.append({'dataset': dataset, 'model': TUNED, 'split': name,
                        'metric': 'search', 'value': len(record), 'unit': 'trials',
                        'chosen': lgb_params, 'trials': record,
                        'train_rows': min(args.tune_rows, tables['train'].num_rows)})
      if deep_tuned is None and args.deep_trials:
        # The deep side's search, by the same rule (first split, the same sample).
        print(f'== {dataset}: {args.tune_model} search, {args.deep_trials} trials on {name}',
              flush=True)
        search_dir = tempfile.mkdtemp(prefix='bench_quality_search_')
        values, record, rows = tune_deep(args.tune_model, spec, tables, train,
                                         args.deep_trials, args.tune_rows, search_dir)
        shutil.rmtree(search_dir, ignore_errors=True)
        deep_tuned = (args.tune_model, values)
        results.append({'dataset': dataset, 'model': args.tune_model + TUNED_SUFFIX,
                        'split': name, 'metric': 'search', 'value': len(record),
                        'unit': 'trials', 'chosen': values, 'trials': record,
                        'train_rows': rows})
      workdir = tempfile.mkdtemp(prefix='bench_quality_')
      world = None
      if dataset == 'generated':
        from datagen import synthetic
        world = synthetic.SyntheticWorld(_split_seed(name))
      bench_split(dataset, name, tables, spec, deep, workdir, train, results,
                  lgb_params, world, deep_tuned)
      done.append(name)
      write_partial(dataset, command, results, done)  # a stopped run keeps its splits
    # Written per dataset, so a long run keeps what it finished.
    path = write_results('quality', results + summarize(results), merge_by='dataset')
    if os.path.exists(partial_path(dataset)):
      os.remove(partial_path(dataset))
    print('wrote', path)
    if not args.no_docs:
      with open(path) as f:
        doc = json.load(f)
      write_docs(markdown(doc['results'], doc['commands']))
      print('wrote', DOCS)


if __name__ == '__main__':
  main()
