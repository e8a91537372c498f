"""Training, evaluation and export of the city model.

`adapter` is the only module importing ultralytics (and so torch); the rest
works on paths, dataclasses and onnxruntime.
"""
