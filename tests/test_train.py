"""Real training steps on real faces, with tiny models."""

import csv
import dataclasses
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_face import UNetGenerator
from gan_face.dataset import AlignedFaces
from train import checkpoint
from train.config import TrainConfig
from train.export import export_generator
from train.trainer import Trainer, fit, training_inputs

from .conftest import TRAIN_FACES, face_files

REPO = Path(__file__).resolve().parents[1]


def tiny(tmp_path, **overrides) -> TrainConfig:
    cfg = dict(
        data=str(TRAIN_FACES), limit=16, cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "run"), size=64,
        batch=4, micro=2, steps=3, g_channels=[8, 16], g_blocks=1, d_channels=8, d_max_channels=16, d_layers=2,
        warmup_steps=0, checkpoint_every=2, sample_every=2, log_every=1, threads=2,
    )
    cfg.update(overrides)
    return TrainConfig(**cfg)


def read_log(out) -> list[dict]:
    with open(Path(out) / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    """K micro-batches of loss/K give the gradients of one batch of K x micro.

    With the shipped configuration (D's default instance norm; batch norm would depend on the
    micro-batch by design), noise off and lr_d=0, so that the G-phase gradients are compared
    against the same D."""
    grads = []
    for micro in (8, 2):
        cfg = tiny(tmp_path, batch=8, micro=micro, d_noise=0.0, gp="r1", gp_every=1, lr_d=0.0)
        torch.manual_seed(0)
        trainer = Trainer(cfg)
        trainer.train_step(*trainer.sample_batch())
        grads.append([p.grad.clone() for m in (trainer.g, trainer.d) for p in m.parameters()])
    for big, accumulated in zip(*grads):
        # float32 summation order differs: compare against each tensor's own scale
        assert (big - accumulated).abs().max() <= 1e-4 * big.abs().max() + 1e-7


def test_d_is_frozen_in_the_g_phase(tmp_path):
    trainer = Trainer(tiny(tmp_path))
    before = [p.detach().clone() for p in trainer.d.parameters()]
    d_grads = []
    original = trainer.opt_g.step

    def g_step(*a, **k):  # at the G optimiser step, D must not have received G-phase gradients
        d_grads.append([p.requires_grad for p in trainer.d.parameters()])
        return original(*a, **k)

    trainer.opt_g.step = g_step
    trainer.train_step(*trainer.sample_batch())
    assert d_grads and not any(d_grads[0])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.d.parameters()))  # D did train in its phase


def test_three_steps_then_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = tiny(tmp_path, steps=3)
    fit(cfg)
    out = Path(cfg.out)
    state = checkpoint.load(out / "checkpoint.pt")
    assert state["step"] == 3
    rows = read_log(out)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r in rows:
        for name in ("d_loss", "g_loss", "l1", "adv", "fm"):
            assert math.isfinite(float(r[name]))
    assert (out / "samples_0000002.png").is_file() and (out / "loss_curve.png").is_file()

    # resuming restores the exact saved state
    resumed = Trainer(tiny(tmp_path, steps=4, resume="latest"))
    assert resumed.step == 3
    for key, value in resumed.state()["g"].items():
        assert torch.equal(value, state["g"][key])
    assert resumed.opt_g.state_dict()["state"][0]["exp_avg"].equal(state["opt_g"]["state"][0]["exp_avg"])
    resumed.run()

    # ... and continues at step 4 exactly as a run that was never interrupted, D's noise
    # injection (on by default) included: it draws from torch's global generator, reseeded each step
    straight = tiny(tmp_path, steps=4, out=str(tmp_path / "straight"))
    fit(straight)
    a, b = checkpoint.load(out / "checkpoint.pt"), checkpoint.load(Path(straight.out) / "checkpoint.pt")
    assert a["step"] == b["step"] == 4
    for part in ("g", "d"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for x, y in zip(a["ema"]["shadow_params"], b["ema"]["shadow_params"]):
        assert torch.equal(x, y)
    assert read_log(out)[-1]["g_loss"] == read_log(straight.out)[-1]["g_loss"]


def test_occlude_always_trains_on_holes_in_damaged_faces(tmp_path):
    """--occlude_always: every training image has a hole, on top of the damage it drew; the card says so."""
    cfg = tiny(tmp_path, steps=2, gan=False, occlude_always=True, lighting_weight=0, occlusion_weight=0, downscale_weight=0, mixed_weight=0, export=str(tmp_path / "export"))
    trainer = Trainer(cfg)
    hq = trainer.data.batch(trainer.train_idx[:8])
    lq, mask = training_inputs(cfg, hq, torch.Generator().manual_seed(0))
    assert (mask.flatten(1).amax(1) == 1).all()
    assert (((lq - hq).abs() * (1 - mask)).flatten(1).amax(1) > 0.05).all()  # blurred around the hole
    trainer.run()
    assert "(and an occluder on every degraded image)" in (tmp_path / "export" / "README.md").read_text()


def test_misalign_moves_part_of_each_batch_and_the_card_says_so(tmp_path):
    """--misalign: the clean targets are the moved faces (the model learns to restore a face where
    it is, not where the template has it); the faces it leaves are the batch it would draw without it."""
    plain = Trainer(tiny(tmp_path / "a", batch=16, micro=16, misalign=0.0))
    moved = Trainer(tiny(tmp_path / "b", batch=16, micro=16, misalign=0.1, steps=1, export=str(tmp_path / "export")))
    same = (plain.sample_batch()[2] == moved.sample_batch()[2]).flatten(1).all(1)
    assert 2 <= same.sum() <= 14  # half of 16, binomial
    moved.run()
    assert "(half the faces moved off the template by up to 0.1 of the crop)" in (tmp_path / "export" / "README.md").read_text()
    with pytest.raises(ValueError, match="--misalign"):
        tiny(tmp_path, misalign=0.9).validate()


def test_export_writes_a_loadable_hub_folder(tmp_path):
    cfg = tiny(tmp_path, steps=2, export=str(tmp_path / "export"))
    fit(cfg)
    g = UNetGenerator.from_pretrained(tmp_path / "export", strict=True)
    assert g.depth == 2
    card = (tmp_path / "export" / "README.md").read_text()
    assert "## Training" in card and "steps: 2 at batch 4" in card
    # exporting again into the same folder replaces the card instead of appending to it
    export_generator(checkpoint.load(Path(cfg.out) / "checkpoint.pt"), tmp_path / "export", command="python -m train again")
    card = (tmp_path / "export" / "README.md").read_text()
    assert card.count("## Training") == 1 and "python -m train again" in card
    # the card names the hardware the checkpoint was trained on, not the one exporting it
    state = checkpoint.load(Path(cfg.out) / "checkpoint.pt")
    assert state["hardware"] == checkpoint.hardware()
    state["hardware"] = "NVIDIA H100 80GB HBM3 GPU, torch 2.11.0+cu130"
    export_generator(state, tmp_path / "export")
    assert "- hardware: NVIDIA H100 80GB HBM3 GPU, torch 2.11.0+cu130\n" in (tmp_path / "export" / "README.md").read_text()


def test_resume_refuses_a_different_architecture(tmp_path):
    fit(tiny(tmp_path, steps=2))
    with pytest.raises(ValueError, match="g_channels"):
        Trainer(tiny(tmp_path, steps=3, resume="latest", g_channels=[8, 32]))


def test_init_from_adds_the_gain_path_to_a_run_without_it(tmp_path):
    """Fine-tuning a run that had no relighting path: same faces out at the start
    (the new gain layer starts as the identity), then it trains, and the card counts both runs."""
    first = fit(tiny(tmp_path, steps=2, g_relight=False, out=str(tmp_path / "first")))
    assert first["step"] == 2
    source = checkpoint.load(tmp_path / "first" / "checkpoint.pt")
    cfg = tiny(tmp_path, steps=2, out=str(tmp_path / "second"), init_from=str(tmp_path / "first" / "checkpoint.pt"), export=str(tmp_path / "export"))
    trainer = Trainer(cfg)
    old = UNetGenerator(channels=[8, 16], blocks=1, relight=False)
    old.load_state_dict(source["g"])
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(trainer.g(x), old(x), atol=1e-6)
    assert trainer.g.gain is not None and trainer.step == 0
    trainer.run()
    assert trainer.g.gain.weight.abs().sum() > 0  # the new layer learns
    card = (tmp_path / "export" / "README.md").read_text()
    assert "initialised from" in card and "steps: 4: 2 before, then 2 at batch 4" in card


def test_init_from_refuses_weights_of_another_model(tmp_path):
    fit(tiny(tmp_path, steps=2, g_channels=[8, 32]))
    with pytest.raises(ValueError, match="init_from"):
        Trainer(tiny(tmp_path, steps=2, out=str(tmp_path / "other"), init_from=str(tmp_path / "run" / "checkpoint.pt")))


def test_corrupt_images_are_skipped_and_named(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for p in face_files(6):
        shutil.copy(p, folder / p.name)
    good = face_files(1)[0].read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "notes.jpg").write_text("this is not an image")
    with pytest.warns(UserWarning) as warned:
        data = AlignedFaces(folder, 64, cache_dir=tmp_path / "cache")
    messages = " ".join(str(w.message) for w in warned)
    assert "truncated.jpg" in messages and "notes.jpg" in messages
    assert len(data) == 6 and len(data.corrupt) == 2
    assert data.images.shape == (6, 64, 64, 3)


def test_aligned_crops_are_resized_not_detected(tmp_path):
    # --data_aligned: folders of crops aligned already (FFHQ, or crops exported from a cache) are
    # read as they are; a crop that is not square cannot be one and is rejected
    crops = AlignedFaces(face_files(6)[0].parent, 96, cache_dir=tmp_path / "cache", limit=5).images.numpy()
    folder = tmp_path / "aligned"
    folder.mkdir()
    for i, crop in enumerate(crops):
        Image.fromarray(crop).save(folder / f"{i}.png")
    Image.fromarray(crops[0][:, :80]).save(folder / "wide.png")
    (folder / "broken.png").write_text("not an image")

    class NoDetector:
        def __call__(self, image):
            raise AssertionError("aligned crops must not be detected again")

    with pytest.warns(UserWarning, match="broken.png"):
        data = AlignedFaces(folder, 64, cache_dir=tmp_path / "cache", aligned=True, detector=NoDetector())
    assert len(data) == 5 and [Path(f).name for f in data.rejected] == ["wide.png"]
    expected = np.stack([np.asarray(Image.fromarray(c).resize((64, 64), Image.Resampling.LANCZOS)) for c in crops])
    assert np.array_equal(data.images.numpy(), expected)

    with pytest.warns(UserWarning, match="broken.png"):  # named again on every load
        trainer = Trainer(tiny(tmp_path, data=str(folder), data_aligned=True, limit=0, val_count=1, gan=False))
    stats = trainer.train_step(*trainer.sample_batch())
    assert math.isfinite(stats["g_loss"]) and stats["l1"] > 0
    export_generator(trainer.state(), tmp_path / "exported")
    assert "already aligned crops, resized to the FFHQ 5-point template at 64 px" in (tmp_path / "exported" / "README.md").read_text()


def test_pack_writes_crops_that_train_reads_back(tmp_path, capsys):
    from train.pack import main as pack_main

    source = tmp_path / "photos"
    source.mkdir()
    for p in face_files(4):
        shutil.copy(p, source / p.name)
    cache = tmp_path / "cache"
    assert pack_main([str(source), str(tmp_path / "png"), "--size", "64", "--format", "png", "--cache_dir", str(cache)]) == 0
    assert "4 aligned 64 px faces" in capsys.readouterr().out
    aligned = AlignedFaces(source, 64, cache_dir=cache)
    packed = AlignedFaces(tmp_path / "png", 64, cache_dir=cache, aligned=True)
    assert sorted(Path(f).stem for f in packed.files) == sorted(Path(f).stem for f in aligned.files)
    order = [packed.files.index(str(tmp_path / "png" / (Path(f).stem + ".png"))) for f in aligned.files]
    assert torch.equal(packed.images[order], aligned.images)  # lossless: the very crops training aligns
    assert pack_main([str(source), str(tmp_path / "webp"), "--size", "64", "--cache_dir", str(cache)]) == 0
    lossy = AlignedFaces(tmp_path / "webp", 64, cache_dir=cache, aligned=True).images.float()
    mse = (lossy - packed.images.float()).pow(2).mean()
    assert 10 * torch.log10(255**2 / mse) > 30
    assert pack_main([str(source), str(tmp_path / "bad"), "--quality", "0"]) == 1
    assert "quality must be in 1..100" in capsys.readouterr().err


def test_boolean_flags_parse_false():
    from train.config import parse_args

    assert parse_args(["--g_relight", "false"]).g_relight is False
    assert parse_args(["--g_relight", "True"]).g_relight is True
    with pytest.raises(SystemExit):
        parse_args(["--g_relight", "maybe"])


def test_degradation_weight_flags_choose_what_training_sees(faces128):
    from train.config import parse_args
    from train.trainer import training_inputs

    only_occlusion = parse_args(["--lighting_weight", "0", "--blur_weight", "0", "--downscale_weight", "0", "--mixed_weight", "0"])
    _, mask = training_inputs(only_occlusion, faces128, torch.Generator().manual_seed(0))
    assert (mask.flatten(1).amax(1) > 0).all()  # every face got an occluder
    no_occlusion = parse_args(["--occlusion_weight", "0"])
    _, mask = training_inputs(no_occlusion, faces128, torch.Generator().manual_seed(0))
    assert mask.max() == 0
    assert "occlusion 0, motion blur 1" in checkpoint.training_card(dataclasses.asdict(no_occlusion), 1, 1.0, command="x")
    with pytest.raises(ValueError, match="--blur_weight must be >= 0"):
        TrainConfig(blur_weight=-1).validate()


def test_micro_must_divide_batch():
    with pytest.raises(ValueError, match="not a multiple of --micro"):
        TrainConfig(batch=16, micro=5).validate()
    result = subprocess.run(
        [sys.executable, "-m", "train", "--batch", "16", "--micro", "5"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "--batch 16 is not a multiple of --micro 5" in result.stderr
    assert "Traceback" not in result.stderr


def test_export_command_writes_generator_and_discriminator(tmp_path):
    from gan_face import PatchDiscriminator
    from train.export import main as export_main

    cfg = tiny(tmp_path, steps=2)
    fit(cfg)
    code = export_main([str(Path(cfg.out) / "checkpoint.pt"), str(tmp_path / "g"), "--discriminator", str(tmp_path / "d"), "--command", "python -m train --steps 2"])
    assert code == 0
    UNetGenerator.from_pretrained(tmp_path / "g", strict=True)
    PatchDiscriminator.from_pretrained(tmp_path / "d", strict=True)
    assert "`python -m train --steps 2`" in (tmp_path / "g" / "README.md").read_text()
    assert export_main([str(tmp_path / "missing.pt"), str(tmp_path / "x")]) == 1  # a clear error, no traceback


def test_exported_card_records_the_training_command(tmp_path):
    # without --command, the card gives the `python -m train` line that parse_args reads back
    # as the checkpoint's config (not the export's own argv)
    import re
    import shlex

    from train.config import parse_args
    from train.export import main as export_main

    cfg = tiny(tmp_path, steps=1, gan=False, mask_l1_weight=2.5)
    fit(cfg)
    assert export_main([str(Path(cfg.out) / "checkpoint.pt"), str(tmp_path / "g")]) == 0
    command = re.search(r"- command: `(.*)`", (tmp_path / "g" / "README.md").read_text()).group(1)
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "train"] and "--gan" in words and "--mask_l1_weight" in words
    assert parse_args(words[3:]) == cfg


def test_psnr_phase_trains_g_alone(tmp_path):
    # --gan false (ESRGAN's first phase): no discriminator step, no adversarial terms
    trainer = Trainer(tiny(tmp_path, gan=False))
    d_before = [p.detach().clone() for p in trainer.d.parameters()]
    g_before = [p.detach().clone() for p in trainer.g.parameters()]
    stats = trainer.train_step(*trainer.sample_batch())
    assert all(torch.equal(a, b) for a, b in zip(d_before, trainer.d.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, trainer.g.parameters()))
    assert stats["adv"] == stats["d_loss"] == 0 and stats["l1"] > 0


def test_perceptual_loss_is_finite_and_reaches_g(tmp_path):
    trainer = Trainer(tiny(tmp_path, perceptual_weight=0.1))
    stats = trainer.train_step(*trainer.sample_batch())
    assert 0 < stats["perceptual"] < 100 and math.isfinite(stats["g_loss"])
    assert stats["g_loss"] > stats["l1"] + 0.1 * stats["perceptual"] * 0.99  # it is part of G's loss


def test_lpips_loss_is_finite_and_reaches_g(tmp_path):
    trainer = Trainer(tiny(tmp_path, lpips_weight=0.5))
    before = [p.detach().clone() for p in trainer.g.parameters()]
    stats = trainer.train_step(*trainer.sample_batch())
    assert 0 < stats["lpips"] < 1.5 and math.isfinite(stats["g_loss"])
    assert stats["g_loss"] > stats["l1"] + 0.5 * stats["lpips"] * 0.99  # it is part of G's loss
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.g.parameters()))


def test_identity_loss_is_finite_and_reaches_g(tmp_path):
    trainer = Trainer(tiny(tmp_path, identity_weight=0.5))
    before = [p.detach().clone() for p in trainer.g.parameters()]
    stats = trainer.train_step(*trainer.sample_batch())
    assert 0 < stats["identity"] < 2 and math.isfinite(stats["g_loss"])  # dlib distances: 0.6 separates people
    assert stats["g_loss"] > stats["l1"] + 0.5 * stats["identity"] * 0.99  # it is part of G's loss
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.g.parameters()))


def test_per_degradation_validation_is_logged(tmp_path):
    fit(tiny(tmp_path, steps=2))
    row = read_log(tmp_path / "run")[-1]
    for kind in ("lighting", "occlusion", "motion_blur", "downscale", "mixed", "clean"):
        assert float(row[f"val_{kind}"]) > 5
    assert float(row["val_clean"]) > float(row["val_mixed"])  # a clean face is closest to itself


def test_init_from_an_exported_folder(tmp_path):
    cfg = tiny(tmp_path, steps=2)
    fit(cfg)
    export_generator(checkpoint.load(Path(cfg.out) / "checkpoint.pt"), tmp_path / "exported", command="python -m train x")
    fine = Trainer(tiny(tmp_path, out=str(tmp_path / "fine"), init_from=str(tmp_path / "exported"), gan=False))
    exported = UNetGenerator.from_pretrained(str(tmp_path / "exported"), strict=True)
    assert all(torch.equal(a, b) for a, b in zip(exported.parameters(), fine.g.parameters()))
    assert fine.init == {"from": str(tmp_path / "exported"), "step": 2, "wall": pytest.approx(fine.init["wall"])}


def test_init_from_an_exported_folder_adds_the_mirror_stem(tmp_path):
    # --g_mirror true on a model exported without it: the new stem starts silent (same faces
    # out), then learns
    cfg = tiny(tmp_path, steps=2)
    fit(cfg)
    export_generator(checkpoint.load(Path(cfg.out) / "checkpoint.pt"), tmp_path / "exported", command="python -m train x")
    fine = Trainer(tiny(tmp_path, steps=2, out=str(tmp_path / "fine"), init_from=str(tmp_path / "exported"), gan=False, g_mirror=True))
    exported = UNetGenerator.from_pretrained(str(tmp_path / "exported"), strict=True)
    x, mask = torch.rand(2, 3, 64, 64) * 2 - 1, (torch.rand(2, 1, 64, 64) > 0.8).float()
    with torch.no_grad():
        assert torch.allclose(fine.g(x, mask), exported(x, mask), atol=1e-6)
    fine.run()
    assert fine.g.mirror_stem.weight.abs().sum() > 0


def test_init_from_an_exported_folder_grows_the_generator_deeper(tmp_path):
    # --g_blocks 2 on a model exported with 1: the new residual blocks start as the identity
    # (same faces out), then learn
    cfg = tiny(tmp_path, steps=2)
    fit(cfg)
    export_generator(checkpoint.load(Path(cfg.out) / "checkpoint.pt"), tmp_path / "exported", command="python -m train x")
    fine = Trainer(tiny(tmp_path, steps=2, out=str(tmp_path / "fine"), init_from=str(tmp_path / "exported"), gan=False, g_blocks=2))
    exported = UNetGenerator.from_pretrained(str(tmp_path / "exported"), strict=True)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(fine.g(x), exported(x), atol=1e-6)
    fine.run()
    grown = (fine.g.encoder[0][1], fine.g.merge[0][2])
    assert all(block.body[1].weight.abs().sum() > 0 for block in grown)


def test_two_processes_reach_the_weights_of_one(tmp_path):
    """torchrun with 2 processes of batch 8 (gloo on the CPU) = 1 process of batch 16 over the
    same images: each process trains on its share, gradients are averaged once per step."""
    common = [
        "--data", str(TRAIN_FACES), "--limit", "16", "--cache_dir", str(tmp_path / "cache"), "--size", "64", "--batch", "16",
        "--micro", "4", "--steps", "3", "--g_channels", "8", "16", "--d_channels", "8", "--d_max_channels", "16", "--d_layers", "2",
        "--warmup_steps", "0", "--checkpoint_every", "3", "--sample_every", "3", "--log_every", "1", "--d_noise", "0",
        "--gp_every", "1", "--threads", "1",
    ]
    torchrun = str(Path(sys.executable).parent / "torchrun")
    for out, launcher in (("one", [sys.executable]), ("two", [torchrun, "--nproc_per_node", "2"])):
        result = subprocess.run([*launcher, "-m", "train", *common, "--out", str(tmp_path / out)], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    one, two = (checkpoint.load(tmp_path / name / "checkpoint.pt") for name in ("one", "two"))
    for net in ("g", "d", "opt_g"):
        a = one[net] if net != "opt_g" else {k: v["exp_avg"] for k, v in one[net]["state"].items()}
        b = two[net] if net != "opt_g" else {k: v["exp_avg"] for k, v in two[net]["state"].items()}
        for name in a:
            scale = a[name].float().abs().max() + 1e-12
            assert (a[name].float() - b[name].float()).abs().max() <= 1e-4 * scale, (net, name)
    rows = read_log(tmp_path / "two")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]  # one process wrote the log


def test_masked_lpips_judges_the_fill_and_reaches_g(tmp_path):
    # --mask_lpips_weight: LPIPS inside each face's hole only; a face without a hole counts 0
    trainer = Trainer(tiny(tmp_path, size=128, gan=False, mask_lpips_weight=0.5))
    _, _, hq = trainer.sample_batch()
    real = hq * 2 - 1
    mask = torch.zeros(len(hq), 1, 128, 128)
    mask[:2, :, 24:56, 32:96] = 1  # the first two faces have a hole
    grey_fill, grey_elsewhere = real.clone(), real.clone()
    grey_fill[..., 24:56, 32:96] = 0
    grey_elsewhere[..., 100:, :] = 0  # the same area of change, away from the hole
    fill = trainer.generator_terms(grey_fill, real, mask)["masked_lpips"][1].item()
    elsewhere = trainer.generator_terms(grey_elsewhere, real, mask)["masked_lpips"][1].item()
    assert fill > 5 * elsewhere and fill > 0.1
    assert trainer.generator_terms(grey_fill, real, torch.zeros_like(mask))["masked_lpips"][1].item() == 0
    assert "masked_lpips" not in trainer.generator_terms(grey_fill, real, None)
    stats = trainer.train_step(hq * (1 - mask), mask, hq)
    assert 0 < stats["masked_lpips"] < 1.5 and stats["g_loss"] > stats["l1"] + 0.5 * stats["masked_lpips"] * 0.99
    assert "lpips" not in trainer.generator_terms(real, real, mask)  # the whole-face term has its own weight
    # with both LPIPS terms on, AlexNet runs once and each term is what it is alone
    trainer.cfg.lpips_weight = 0.1
    terms = trainer.generator_terms(grey_fill, real, mask)
    assert terms["masked_lpips"][1].item() == pytest.approx(fill, rel=1e-5)
    assert terms["lpips"][1].item() == pytest.approx(trainer.lpips(grey_fill, real).item(), rel=1e-5) and terms["lpips"][1].item() > 0


def test_no_loss_term_dominates_on_a_batch_with_a_large_hole(tmp_path):
    # every term of G's loss on faces half covered by a hole: each term's gradient on G's output
    # is finite and within a small factor of the L1's. The hole term is normalised by the hole's
    # area, so a large hole cannot swamp the rest (x2 weight: 3.8x the L1's here). The identity
    # term's gradient is large per unit of weight (on the trained detail model 120x the L1's at
    # weight 1): at 0.01 it is level with L1, at 0.1 (runs/detail2) it leads.
    trainer = Trainer(tiny(tmp_path, size=128, gan=True, mask_l1_weight=2.0, identity_weight=0.01, perceptual_weight=0.1, lpips_weight=0.2, mask_lpips_weight=0.2))
    _, _, hq = trainer.sample_batch()
    mask = torch.zeros(len(hq), 1, 128, 128)
    mask[..., 20:100, 10:118] = 1  # about half of each face
    lq = hq * (1 - mask)
    fake = trainer.g(lq * 2 - 1, mask).detach().requires_grad_(True)
    terms = trainer.generator_terms(fake, hq * 2 - 1, mask)
    assert set(terms) == {"l1", "masked_l1", "adv", "fm", "perceptual", "lpips", "masked_lpips", "identity"}
    norms = {}
    for name, (weight, value) in terms.items():
        (grad,) = torch.autograd.grad(weight * value, fake, retain_graph=True)
        assert torch.isfinite(grad).all(), name
        norms[name] = grad.norm().item()
    assert all(0 < n < 5 * norms["l1"] for n in norms.values()), norms


def test_patch_trains_on_windows_of_the_degraded_faces(tmp_path):
    # --patch: the damage is drawn on the whole `size` face (as it would be in a photo of a face that
    # size), then the same window is cut from the clean and the damaged face
    trainer = Trainer(tiny(tmp_path, gan=False, patch=32, mixed_weight=0, lighting_weight=0, occlusion_weight=0, downscale_weight=0))
    lq, mask, hq = trainer.sample_batch()
    assert lq.shape == hq.shape == (4, 3, 32, 32) and mask.shape == (4, 1, 32, 32)
    faces = trainer.data.batch(torch.arange(len(trainer.data)))
    faces = torch.cat([faces, faces.flip(-1)])
    windows = faces.unfold(2, 32, 1).unfold(3, 32, 1)  # every 32 px window of every face (and its mirror)
    for clean in hq:  # each clean window is a real window of a training face
        assert (windows - clean[None, :, None, None]).abs().amax(dim=(1, 4, 5)).min() < 1e-6
    stats = trainer.train_step(lq, mask, hq)
    assert stats["l1"] > 0 and math.isfinite(stats["g_loss"])


def test_patch_refuses_what_judges_whole_faces(tmp_path):
    with pytest.raises(ValueError, match="--patch needs"):
        Trainer(tiny(tmp_path, patch=32))  # gan defaults to true
    with pytest.raises(ValueError, match="--patch must be"):
        Trainer(tiny(tmp_path, gan=False, patch=40))


def test_cpu_has_bf16_reads_the_cpus_flags():
    from gan_face.cpu import cpu_has_bf16

    assert cpu_has_bf16("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16("flags\t\t: fpu avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_bf16("flags\t\t: fpu avx512f avx512bw avx512_vnni\n")  # AVX-512 alone emulates bf16
