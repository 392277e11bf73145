"""The architecture diagram of docs/ARCHITECTURE.md, from one source.

    python docs/architecture.py           # rewrite the Mermaid block and the SVG
    python docs/architecture.py --check   # exit 1 when either is stale

Every box names the modules that implement it (``modules``: paths from the repository
root); ``tests/test_docs.py`` fails when one of them no longer exists, when the Mermaid
block of ARCHITECTURE.md differs from :func:`mermaid`, or when the SVG lacks a box. The
SVG (``docs/figures/architecture.svg``) is drawn with matplotlib from the same nodes and
positions (no Mermaid renderer is installable here: mermaid-cli needs a headless browser).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, 'docs', 'ARCHITECTURE.md')
SVG = os.path.join(REPO, 'docs', 'figures', 'architecture.svg')
START, END = '<!-- architecture:start -->', '<!-- architecture:end -->'


@dataclasses.dataclass(frozen=True)
class Node:
  id: str
  title: str
  modules: Tuple[str, ...]
  group: str
  x: float
  y: float


@dataclasses.dataclass(frozen=True)
class Group:
  id: str
  title: str
  color: str


GROUPS = (
    Group('data', 'Logs', '#eef3fb'),
    Group('tfx', 'TFX pipeline: pipeline/pipeline.py (local_runner.py runs it)', '#eef8ee'),
    Group('store', 'Artifacts and ML Metadata', '#f6f1e7'),
    Group('serve', 'Serving', '#fbeef0'),
    Group('policy', 'Decision layer: policy/', '#f1eefb'),
    Group('scale', 'Beyond one machine', '#f0f0f0'),
)

NODES = (
    Node('gen', 'generated logs', ('datagen/synthetic.py',), 'data', -0.4, 8),
    Node('real', 'real logs (../shared/data)', ('datagen/movielens.py', 'datagen/talkingdata.py'),
         'data', -0.4, 6),
    Node('examplegen', 'ExampleGen', ('components/canonical_example_gen.py',
                                       'components/parquet_example_gen.py'), 'tfx', 3, 8),
    Node('stats', 'StatisticsGen, SchemaGen,\nExampleValidator', ('pipeline/pipeline.py',),
         'tfx', 6, 8),
    Node('transform', 'Transform', ('transform/preprocessing.py', 'transform/feature_spec.py'),
         'tfx', 3, 6),
    Node('trainer', 'Trainer (run_fn)', ('trainer/task.py', 'trainer/models/heads.py',
                                         'trainer/export.py'), 'tfx', 6, 6),
    Node('gbdt', 'Trainer: GBDT baseline\n(LightGBM)',
         ('trainer/gbdt.py', 'components/gbdt_evaluator.py'), 'tfx', 4.5, 4.4),
    Node('evaluator', 'Evaluator (TFMA)', ('pipeline/evaluation.py', 'pipeline/metrics.py'),
         'tfx', 9, 6),
    Node('ope_c', 'OffPolicyEvaluator', ('components/off_policy_evaluator.py',), 'tfx', 9, 4.4),
    Node('gate', 'BlessingGate', ('components/blessing_gate.py',), 'tfx', 12, 6),
    Node('infra', 'InfraValidator', ('components/infra_validator.py',), 'tfx', 12, 8),
    Node('pusher', 'Pusher', ('pipeline/pipeline.py',), 'tfx', 12, 4.4),
    Node('mlmd', 'pipeline root + ML Metadata\n(run report)', ('pipeline/configs.py',
                                                               'pipeline/report.py'),
         'store', 7.5, 2.1),
    Node('base', 'model base path\n<name>/<version>/', ('serving/config.py',), 'serve', 15.5, 4.4),
    Node('embedded', 'embedded server\n(gRPC + REST)',
         ('serving/server.py', 'serving/grpc_server.py', 'serving/rest_server.py'), 'serve',
         15.5, 6.4),
    Node('tfserving', 'tensorflow/serving image', ('serving/deploy/render.py',), 'serve',
         18.5, 4.4),
    Node('clients', 'clients', ('serving/client.py', 'serving/batch.py'), 'serve', 21.5, 5.4),
    Node('ope', 'off-policy evaluation', ('policy/ope/estimators.py',), 'policy', 15.5, 1.6),
    Node('bandit', 'Thompson-sampling bandits', ('policy/bandit/thompson.py',), 'policy',
         18.5, 1.6),
    Node('bidding', 'budget pacing', ('policy/bidding/bidders.py',), 'policy', 21.5, 1.6),
    Node('beam', 'Beam runners', ('pipeline/configs.py',), 'scale', 3, -0.3),
    Node('distribute', 'tf.distribute', ('trainer/task.py',), 'scale', 6, -0.3),
    Node('kfp', 'Kubeflow Pipelines', ('pipeline/kubeflow_v2_runner.py',), 'scale', 9, -0.3),
)

EDGES = (
    ('gen', 'examplegen', 'CSV / Parquet'), ('real', 'examplegen', ''),
    ('examplegen', 'stats', ''), ('examplegen', 'transform', ''),
    ('transform', 'trainer', ''), ('examplegen', 'gbdt', 'raw rows'),
    ('trainer', 'evaluator', 'candidate'), ('gbdt', 'evaluator', 'baseline'),
    ('trainer', 'ope_c', ''), ('evaluator', 'gate', 'blessing'), ('ope_c', 'gate', ''),
    ('trainer', 'infra', ''), ('infra', 'pusher', ''), ('gate', 'pusher', ''),
    ('trainer', 'mlmd', ''), ('pusher', 'base', 'SavedModel'),
    ('base', 'embedded', ''), ('base', 'tfserving', ''),
    ('embedded', 'clients', 'TF Serving API'), ('tfserving', 'clients', ''),
    ('clients', 'bidding', 'pCTR over gRPC'), ('base', 'ope', 'predict_raw'),
    ('base', 'bandit', 'last_hidden'),
    ('beam', 'transform', ''), ('distribute', 'trainer', ''), ('kfp', 'mlmd', ''),
)


def mermaid() -> str:
  """The flowchart as Mermaid; every box lists its modules."""
  out = ['```mermaid', 'flowchart LR']
  for g in GROUPS:
    out.append(f'  subgraph {g.id}["{g.title}"]')
    for n in NODES:
      if n.group == g.id:
        label = n.title.replace('\n', ' ') + '<br/><small>' + '<br/>'.join(n.modules) + '</small>'
        out.append(f'    {n.id}["{label}"]')
    out.append('  end')
  for a, b, label in EDGES:
    out.append(f'  {a} -->|{label}| {b}' if label else f'  {a} --> {b}')
  out.append('```')
  return '\n'.join(out)


def render_svg(path: str = SVG) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  from matplotlib.patches import FancyBboxPatch
  matplotlib.rcParams['svg.fonttype'] = 'none'      # text stays text (searchable, tested)
  matplotlib.rcParams['svg.hashsalt'] = 'architecture'
  w, h = 2.6, 1.3
  fig, ax = plt.subplots(figsize=(24, 10.5))
  by = {n.id: n for n in NODES}
  for g in GROUPS:
    members = [n for n in NODES if n.group == g.id]
    x0 = min(n.x for n in members) - w / 2 - 0.35
    x1 = max(n.x for n in members) + w / 2 + 0.35
    y0 = min(n.y for n in members) - h / 2 - 0.35
    y1 = max(n.y for n in members) + h / 2 + 0.6
    ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle='round,pad=0.05',
                                fc=g.color, ec='#999999', lw=0.8, zorder=0))
    ax.text(x0 + 0.15, y1 - 0.3, g.title, fontsize=9, fontweight='bold', va='center',
            zorder=1)
  def border(p, q):
    """Where the segment from box p's centre towards q leaves box p."""
    dx, dy = q.x - p.x, q.y - p.y
    t = min((w / 2 + 0.05) / abs(dx) if dx else float('inf'),
            (h / 2 + 0.05) / abs(dy) if dy else float('inf'))
    return p.x + t * dx, p.y + t * dy

  for a, b, label in EDGES:
    p, q = by[a], by[b]
    start, end = border(p, q), border(q, p)
    ax.annotate('', xy=end, xytext=start, zorder=2,
                arrowprops=dict(arrowstyle='-|>', color='#555555', lw=0.9, mutation_scale=12,
                                shrinkA=0, shrinkB=0))
    if label:
      ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, label, fontsize=7,
              color='#333333', ha='center', va='center', zorder=4,
              bbox=dict(fc='white', ec='none', pad=0.5, alpha=0.9))
  for n in NODES:
    ax.add_patch(FancyBboxPatch((n.x - w / 2, n.y - h / 2), w, h, boxstyle='round,pad=0.04',
                                fc='white', ec='#333333', lw=1.0, zorder=3))
    ax.text(n.x, n.y + 0.3, n.title, ha='center', va='center', fontsize=8.5,
            fontweight='bold', zorder=5)
    ax.text(n.x, n.y - 0.3, '\n'.join(n.modules), ha='center', va='center', fontsize=6.3,
            family='monospace', color='#444444', zorder=5)
  ax.set_xlim(-2.2, 23.3)
  ax.set_ylim(-1.5, 9.5)
  ax.axis('off')
  fig.tight_layout()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path, format='svg', metadata={'Date': None})
  plt.close(fig)


def missing_modules() -> List[str]:
  return sorted({m for n in NODES for m in n.modules if not os.path.exists(os.path.join(REPO, m))})


def _block(doc: str) -> Optional[str]:
  if START not in doc or END not in doc:
    return None
  return doc[doc.index(START) + len(START):doc.index(END)].strip('\n')


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog='python docs/architecture.py',
                              description=__doc__.split('\n')[0])
  p.add_argument('--check', action='store_true')
  args = p.parse_args(argv)
  missing = missing_modules()
  if missing:
    print('modules named in the diagram do not exist: ' + ', '.join(missing), file=sys.stderr)
    return 1
  with open(DOC, encoding='utf-8') as f:
    doc = f.read()
  if args.check:
    ok = _block(doc) == mermaid() and os.path.isfile(SVG)
    print('up to date' if ok else 'stale: run python docs/architecture.py')
    return 0 if ok else 1
  if _block(doc) is None:
    raise SystemExit(f'{DOC} has no {START} ... {END} markers')
  doc = doc[:doc.index(START) + len(START)] + '\n' + mermaid() + '\n' + doc[doc.index(END):]
  with open(DOC, 'w', encoding='utf-8') as f:
    f.write(doc)
  render_svg()
  print(f'wrote the Mermaid block of {DOC} and {SVG}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
