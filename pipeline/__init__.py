"""The TFX pipeline, its configuration, the Evaluator's metrics and gates, run reports and
the runners.

| module | owns |
|---|---|
| ``pipeline.py`` | the component graph, ExampleGen to Pusher, the GBDT baseline's included |
| ``configs.py`` | ``PipelineConfig``: paths, training settings, gate bounds, Beam presets |
| ``input_check.py`` | checks of the input files against the feature spec |
| ``evaluation.py`` | the Evaluators' TFMA configs (metrics, slices, ``Gates``) and results |
| ``metrics.py`` | custom TFMA metrics: ECE (equal-width / equal-mass) and GAUC |
| ``report.py`` | ``experiments/<model>_<time>/``: metrics.json, reliability.png, report.html |
| ``local_runner.py``, ``kubeflow_v2_runner.py`` | running it locally, compiling it for Kubeflow |
"""
import os

os.environ['TF_USE_LEGACY_KERAS'] = '1'
