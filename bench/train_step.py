"""Training step time of each model and of its parts, side by side with the DNN.

    python -m bench.train_step [--rows 20000] [--rounds 5] [--steps 30] [--variants JSON]

What it answers: how much slower than the default DNN one optimiser step of RE-SORT or the
MultiTaskTransformer is, and which of their parts the time goes to (issue 19, section 3:
"at most 3x slower than the DNN; where they cannot, show which part costs what").

Protocol. The generated default dataset (``--rows`` rows, seed 0, the default spec) is
split 80/10/10 and transformed by the project's ``preprocessing_fn`` (:mod:`transform.local`).
``--batches`` training batches of ``--batch-size`` rows are read once and held in memory,
so the input pipeline is not timed. Each variant is built as the Trainer builds it
(``trainer.models.build``, the crossed columns sized to the training rows) and warmed up
(its trace) by a few steps and one unrecorded round. Then, in each of ``--rounds`` rounds,
every variant runs ``--steps`` calls of Keras' compiled train step (the function
``keras.Model.fit`` calls per step, without fit's per-call setup) over the same batches,
variants interleaved, so that a slow spell of the machine touches every variant of that
round. The row of a variant is its median milliseconds per step over the rounds, and its
ratio to the reference variant (``dnn``) within each round: median, min and max over the
rounds.

A variant is ``{"model": name, "model_config": {...}}`` as in ``bench.quality``. Writes
bench/results/train_step.json and the block of docs/BENCHMARKS.md between its markers;
with ``--out NAME``, bench/results/NAME.json alone.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from typing import Dict, List

os.environ['TF_USE_LEGACY_KERAS'] = '1'

import numpy as np

from bench.common import write_docs_block, write_results

REFERENCE = 'dnn'

# The parts of the two seed models, one switch at a time (docs/MODELS.md, "The zoo").
VARIANTS = {
    'dnn': {'model': 'dnn'},
    'resort': {'model': 'resort'},
    'resort - deep retention': {'model': 'resort', 'model_config': {'msr_layers': 0}},
    'resort - bilinear': {'model': 'resort', 'model_config': {'bilinear': False}},
    'resort - dropout': {'model': 'resort', 'model_config': {'dropout': 0.0}},
    'mtt': {'model': 'mtt'},
    'mtt, 1 block': {'model': 'mtt', 'model_config': {'transformer_layers': 1}},
    'mtt - blocks': {'model': 'mtt', 'model_config': {'transformer_layers': 0}},
    'mtt - dropout': {'model': 'mtt', 'model_config': {'dropout': 0.0}},
}


def summarize(ms: Dict[str, List[float]], reference: str = REFERENCE) -> List[Dict]:
  """One row per variant from its milliseconds per step in each round (every variant
  timed in every round): the median ms, and its ratio to ``reference`` within each
  round, as median, min and max over the rounds."""
  if reference not in ms:
    raise ValueError(f'the reference variant {reference!r} was not timed')
  rounds = {len(v) for v in ms.values()}
  if len(rounds) != 1 or 0 in rounds:
    raise ValueError(f'every variant needs the same number of rounds, got {sorted(rounds)}')
  ref = np.asarray(ms[reference], float)
  rows = []
  for name, values in ms.items():
    values = np.asarray(values, float)
    ratios = values / ref
    rows.append({'variant': name, 'ms_per_step': float(np.median(values)),
                 'ms_min': float(values.min()), 'ms_max': float(values.max()),
                 'ratio': float(np.median(ratios)), 'ratio_min': float(ratios.min()),
                 'ratio_max': float(ratios.max()), 'rounds': int(len(values))})
  return rows


def markdown(rows: List[Dict], meta: Dict) -> str:
  lines = [f"Machine: {meta['machine']}. Command: `{meta['command']}` ({meta['date']}). "
           f"{meta['train_rows']} training rows, batch {meta['batch_size']}, "
           f"{meta['steps']} steps per variant and round, {meta['rounds']} rounds.",
           '',
           f'| variant | ms per step (median, min–max) | ratio to {REFERENCE} '
           '(median, min–max over rounds) | parameters |',
           '|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['variant']} | {r['ms_per_step']:.1f} ({r['ms_min']:.1f}–"
                 f"{r['ms_max']:.1f}) | {r['ratio']:.2f} ({r['ratio_min']:.2f}–"
                 f"{r['ratio_max']:.2f}) | {r['parameters']:,} |")
  return '\n'.join(lines)


def prepare(rows: int, batch_size: int, batches: int, workdir: str):
  """The transformed training batches in memory, the cardinalities, the training rows
  and their label rate."""
  from bench.models import split
  from datagen import synthetic
  from trainer import inputs as inputs_lib
  from trainer import task
  from transform import feature_spec as fs
  from transform import local
  import tensorflow_transform as tft

  spec = fs.load(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              'specs', 'default.yaml'))
  tables = split(synthetic.generate(rows, seed=0), seed=0)
  paths = local.transform_tables(tables, spec, os.path.join(workdir, 'transformed'))
  tfo = tft.TFTransformOutput(paths['transform_graph'])
  ds = task._input_fn([paths['train']], local.data_accessor(), tfo, spec, batch_size,
                      seed=0)
  held = list(ds.take(batches))
  label = tables['train'].column(spec.primary_label.name).to_numpy()
  return (spec, held, inputs_lib.cardinalities(spec, tfo),
          tables['train'].num_rows, float(np.mean(label)))


def run(variants: Dict[str, Dict], rows: int, rounds: int, steps: int, batch_size: int,
        batches: int) -> Dict:
  import tensorflow as tf
  from trainer import models
  from trainer.models import blocks

  if REFERENCE not in variants:
    raise ValueError(f'--variants needs the reference variant {REFERENCE!r}')
  for name, v in variants.items():  # unknown models and settings fail before any work
    models.model_config(v['model'], v.get('model_config'))
  with tempfile.TemporaryDirectory() as workdir:
    spec, held, cards, train_rows, rate = prepare(rows, batch_size, batches,
                                                     workdir)
  # One dataset of whole batches, repeated; the batches are dense tensors.
  data = tf.data.Dataset.from_tensor_slices(
      tf.nest.map_structure(lambda *t: tf.stack(t), *held)).repeat()
  built, parameters = {}, {}
  for name, v in variants.items():
    config = blocks.with_wide_cells(models.model_config(v['model'], v.get('model_config')),
                                  train_rows, rate)
    tf.keras.utils.set_random_seed(0)
    model = models.build(v['model'], spec, cards, config)
    # Keras' own compiled train step (what fit calls per step), on one iterator: fit's
    # per-call setup is not a training step.
    step, batches_in = model.make_train_function(), iter(data)
    for _ in range(5):  # trace and warm up
      step(batches_in)
    built[name], parameters[name] = (step, batches_in), int(model.count_params())
    print(f'built {name}', flush=True)
  ms = {name: [] for name in variants}
  for r in range(-1, rounds):  # round -1 is not recorded (warm-up)
    for name, (step, batches_in) in built.items():
      t = time.perf_counter()
      for _ in range(steps):
        logs = step(batches_in)
      tf.nest.map_structure(lambda x: x.numpy(), logs)
      if r >= 0:
        ms[name].append((time.perf_counter() - t) / steps * 1000.0)
    if r >= 0:
      print(f'round {r}: ' + ', '.join(f'{n} {v[-1]:.1f}' for n, v in ms.items()),
            flush=True)
  out = summarize(ms)
  for row in out:
    row['parameters'] = parameters[row['variant']]
    row['config'] = variants[row['variant']]
    row['ms_rounds'] = ms[row['variant']]
    row.update(train_rows=train_rows, batch_size=batch_size, steps=steps)
  return {'rows': out, 'train_rows': train_rows, 'batch_size': batch_size, 'steps': steps,
          'rounds': rounds}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--rows', type=int, default=20_000,
                      help='rows of the generated data (80%% train)')
  parser.add_argument('--rounds', type=int, default=5,
                      help='rounds; each times every variant once, interleaved')
  parser.add_argument('--steps', type=int, default=30, help='steps per variant and round')
  parser.add_argument('--batch-size', type=int, default=512)
  parser.add_argument('--batches', type=int, default=20,
                      help='distinct training batches held in memory')
  parser.add_argument('--variants', type=json.loads, default=None,
                      help='JSON {label: {"model": ..., "model_config": {...}}} '
                           f'(default: the parts of RE-SORT and MTT; needs {REFERENCE!r})')
  parser.add_argument('--out', default='train_step',
                      help='results file name under bench/results (without .json); '
                      'another name than the default leaves the docs as they are')
  parser.add_argument('--no-docs', action='store_true',
                      help='do not rewrite the block in docs/BENCHMARKS.md')
  args = parser.parse_args(argv)
  if args.rounds < 1 or args.steps < 1 or args.batches < 1:
    parser.error('--rounds, --steps and --batches must be at least 1')
  result = run(args.variants or VARIANTS, args.rows, args.rounds, args.steps,
               args.batch_size, args.batches)
  path = write_results(args.out, result['rows'], module='train_step')
  with open(path) as f:
    doc = json.load(f)
  text = markdown(result['rows'], {**doc, **result})
  print(text)
  if not args.no_docs and args.out == 'train_step':
    write_docs_block('train_step', text, 'Training step time by part (`bench/train_step`)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
