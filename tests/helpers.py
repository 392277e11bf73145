"""What several test modules share and that is not a fixture: the repository's root, the
real datasets of ../shared/data (a test that needs one skips with the reason when it is
absent), and the tiny spec and data the models' tests train on. Fixtures live in
conftest.py, which tests never import."""
import os

import numpy as np
import pytest

from transform import feature_spec as fs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'data')


def shared_data(name: str) -> str:
  """Path of a real dataset under ../shared/data, or skip the test with the reason."""
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isdir(path):
    pytest.skip(f'real data {name} not found at {path} (../shared/data is absent)')
  return path


# A spec with every kind of field: plain, hashed and target-sharing categorical fields, a
# numeric one and a sequence of the candidate's category.
TINY_SPEC = fs.from_dict({
    'labels': ['clicked', 'converted'],
    'categorical': ['g', {'name': 'cat'}, {'name': 'u', 'hash_buckets': 100,
                                           'embedding_dim': 8}],
    'numeric': ['x'],
    'sequence': [{'name': 's', 'max_len': 4, 'target': 'cat'}],
})
TINY_CARDS = {'g': 3, 'cat': 10, 'u': 100, 's': 11}


def tiny_data(n, seed=0):
  """Clicks depend on x and on how often the candidate's category is in the sequence;
  conversions happen on a third of clicks."""
  rng = np.random.default_rng(seed)
  cat = rng.integers(0, 10, n)
  seq = rng.integers(0, 11, (n, 4))
  x = rng.normal(size=n).astype(np.float32)
  z = 1.5 * x + 1.0 * (seq == cat[:, None] + 1).sum(1) - 1.0
  clicked = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
  converted = clicked * (rng.random(n) < 0.3)
  feats = {'g_xf': rng.integers(0, 3, n), 'cat_xf': cat, 'u_xf': rng.integers(0, 100, n),
           'x_xf': x, 's_xf': seq}
  return feats, {'clicked_xf': clicked, 'converted_xf': converted}


def write_auction_log(path, episodes, horizon=4):
  """An iPinYou-format auction log of ``episodes`` (lists of lines) at ``path``."""
  with open(path, 'w') as f:
    f.write(f'100\t{horizon}\n')
    for i, ep in enumerate(episodes):
      f.write(f'{i}\n')
      for line in ep:
        f.write(line + '\n')
  return str(path)


def synthetic_auctions(episodes=40, horizon=400, seed=0):
  """Auctions whose prices rise with their pCTRs, and clicks drawn from the pCTRs."""
  from policy.bidding import auctions as auc
  rng = np.random.default_rng(seed)
  pctr = np.clip(rng.lognormal(np.log(0.004), 0.8, (episodes, horizon)), 0, 1)
  price = np.round(rng.lognormal(np.log(60), 0.6, (episodes, horizon)) * (pctr / 0.004) ** 0.3)
  click = (rng.random((episodes, horizon)) < pctr).astype(np.int8)
  return auc.Auctions(click, price, pctr, np.ones_like(click, bool), 'synthetic')


# ----------------------------------------------- the toy model behind the embedded server
TOY_X = [[1.0, 2.0], [0.5, 0.5]]


def push_version(base: str, version: int, src: str) -> str:
  """Copies a version the way the Pusher does: everything, then saved_model.pb last."""
  import shutil
  dst = os.path.join(base, str(version))
  shutil.copytree(src, dst, ignore=shutil.ignore_patterns('saved_model.pb'))
  shutil.copy(os.path.join(src, 'saved_model.pb'), os.path.join(dst, 'saved_model.pb.tmp'))
  os.rename(os.path.join(dst, 'saved_model.pb.tmp'), os.path.join(dst, 'saved_model.pb'))
  return dst


def toy_request(version=None, label=None, x=TOY_X):
  """A Predict request of the toy model (bench.fixtures) for rows ``x``."""
  import tensorflow as tf
  from tensorflow_serving.apis import predict_pb2
  from bench.fixtures import TOY
  req = predict_pb2.PredictRequest()
  req.model_spec.name = TOY
  if version is not None:
    req.model_spec.version.value = version
  if label is not None:
    req.model_spec.version_label = label
  req.inputs['x'].CopyFrom(tf.make_tensor_proto(np.asarray(x, np.float32)))
  req.inputs['key'].CopyFrom(tf.make_tensor_proto([b'k'] * len(x)))
  return req


def toy_config(base, policy=None, labels=None):
  """A ModelServerConfig of the toy model at ``base``: a version policy (None: latest 1,
  an int: latest n, 'all', or a list of versions) and version labels."""
  from tensorflow_serving.config import model_server_config_pb2
  from bench.fixtures import TOY
  config = model_server_config_pb2.ModelServerConfig()
  m = config.model_config_list.config.add(name=TOY, base_path=str(base))
  if policy == 'all':
    m.model_version_policy.all.SetInParent()
  elif isinstance(policy, list):
    m.model_version_policy.specific.versions.extend(policy)
  elif isinstance(policy, int):
    m.model_version_policy.latest.num_versions = policy
  for k, v in (labels or {}).items():
    m.version_labels[k] = v
  return config


def version_states(server):
  """{version: (state name, error message)} of the toy model on ``server``."""
  from tensorflow_serving.apis import model_pb2
  from bench.fixtures import TOY
  from serving.manager import State
  r = server.core.manager.status(model_pb2.ModelSpec(name=TOY))
  return {s.version: (State.Name(s.state), s.status.error_message) for s in
          r.model_version_status}


def wait_for(predicate, timeout=30.0):
  """Whether ``predicate()`` came true within ``timeout`` seconds (polled)."""
  import time
  end = time.monotonic() + timeout
  while time.monotonic() < end:
    if predicate():
      return True
    time.sleep(0.05)
  return False


def start_server(config, **kw):
  """The embedded server on free ports, polling every 0.1 s unless told otherwise."""
  from serving.core import ServerOptions
  from serving.server import ModelServer
  kw.setdefault('file_system_poll_wait_seconds', 0.1)
  return ModelServer(ServerOptions(model_config=config, **kw), port=0, rest_api_port=0,
                     host='127.0.0.1').start()


# ------------------------------------------------- the CTR model behind the embedded server
CTR_MODEL = 'ctr'


def hammer_mixed_batches(target: str, ctr, seconds: float = 8.0, threads: int = 4) -> int:
  """``threads`` clients sending serialized examples at batch sizes 1 to 320 for
  ``seconds``; every answer must equal the model's own scores. Returns the number of calls.

  TF 2.16's oneDNN kernels abort the process under exactly this load (docs/SERVING.md,
  "oneDNN"), so surviving it is the check."""
  import threading
  import time
  from serving.client import PredictionClient
  with PredictionClient(target, CTR_MODEL) as client:
    examples = client.examples(ctr['rows'])
  expected = ctr['expected']['probability']
  sizes, calls, errors = (1, 7, 40, 120, 320), [0] * threads, []
  stop = time.time() + seconds

  def work(i):
    with PredictionClient(target, CTR_MODEL) as client:
      k = i
      while time.time() < stop and not errors:
        n = sizes[k % len(sizes)]
        k += 1
        try:
          got = client.predict((examples * 8)[:n], output_filter=['probability'])
          np.testing.assert_allclose(np.asarray(got['probability'], np.float64).ravel(),
                                     np.tile(expected, 8)[:n], rtol=1e-5)
        except Exception as e:  # reported by the assertion below
          errors.append(f'batch {n}: {e!r}'[:500])
        calls[i] += 1

  workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
  for w in workers:
    w.start()
  for w in workers:
    w.join()
  assert not errors, errors[0]
  return sum(calls)


def free_port() -> int:
  """A TCP port free on 127.0.0.1 now."""
  import socket
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def layer_outputs(model, names, inputs):
  """The outputs of a built model's core layers ``names`` on ``inputs`` (inference mode),
  as NumPy arrays: a model's own wiring, read from inside."""
  import tf_keras as keras
  core = model.core
  probe = keras.Model(core.inputs, [core.get_layer(n).output for n in names])
  out = probe(inputs, training=False)
  return [o.numpy() for o in (out if isinstance(out, (list, tuple)) else [out])]
