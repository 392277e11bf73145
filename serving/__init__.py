"""Serving: the embedded TF-Serving-compatible model server, its clients, batch scoring and
the deployment files for the real ``tensorflow/serving`` image.

| module | owns |
|---|---|
| ``server.py`` | ``ModelServer`` (gRPC + REST); ``python -m serving serve``, TF Serving's flags |
| ``core.py`` | ``ServerCore``: model manager + batching + warm-up + metrics behind the APIs |
| ``manager.py`` | version policies, labels, the load/unload lifecycle |
| ``storage_path.py`` | which versions under a base path are ready, polled on a thread |
| ``servable.py`` | one loaded SavedModel version (session + signature defs) |
| ``inference.py`` | Predict / Classify / Regress / MultiInference / GetModelMetadata |
| ``batching.py`` | server-side batching (TF Serving's ``BatchingParameters``) |
| ``grpc_server.py``, ``rest_server.py`` | the two front ends |
| ``json_request.py`` | TF Serving's REST JSON requests, decoded |
| ``json_response.py`` | TF Serving's REST JSON responses, encoded |
| ``tensors.py`` | ``TensorProto`` <-> NumPy |
| ``signatures.py`` | the exported model's signature, input and output names (no imports) |
| ``metrics.py`` | Prometheus metrics under TF Serving's names |
| ``config.py`` | ``models.config``, batching and monitoring config files |
| ``errors.py`` | status codes, messages, HTTP mapping |
| ``client.py`` | one Python client over gRPC or REST (raw features, dicts, tf.Examples) |
| ``batch.py`` | offline batch scoring with Beam + tfx-bsl RunInference |
| ``deploy/`` | ``models.config`` etc., docker-compose and Kubernetes for ``tensorflow/serving`` |
"""
