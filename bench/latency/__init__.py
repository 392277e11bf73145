"""The serving latency budget: a small additive model of one Predict call, fitted to
measurements of its parts and checked against the embedded server end to end.

    python -m bench.latency [--batches 1 16 64 256] [--requests 200] [--no-docs]

One gRPC Predict of b serialized examples, for a model with F raw features and P dense
parameters (the trainer report's ``dense_parameters``, about its multiply-adds per
example), is modelled as

    latency   = decode + graph + encode + network
    decode    = a + k * request_bytes                 PredictRequest parse, TensorProto -> array
    graph     = a + c * F + k_f * b * F + k_p * b * P  one Session run of serving_default:
                  a                 the run's fixed cost
                  c * F + k_f b F   tf.Example parse and Transform, per feature and per value
                  k_p b P           the model
    encode    = a + k * b                             output array -> PredictResponse bytes
    network   = a + k * (request + response bytes)    gRPC on loopback and the server's
                                                      Python front end

Each part is timed on its own with the server's own code (``serving.tensors``, and the
``serving.servable.Servable`` session for the graph), for four models that differ in
feature count and size, at each batch size; then the same requests are timed end to end,
a ``tensorflow-serving-api`` client against ``python -m serving serve`` (bench/serving.py's
server), one request in flight, medians. Each part's coefficients are fitted by
non-negative least squares over the models and batches; the network part on what the
end-to-end time leaves after the other three. Parse, Transform and the model run inside
one graph and are not timed apart (calling the exported Keras model alone, outside the
graph, costs more than the whole graph); the fit separates them by how each scales, with
the feature count and with the model's size.

The check is leave one model out: each model's end-to-end latency is predicted from
coefficients fitted on the other three models alone, so its feature count and size are
what carries the prediction.

The load at which the 100 ms target breaks: open-loop Poisson traffic at rising rates
against the DNN (batch 1 and batch 64), p99 measured from each request's scheduled send
time, each rate in three rounds (medians). Predicted by an M/M/1 queue whose service rate
mu is the capacity, the most requests/s the server achieved: its response time is
exponential with rate mu - lambda, so p99 = ln(100) / (mu - lambda), and 100 ms breaks at
lambda* = mu - 46/s. Service times here vary (two cores shared by client, server and
TensorFlow's threads): an M/D/1 queue (constant service) predicted a p99 two to three
times too low at half load in the runs that chose between them.

| module | owns |
|---|---|
| ``measure.py`` | the models measured, each part's timing, end to end and under load |
| ``model.py`` | the additive model, its fit and check, the queue's p99 and break rate |
| ``report.py`` | the result rows and the markdown tables |
| ``__main__.py`` | the run |

Writes bench/results/latency.json and the same tables into docs/BENCHMARKS.md ("Serving
latency budget") and docs/ARCHITECTURE.md ("Latency budget").
"""
