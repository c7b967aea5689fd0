"""The PyTorch port of dlib's face-recognition ResNet: the same descriptors as dlib on real
chips, gradients down to the pixels, and the fixed map from aligned crops to dlib's chip."""

import numpy as np
import pytest
import torch

from gan_face.dlib_resnet import DAT_SHA256, DlibResNet, IdentityDistance, chips_from_aligned, dat_path, read_weights


@pytest.fixture(scope="module")
def dlib_tools():
    from gan_face.identity import IdentityScorer

    return IdentityScorer()


@pytest.fixture(scope="module")
def net():
    return DlibResNet().eval()


@pytest.fixture(scope="module")
def aligned():
    from gan_face.dataset import AlignedFaces
    from gan_face.weights import SHARED

    return np.asarray(AlignedFaces(SHARED / "data" / "faces" / "test", 128, limit=6).images)


def dlib_chip(scorer, crop):
    """dlib's own chip of an aligned crop: its 5-point landmarks, get_face_chip(150, 0.25)."""
    from gan_face.face import template

    points = template(crop.shape[0])
    x0, x1, y0, y1 = points[:, 0].min(), points[:, 0].max(), points[:, 1].min(), points[:, 1].max()
    px, py = (x1 - x0) * 0.6, (y1 - y0) * 0.9
    rect = scorer.dlib.rectangle(int(x0 - px), int(y0 - py), int(x1 + px), int(y1 + py * 0.8))
    crop = np.ascontiguousarray(crop)
    return scorer.dlib.get_face_chip(crop, scorer.shape(crop, rect), size=150, padding=0.25)


def test_the_port_gives_dlibs_descriptors(dlib_tools, net, aligned):
    for crop in aligned[:4]:
        chip = dlib_chip(dlib_tools, crop)
        reference = np.asarray(dlib_tools.net.compute_face_descriptor(chip))
        with torch.no_grad():
            ours = net(torch.from_numpy(chip).permute(2, 0, 1)[None].float())[0].numpy()
        assert np.abs(ours - reference).max() < 1e-4


def test_gradients_reach_the_pixels(aligned):
    distance = IdentityDistance()
    faces = torch.from_numpy(aligned[:2].copy()).permute(0, 3, 1, 2).float() / 255
    degraded = torch.nn.functional.avg_pool2d(faces, 3, 1, 1).requires_grad_(True)
    d = distance(degraded, faces)
    d.sum().backward()
    assert torch.isfinite(degraded.grad).all() and degraded.grad.abs().sum() > 0
    assert (d > 0).all()


def test_the_fixed_chip_map_agrees_with_dlibs_own_alignment(dlib_tools, aligned):
    # the fixed map from the aligned crop stands in for dlib's per-face landmarks: distances
    # between faces follow dlib's, and a slightly blurred copy stays well inside one person
    distance = IdentityDistance()
    faces = torch.from_numpy(aligned.copy()).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        same = distance(faces, torch.nn.functional.avg_pool2d(faces, 3, 1, 1))
        ours = distance.net(chips_from_aligned(faces))
    reference = np.stack([dlib_tools.descriptor(c) for c in aligned])
    pairs = np.triu_indices(len(aligned), 1)
    d_ours = torch.cdist(ours, ours).numpy()[pairs]
    d_dlib = np.linalg.norm(reference[:, None] - reference[None], axis=2)[pairs]
    assert np.corrcoef(d_ours, d_dlib)[0, 1] > 0.85
    assert same.max() < 0.3


def test_a_changed_weights_file_is_refused(tmp_path):
    bad = tmp_path / "model.dat"
    data = bytearray(dat_path().read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=DAT_SHA256):
        read_weights(bad)
