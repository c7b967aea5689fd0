"""Face-identity distance with dlib's face-recognition ResNet (offline: the weights ship in
the PyPI package `face-recognition-models`). Same person: distance below 0.6 (dlib's
threshold, 99.38 % on LFW); this project's target for restored faces is below 0.4."""

from __future__ import annotations

import warnings

import numpy as np

from gan_face.face import template


class IdentityScorer:
    """128-d dlib descriptors of aligned face crops, and distances between them."""

    def __init__(self):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
                import dlib
                import face_recognition_models as models
        except ImportError as e:
            raise ImportError("identity scoring needs dlib-bin and face-recognition-models (requirements-dev.txt)") from e
        self.dlib = dlib
        self.shape = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.net = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def descriptor(self, crop: np.ndarray) -> np.ndarray:
        """(S,S,3) uint8 RGB crop aligned to the FFHQ template -> (128,) descriptor."""
        size = crop.shape[0]
        points = template(size)
        # the face box implied by the template: eyes to mouth, widened like a detector's box
        x0, x1 = points[:, 0].min(), points[:, 0].max()
        y0, y1 = points[:, 1].min(), points[:, 1].max()
        pad_x, pad_y = (x1 - x0) * 0.6, (y1 - y0) * 0.9
        rect = self.dlib.rectangle(int(x0 - pad_x), int(y0 - pad_y), int(x1 + pad_x), int(y1 + pad_y * 0.8))
        image = np.ascontiguousarray(crop)
        shape = self.shape(image, rect)
        return np.asarray(self.net.compute_face_descriptor(image, shape, num_jitters=0))

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(self.descriptor(a) - self.descriptor(b)))
