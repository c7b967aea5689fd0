"""The offline LPIPS / VGG weights: safe reading, strict loading, and that they measure
what LPIPS measures (a JPEG of a face is close to it, another person is far)."""

import io
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from gan_face import perceptual
from gan_face.imageops import to_unit
from gan_face.weights import sha256

from .conftest import face_files, load_rgb


def jpeg(array: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_converted_files_are_the_pinned_ones():
    # `python -m gan_face.perceptual` (the README's set-up) converted them; nothing is fetched here
    for name, expected in perceptual.CONVERTED.items():
        assert sha256(perceptual.FOLDER / name) == expected


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_separates_a_jpeg_from_another_person(net):
    model = perceptual.LPIPS(net)  # strict load
    a, b = (load_rgb(p, 128) for p in face_files(2))
    same = model(to_unit(a), to_unit(a)).item()
    compressed = model(to_unit(a), to_unit(jpeg(a, 70))).item()
    other = model(to_unit(a), to_unit(b)).item()
    assert same == pytest.approx(0, abs=1e-6)
    assert compressed < 0.1 < other and other > 5 * compressed


def test_lpips_in_a_mask_sees_only_the_damage_inside_it():
    a = load_rgb(face_files(1)[0], 128)
    damaged = a.copy()
    damaged[:64, :64] = jpeg(a, 10)[:64, :64]  # the top-left quarter only
    x, y = to_unit(a), to_unit(damaged)
    top_left, bottom_right = torch.zeros(1, 1, 128, 128), torch.zeros(1, 1, 128, 128)
    top_left[..., :64, :64] = 1
    bottom_right[..., 64:, 64:] = 1
    model = perceptual.LPIPS("alex")
    inside, outside, whole = model(x, y, top_left).item(), model(x, y, bottom_right).item(), model(x, y).item()
    assert inside > whole > outside and inside > 5 * outside
    assert model(x, y, torch.ones(1, 1, 128, 128)).item() == pytest.approx(whole, rel=0.05)


def test_alexnet_first_layer_is_trained():
    # ImageNet conv1 filters are oriented edges and colour blobs: strongly structured, far
    # from the white noise of a random init (a neighbouring-pixel correlation near 0)
    w = perceptual.LPIPS("alex").features[0].weight  # (64,3,11,11)
    centred = w - w.mean((2, 3), keepdim=True)
    corr = (centred[..., 1:] * centred[..., :-1]).sum((1, 2, 3)) / centred.pow(2).sum((1, 2, 3))
    assert corr.median() > 0.5


def test_vgg_features_load_strictly_and_differentiate():
    vgg = perceptual.vgg_features(depth=4)
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    taps = vgg(perceptual.imagenet_normalise(x))
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512]
    sum(t.mean() for t in taps).backward()
    assert x.grad.abs().sum() > 0


def test_a_pickle_with_anything_but_arrays_is_refused():
    safe = pickle.dumps({"Conv_0": {"kernel": np.ones((3, 3, 3, 4), np.float32)}})
    assert perceptual.load_numpy_pickle(safe)["Conv_0"]["kernel"].shape == (3, 3, 3, 4)
    evil = pickle.dumps({"x": os.system})  # would resolve posix.system on load
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        perceptual.load_numpy_pickle(evil)


def test_missing_weights_name_the_set_up_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m gan_face.perceptual"):
        perceptual.LPIPS("alex", folder=tmp_path)
