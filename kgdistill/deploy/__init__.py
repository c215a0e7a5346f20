"""Deploying a student: export to ONNX (with int8 quantisation or pruning), load it with ONNX Runtime alone,
and serve it over HTTP.  ``export`` needs the training code; ``onnx_model`` and ``serve`` do not."""
