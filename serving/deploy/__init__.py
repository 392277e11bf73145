"""Production serving on the real ``tensorflow/serving`` image.

``render.py`` writes ``models.config``, ``batching.config`` and ``monitoring.config`` from the
pipeline's push destination; ``docker-compose.yml`` and ``kubernetes/`` run
``tensorflow_model_server`` on them. The embedded server takes the same files and flags
(``python -m serving serve``), so switching is a change of binary; see docs/SERVING.md.
"""
