"""Training survives kills, refuses NaNs and reports a full disk, with the last good checkpoint intact."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from train import checkpoint
from train.trainer import Trainer, fit

from .test_train import read_log, tiny

REPO = Path(__file__).resolve().parents[1]


def cli_args(cfg) -> list[str]:
    args = []
    for key, value in vars(cfg).items():
        if isinstance(value, list):
            args += [f"--{key}", *map(str, value)]
        elif value != "":
            args += [f"--{key}", str(value)]
    return args


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    steps = 12
    cfg = tiny(tmp_path, steps=steps, checkpoint_every=3, sample_every=100)
    proc = subprocess.Popen([sys.executable, "-m", "train", *cli_args(cfg)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = Path(cfg.out) / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and checkpoint.load(ckpt)["step"] >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    killed_at = checkpoint.load(ckpt)["step"]
    assert 3 <= killed_at < steps, "the run finished before it could be killed"

    resumed = Trainer(tiny(tmp_path, steps=steps, checkpoint_every=3, sample_every=100, resume="latest"))
    assert resumed.step == killed_at
    resumed.run()

    straight = tiny(tmp_path, steps=steps, checkpoint_every=3, sample_every=100, out=str(tmp_path / "straight"))
    fit(straight)
    a, b = checkpoint.load(ckpt), checkpoint.load(Path(straight.out) / "checkpoint.pt")
    assert a["step"] == b["step"] == steps
    for key in a["g"]:
        assert torch.equal(a["g"][key], b["g"][key]), key
    for sa, sb in zip(a["opt_g"]["state"].values(), b["opt_g"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    # the loss right after the resume point is the uninterrupted run's loss
    after = lambda rows: next(r for r in rows if int(r["step"]) == killed_at + 1)  # noqa: E731
    assert after(read_log(cfg.out))["g_loss"] == after(read_log(straight.out))["g_loss"]
    assert [r["step"] for r in read_log(cfg.out)] == [str(s) for s in range(1, steps + 1)]  # no duplicated rows


def test_kill_during_a_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save({"step": 1, "weights": torch.ones(3)}, path)
    script = f"""
import os, signal, torch
from train import checkpoint
def dying_save(obj, f):
    with open(f, "wb") as out:
        out.write(b"PK\\x03\\x04 half a zip file")
        out.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = dying_save
checkpoint.save({{"step": 2}}, {str(path)!r})
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO)
    assert result.returncode == -signal.SIGKILL
    state = torch.load(path, weights_only=True)  # the latest checkpoint is still the good one
    assert state["step"] == 1 and torch.equal(state["weights"], torch.ones(3))


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    fit(tiny(tmp_path, steps=2, checkpoint_every=2))
    trainer = Trainer(tiny(tmp_path, steps=4, checkpoint_every=1, resume="latest"))
    lq, mask, hq = trainer.sample_batch()
    trainer.sample_batch = lambda: (lq * float("nan"), mask, hq)
    with pytest.raises(FloatingPointError, match="loss is nan at step 3; stopping. The last good checkpoint is"):
        trainer.run()
    assert checkpoint.load(Path(trainer.cfg.out) / "checkpoint.pt")["step"] == 2


def test_disk_full_is_reported_and_the_old_checkpoint_kept(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save({"step": 1}, path)

    def full(obj, f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError, match="No space left on device.*is the disk full\\? The previous checkpoint is intact"):
        checkpoint.save({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary files left
