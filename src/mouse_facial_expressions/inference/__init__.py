"""inference stage: trained models applied to new data.

- ``ensemble``: a run's fold models as one scorer (``load_ensemble``, ``FoldEnsemble``);
- ``predict``: score videos with their keypoints (``mfe predict``: ``predict_videos``);
- ``zeroshot``: score every window of another cohort's task (``predict_task``);
- ``export``: the fold ensemble as one ONNX graph, checked against torch (``mfe export``);
- ``saliency``: Grad-CAM maps of a model over face crops.

Metrics on the resulting prediction tables are the evaluation stage's; ``report.runs`` calls both.

>>> from mouse_facial_expressions.inference.predict import predict_videos
>>> report = predict_videos("videos/", "keypoints/", "models/runs/<run>", "predictions/")
"""
