"""Shared fixtures. TF_USE_LEGACY_KERAS is set before anything imports TensorFlow."""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
# Two xdist workers on two cores: one BLAS thread each. With OpenBLAS's default of one
# thread per core, a NumPy-heavy test took 117 s beside the TensorFlow tests, 15 s alone.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import contextlib
import fcntl
import pickle

import pytest


def pytest_collection_modifyitems(config, items):
  """The end-to-end pipeline tests first, longest first.

  They take about 8 and 4 of the suite's minutes. Collected in file order they started
  wherever ``--dist load`` happened to hand them out, up to 8 minutes in, and the suite
  ended with one worker alone on the last pipeline run (16 to 23 minutes from run to
  run). First in the list, xdist's round-robin first batch gives one to each worker at
  once, and the rest of the suite fills in around them."""
  order = {'test_default_pipeline_via_tfx_cli': 0, 'test_movielens_pipeline': 1}
  items.sort(key=lambda item: order.get(item.originalname, len(order))
             if item.get_closest_marker('e2e') else len(order))


def _built_once(tmp_path_factory, name: str, build):
  """``build(folder)`` run once per test run and shared by every xdist worker.

  Under xdist each worker is its own process, so a session fixture is built once per
  worker: the trained test model (about 110 s) was trained twice. Here the first worker
  to ask builds it in a folder of this run (``PYTEST_XDIST_TESTRUNUID``), under an
  exclusive ``flock``, and pickles the result; the others wait on the lock and read it.
  The consumers only read the folder. Without xdist it is a plain session fixture."""
  run = os.environ.get('PYTEST_XDIST_TESTRUNUID')
  if run is None:
    return build(str(tmp_path_factory.mktemp(name)))
  root = tmp_path_factory.getbasetemp().parent / f'shared-{run}'
  root.mkdir(exist_ok=True)
  folder, result = root / name, root / f'{name}.pickle'
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      if result.exists():
        with open(result, 'rb') as f:
          return pickle.load(f)
      folder.mkdir(exist_ok=True)
      value = build(str(folder))
      with open(result, 'wb') as f:
        pickle.dump(value, f)
      return value
    finally:
      with contextlib.suppress(OSError):
        fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope='session')
def small_transformed(tmp_path_factory):
  return _built_once(tmp_path_factory, 'small_transformed', _small_transformed)


def _small_transformed(out: str):
  """~4.5k generated rows (every click of 60k impressions and 6% of the rest), split
  70/15/15 in time order and transformed by the project's preprocessing_fn, under the
  default spec with small hash spaces (small models). (spec, tables, paths, out_dir)."""
  import numpy as np
  import pyarrow as pa
  from datagen import synthetic
  from pipeline import configs
  from transform import feature_spec as fs
  from transform import local
  d = fs.load(os.path.join(configs.REPO_ROOT, 'specs', 'default.yaml')).to_dict()
  for c in d['categorical']:
    if c['hash_buckets']:
      c['hash_buckets'], c['embedding_dim'] = 2000, 8
  spec = fs.from_dict(d)
  table = synthetic.generate(60_000, seed=5)
  rng = np.random.default_rng(0)
  keep = (table.column('clicked').to_numpy() == 1) | (rng.random(table.num_rows) < 0.06)
  table = table.filter(pa.array(keep))
  n = table.num_rows
  tables = {'train': table.slice(0, int(0.7 * n)),
            'eval': table.slice(int(0.7 * n), int(0.15 * n)),
            'test': table.slice(int(0.85 * n))}
  return spec, tables, local.transform_tables(tables, spec, out), out


@pytest.fixture(scope='session')
def small_dnn(small_transformed, tmp_path_factory):
  """A DNN trained by run_fn on ``small_transformed`` (100 steps): its SavedModel folder
  and the spec. For tests that need a real exported model, not a particular quality."""
  from trainer import task
  from trainer.args import TrainerArgs
  from transform import local
  spec, _, paths, _ = small_transformed
  config = TrainerArgs(feature_spec=spec.to_dict(), epochs=4, batch_size=128,
                       model_config={'embedding_dim': 8, 'dropout': 0.1}).to_custom_config()

  def build(folder):
    args = local.fn_args(paths, folder, config, train_steps=100, eval_steps=6)
    task.run_fn(args)
    return args.serving_model_dir, spec

  return _built_once(tmp_path_factory, 'small_dnn', build)


@pytest.fixture(scope='session')
def toy_versions(tmp_path_factory):
  """Toy SavedModels for versions 1..3, written once and copied into base paths."""
  from bench.fixtures import write_toy_model
  root = tmp_path_factory.mktemp('toy_src')
  return {v: write_toy_model(str(root / str(v)), v) for v in (1, 2, 3)}


def _ctr_model(out: str):
  """bench.fixtures' CTR model (the default DNN on generated rows) as version 1 under
  ``serving/ctr``, with 40 test rows and what its serving signature gives for them."""
  import pathlib
  import shutil
  import tensorflow as tf
  from bench.fixtures import write_ctr_model
  from helpers import CTR_MODEL
  from transform import local
  work = pathlib.Path(out)
  model_dir, test, spec = write_ctr_model(str(work))
  base = work / 'serving' / CTR_MODEL
  shutil.copytree(model_dir, base / '1')
  rows = test.slice(0, 40).to_pylist()
  loaded = tf.saved_model.load(str(base / '1'))
  expected = loaded.signatures['serving_default'](
      examples=tf.constant(local.serialize_examples(test.slice(0, 40), spec)))
  return {'rows': rows, 'base': base, 'work': work, 'test': test, 'spec': spec,
          'expected': {k: v.numpy().reshape(len(rows), -1)[:, 0] for k, v in expected.items()}}


@pytest.fixture(scope='session')
def ctr(tmp_path_factory):
  """The CTR model (trained once per run) served by the embedded server of this worker:
  ``_ctr_model``'s dict plus ``server``."""
  from helpers import CTR_MODEL
  from serving import config as cfg
  from serving.core import ServerOptions
  from serving.server import ModelServer
  model = _built_once(tmp_path_factory, 'ctr_model', _ctr_model)
  server = ModelServer(ServerOptions(model_config=cfg.single_model_config(CTR_MODEL,
                                                                          str(model['base'])),
                                     file_system_poll_wait_seconds=0),
                       port=0, rest_api_port=0, host='127.0.0.1').start()
  yield {**model, 'server': server}
  server.stop()


@pytest.fixture(scope='session')
def raw_splits(small_transformed, tmp_path_factory):
  """``small_transformed``'s tables as ExampleGen split folders: (spec, tables, folders)."""
  from transform import local
  spec, tables, _, _ = small_transformed
  return _built_once(tmp_path_factory, 'raw_splits',
                     lambda out: (spec, tables, local.write_example_splits(tables, spec, out)))


@pytest.fixture(scope='session')
def gbdt_run(raw_splits, tmp_path_factory):
  """The GBDT baseline's run_fn with a 4-trial search, as the GbdtTrainer runs it:
  {serving_model_dir, model_run_dir, report}."""
  import json
  from trainer import gbdt
  from trainer.args import TrainerArgs
  from transform import local
  spec, _, folders = raw_splits

  def build(out):
    args = local.fn_args({'train': f'{folders["train"]}/*', 'eval': folders['eval'],
                          'transform_graph': ''}, out,
                         TrainerArgs(feature_spec=spec.to_dict(),
                                     gbdt={'trials': 4}).to_custom_config(),
                         train_steps=1, eval_steps=1)
    gbdt.run_fn(args)
    with open(os.path.join(args.model_run_dir, gbdt.REPORT_FILE)) as f:
      report = json.load(f)
    return {'serving_model_dir': args.serving_model_dir, 'model_run_dir': args.model_run_dir,
            'report': report}

  return _built_once(tmp_path_factory, 'gbdt_run', build)
