import pytest
import torch

from gan_face.deblur import ENCODER_SLICES, DeblurGenerator


def official_layout(model: DeblurGenerator) -> dict:
    """The key layout of the official fpn_mobilenet.h5: {"model": {"module.<key>": tensor}},
    with the MobileNetV2 layers under both `fpn.features.N` and `fpn.encE.M`, and the three
    unused layers features.16-18 (MobileNetV2 160->160, 160->320 blocks and the 1x1 to 1280)."""
    state = dict(model.state_dict())
    for e, (a, _) in enumerate(ENCODER_SLICES):
        for key, value in list(state.items()):
            prefix = f"fpn.enc{e}."
            if key.startswith(prefix):
                index, rest = key.removeprefix(prefix).split(".", 1)
                state[f"fpn.features.{a + int(index)}.{rest}"] = value
    # unused tail: shapes from the official MobileNetV2 (expansion 6)
    state["fpn.features.16.conv.0.weight"] = torch.randn(960, 160, 1, 1)
    state["fpn.features.17.conv.6.weight"] = torch.randn(320, 960, 1, 1)
    state["fpn.features.18.0.weight"] = torch.randn(1280, 320, 1, 1)
    state["fpn.features.18.1.running_var"] = torch.ones(1280)
    return {"model": {"module." + k: v for k, v in state.items()}}


def test_official_key_layout_loads_strictly(tmp_path):
    torch.manual_seed(0)
    source = DeblurGenerator()
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    checkpoint = official_layout(source)
    keys = checkpoint["model"]
    # names and shapes as in the official models/fpn_mobilenet.py + mobilenet_v2.py
    expected = {
        "module.fpn.features.0.0.weight": (32, 3, 3, 3),
        "module.fpn.enc0.0.0.weight": (32, 3, 3, 3),
        "module.fpn.enc0.1.conv.0.weight": (32, 1, 3, 3),  # t=1 block: depthwise first
        "module.fpn.features.15.conv.7.running_var": (160,),
        "module.fpn.lateral4.weight": (128, 160, 1, 1),
        "module.fpn.lateral0.weight": (64, 16, 1, 1),
        "module.fpn.td1.1.running_mean": (128,),  # instance norm with running stats
        "module.head1.block0.weight": (64, 128, 3, 3),
        "module.smooth.0.weight": (64, 256, 3, 3),
        "module.smooth2.0.weight": (32, 64, 3, 3),
        "module.final.weight": (3, 32, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(keys[key].shape) == shape, key
    path = tmp_path / "fpn_mobilenet.h5"
    torch.save(checkpoint, path)
    loaded = DeblurGenerator.from_official(path)
    assert not loaded.training
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    source.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


def test_official_loader_rejects_mismatched_keys(tmp_path):
    checkpoint = official_layout(DeblurGenerator())
    del checkpoint["model"]["module.final.weight"]
    torch.save(checkpoint, tmp_path / "bad.h5")
    with pytest.raises(ValueError, match="final.weight"):
        DeblurGenerator.from_official(tmp_path / "bad.h5")
    (tmp_path / "junk.h5").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        DeblurGenerator.from_official(tmp_path / "junk.h5")


def test_eval_mode_uses_instance_statistics():
    # the official code had to run in train mode because its instance norms used stale
    # running statistics in eval mode; here eval output ignores those buffers entirely
    from gan_face.norm import CheckpointInstanceNorm as InstanceNorm

    torch.manual_seed(0)
    model = DeblurGenerator(num_filters=16, num_filters_fpn=32).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        before = model(x)
        norms = [m for m in model.modules() if isinstance(m, InstanceNorm)]
        assert len(norms) == 5
        for m in norms:
            m.running_mean.fill_(5.0)
            m.running_var.fill_(100.0)
        after = model(x)
    assert torch.equal(before, after)
    assert before.shape == x.shape and before.abs().max() <= 1
