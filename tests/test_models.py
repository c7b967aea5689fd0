import json

import pytest
import torch

from gan_face import PatchDiscriminator, UNetGenerator
from gan_face.deblur import DeblurGenerator

TINY_G = dict(channels=[8, 16, 16], blocks=1)


@pytest.mark.parametrize("out_scale", [1, 2])
def test_generator_shapes_and_optional_mask(out_scale):
    g = UNetGenerator(**TINY_G, out_scale=out_scale)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    mask = torch.zeros(2, 1, 32, 48)
    y = g(x, mask)
    assert y.shape == (2, 3, 32 * out_scale, 48 * out_scale)
    assert torch.equal(g(x), y)  # no mask == an all-zero mask
    mask[:, :, 8:16, 8:16] = 1
    g.head.weight.data.normal_()  # the zero-initialised head would hide the mask's effect
    assert not torch.allclose(g(x, mask), g(x))


def test_generator_starts_as_identity():
    # the head is zero-initialised: an untrained G returns its input (global residual)
    g = UNetGenerator(**TINY_G)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(g(x), x)


def test_generator_rejects_bad_sizes_and_config():
    g = UNetGenerator(**TINY_G)
    with pytest.raises(ValueError, match="multiples of 8"):
        g(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="out_scale"):
        UNetGenerator(out_scale=3)
    with pytest.raises(ValueError, match="norm"):
        UNetGenerator(norm="batch")


@pytest.mark.parametrize("norm", ["batch", "instance", "batch+instance", "none"])
def test_discriminator_shapes(norm):
    d = PatchDiscriminator(base_channels=8, max_channels=16, n_layers=3, norm=norm)
    for size in (64, 128):
        logits, feats = d(torch.rand(2, 3, size, size), return_features=True)
        assert logits.shape[:2] == (2, 1) and logits.shape[-1] == size // 8 - 2
        assert len(feats) == 4


def test_discriminator_noise_injection_only_in_training():
    d = PatchDiscriminator(base_channels=8, max_channels=16, norm="instance")
    x = torch.rand(1, 3, 64, 64)
    d.noise_std = 0.5
    assert not torch.equal(d(x), d(x))  # noisy in training mode
    d.eval()
    assert torch.equal(d(x), d(x))
    d.train()
    d.noise_std = 0.0
    assert torch.equal(d(x), d(x))


@pytest.mark.parametrize(
    "cls,kwargs,shape",
    [
        (UNetGenerator, dict(image_channels=3, channels=[8, 16], blocks=2, norm="instance", out_scale=2, relight=True, mirror=False), (1, 3, 32, 32)),
        (UNetGenerator, dict(image_channels=3, channels=[8, 16], blocks=1, norm="none", out_scale=1, relight=True, mirror=True), (1, 3, 32, 32)),
        (PatchDiscriminator, dict(in_channels=3, base_channels=8, max_channels=16, n_layers=2, norm="batch+instance", noise_injection=False), (2, 3, 64, 64)),
        (DeblurGenerator, dict(num_filters=16, num_filters_fpn=32, norm="instance"), (1, 3, 64, 64)),
    ],
)
def test_save_and_load_pretrained_round_trip(tmp_path, cls, kwargs, shape):
    torch.manual_seed(0)
    model = cls(**kwargs)
    for p in model.parameters():  # non-trivial weights everywhere, zero-initialised heads included
        p.data.normal_(0, 0.1)
    model.eval()
    model.save_pretrained(tmp_path)
    assert {"model.safetensors", "config.json", "README.md"} <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / "config.json").read_text()) == kwargs  # every __init__ kwarg, nothing else
    loaded = cls.from_pretrained(tmp_path, strict=True)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(shape) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_mirror_stem_reads_the_other_half_of_the_face():
    """mirror=True: the stem also sees the face flipped left-right, so what lies under a hole on
    the left can be read from the right half at full resolution; it starts silent."""
    torch.manual_seed(0)
    plain, mirrored = UNetGenerator(channels=[8, 16]), UNetGenerator(channels=[8, 16], mirror=True)
    mirrored.load_state_dict(plain.state_dict(), strict=False)
    for conv in (plain.head, mirrored.head):
        conv.weight.data.normal_(0, 0.1)
    mirrored.head.load_state_dict(plain.head.state_dict())
    x, mask = torch.rand(1, 3, 32, 32) * 2 - 1, torch.zeros(1, 1, 32, 32)
    mask[..., 8:16, 4:12] = 1  # a hole on the left
    with torch.no_grad():
        assert torch.equal(plain(x, mask), mirrored(x, mask))  # silent at the start
        mirrored.mirror_stem.weight.normal_(0, 0.1)
        x2 = x.clone()
        x2[..., 8:16, 20:28] += 0.5  # change only the mirror image of the hole, on the right
        # with the mirror stem, the hole's own pixels react to their mirror image directly; the
        # plain model only through its coarsest level
        hole = (slice(None), slice(None), slice(10, 14), slice(6, 10))
        change = lambda g: (g(x2, mask) - g(x, mask))[hole].abs().mean()  # noqa: E731
        assert change(mirrored) > 10 * change(plain)


def test_generator_model_card(tmp_path):
    UNetGenerator(**TINY_G).save_pretrained(tmp_path)
    card = (tmp_path / "README.md").read_text()
    assert "library_name: gan_face" in card
    assert "pipeline_tag: image-to-image" in card
    assert "license: cc-by-nc-4.0" in card
    assert "from_pretrained" in card
