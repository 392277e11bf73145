"""``OffPolicyEvaluator``: the candidate model's policy, evaluated off-policy on held-out
logs, and a blessing that can hold back the Pusher.

The held-out split of ExampleGen (``test``) is a log of the policy that chose the
``action`` (the creative) with probability ``propensity``; its reward is the primary label
(``clicked``). The candidate's policy scores every action of every logged round with the
model's ``predict_raw`` signature (the predicted click) and is greedy, softmax or
epsilon-greedy over those scores (:mod:`policy.ope.policies`). Its lift over the logging
policy, V(candidate) - mean logged reward, is estimated by ``estimator`` (DR by default;
its reward model is the candidate's own predicted click, honest here because the
held-out rows were never trained on) with a bootstrap confidence interval
(:func:`policy.ope.estimators.lift`).

The blessing is ``BLESSED`` unless ``gate`` is on and the interval's lower bound is at or
below ``min_lift``; ``off_policy_evaluation.json`` beside it holds the estimate and why.
TFX has no component for off-policy evaluation, hence this one.
"""

# No "from __future__ import annotations": the @component decorator reads real annotations.

import dataclasses
import json
from typing import Dict, Optional

import numpy as np
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

REPORT_FILE = 'off_policy_evaluation.json'


@dataclasses.dataclass(frozen=True)
class OpeConfig:
  """What the component evaluates and when it blesses."""
  reward_column: str = 'clicked'
  reward_threshold: Optional[float] = None   # the reward is column >= this (a spec's label)
  action_column: str = 'action'
  propensity_column: str = 'propensity'
  n_actions: int = 0                 # 0: the largest logged action + 1
  policy: str = 'greedy'             # greedy | softmax | epsilon-greedy
  temperature: float = 1.0           # softmax, over the predicted click's logit
  epsilon: float = 0.1               # epsilon-greedy
  estimator: str = 'dr'
  gate: bool = False                 # hold back the Pusher on a low lift
  min_lift: float = 0.0              # ... when the CI's lower bound is <= this
  alpha: float = 0.05
  bootstrap: int = 200
  seed: int = 0

  def __post_init__(self):
    if self.policy not in ('greedy', 'softmax', 'epsilon-greedy'):
      raise ValueError(f'policy must be greedy, softmax or epsilon-greedy; got {self.policy!r}')


def evaluate(model_dir: str, frame, config: OpeConfig = OpeConfig()) -> Dict[str, object]:
  """The candidate policy's value and lift on the logged ``frame``; the verdict."""
  from policy.ope import estimators as est
  from policy.ope import logs as logs_lib
  from policy.ope import policies
  if config.reward_threshold is not None:
    frame = frame.assign(**{config.reward_column: (
        frame[config.reward_column] >= config.reward_threshold).astype(np.int64)})
  logs = logs_lib.from_frame(
      frame, {config.reward_column: logs_lib.REWARD,
              config.propensity_column: logs_lib.PROPENSITY,
              config.action_column: logs_lib.ACTION},
      n_actions=config.n_actions or None)
  if config.action_column != logs_lib.ACTION:
    # The model reads the action under its own name: keep a copy for candidates.
    logs.frame[config.action_column] = logs.frame[logs_lib.ACTION]
  scores = policies.model_scores(model_dir, logs)              # (rounds, actions)
  logit = np.log(np.clip(scores, 1e-7, 1 - 1e-7) / np.clip(1 - scores, 1e-7, 1))
  if config.policy == 'greedy':
    dist = policies.greedy(scores)
  elif config.policy == 'softmax':
    dist = policies.softmax(logit, config.temperature)
  else:
    dist = policies.epsilon_greedy(scores, config.epsilon)
  fb = logs.feedback(scores[:, :, None].astype(np.float64))
  kw = dict(alpha=config.alpha, n_bootstrap=config.bootstrap, seed=config.seed)
  (value,) = est.estimate(fb, dist, (config.estimator,), **kw)
  (lift,) = est.lift(fb, dist, (config.estimator,), **kw)
  blessed = (not config.gate) or lift.ci_low > config.min_lift
  if not config.gate:
    why = 'reported only (the gate is off)'
  else:
    why = (f'the lift\'s {100 * (1 - config.alpha):g}% lower bound {lift.ci_low:.6f} is '
           f'{"above" if blessed else "at or below"} min_lift {config.min_lift:g}')
  return {'blessed': bool(blessed), 'why': why, 'config': dataclasses.asdict(config),
          'rows': len(logs), 'n_actions': logs.n_actions,
          'logged_mean_reward': float(fb.reward.mean()),
          'value': value.as_dict(), 'lift': lift.as_dict(),
          'greedy_share_of_logged_action': float(
              np.mean(scores.argmax(axis=1) == fb.action))}


def write_blessing(report: Dict[str, object], blessing, model) -> None:
  """A standard ModelBlessing (the file the Pusher checks, the properties the resolver
  reads) plus the report."""
  from components.blessing_gate import write_blessing as write
  write(blessing, model, report['blessed'], report, REPORT_FILE)


@component
def OffPolicyEvaluator(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    split: Parameter[str] = 'test',
    config_json: Parameter[str] = '{}',
) -> None:
  """Off-policy evaluation of the candidate's policy on the ``split`` logs
  (``config_json``: :class:`OpeConfig` fields)."""
  from tfx.utils import path_utils
  config = OpeConfig(**json.loads(config_json))
  # Every tf.Example of the split as a frame: one column per feature, one value per cell.
  from transform import examples as examples_lib
  frame = examples_lib.read_split(artifact_utils.get_split_uri([examples], split))
  report = evaluate(path_utils.serving_model_path(model.uri), frame, config)
  report['split'] = split
  write_blessing(report, blessing, model)
