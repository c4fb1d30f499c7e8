"""sentiment: train, evaluate and serve text-sentiment classifiers.

Library entry points (the CLI is a thin layer over these):

- ``sentiment.config.load_config`` -- read and validate a YAML config
- ``sentiment.pipeline.train`` -- data -> tokens -> Word2Vec -> pooled vectors -> MLP -> saved model
- ``sentiment.pipeline.evaluate_model`` -- metrics of a saved model
- ``sentiment.predictor.Predictor`` -- load a saved model and predict (NumPy only: fast start-up)

Nothing heavy is imported here so that ``sentiment --help`` and ``sentiment predict`` start fast.
"""

__version__ = "0.1.0"
