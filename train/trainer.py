"""The GAN training loop (HF accelerate: the CPU here, DDP on many GPUs unchanged).

One step, with batch = micro x K:
  1. sample `batch` clean aligned faces, degrade them (seeded) -> lq, mask, hq
  2. G forward on each micro-batch (graphs kept for phase 4)
  3. D phase: D(hq) vs D(G(lq).detach()), loss / K per micro-batch, + lazy gradient penalty; step D
  4. G phase, D frozen: L1 + masked L1 + adversarial + feature matching, loss / K; step G
  5. EMA of G, learning-rate schedules, D noise annealing
  6. log (CSV + progress bar), samples + loss curve (train/runlog.py), atomic checkpoint
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from gan_face import degradations
from gan_face.cpu import cpu_has_bf16
from gan_face.dataset import AlignedFaces
from gan_face.imageops import signed_to_unit, unit_to_signed
from gan_face.metrics import psnr
from train import checkpoint, losses
from train.config import TrainConfig
from train.export import export_generator
from train.models import build_discriminator, build_generator, ema_model
from train.runlog import VAL_KINDS, RunLog

log = logging.getLogger(__name__)


def training_inputs(cfg: TrainConfig, hq: torch.Tensor, generator: torch.Generator, kind: str | None = "any"):
    """Clean (B,3,H,W) in [0,1] -> (lq, mask) as the model of `cfg` is trained on; `kind`:
    one of degradations.TRAINING_KINDS only, or None for clean inputs (validation curves)."""
    if cfg.model == "deblur":
        return degradations.motion_blur(hq, generator, tuple(cfg.motion_length)), None
    if kind == "any":
        weights = cfg.kind_weights
        weights = None if set(weights) == {1.0} else weights  # None: uniform, the draws of runs before the weight flags
        always = ("occlusion",) if cfg.occlude_always else ()
        lq, mask = degradations.random_degradation(
            hq, generator, weights=weights, p_clean=cfg.clean_fraction, motion_length=cfg.motion_length, always=always
        )
    elif kind is None:
        lq, mask = hq.clone(), hq.new_zeros(hq.shape[0], 1, *hq.shape[-2:])
    else:
        one = [float(k == kind) for k in degradations.TRAINING_KINDS]
        lq, mask = degradations.random_degradation(hq, generator, p_second=0, weights=one, motion_length=cfg.motion_length)
    if cfg.g_out_scale == 2:  # the generator also upsamples: feed it a half-size input
        lq = F.interpolate(lq, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
        mask = F.interpolate(mask, scale_factor=0.5, mode="nearest")
    return lq, mask


def random_windows(size: int, generator: torch.Generator, *images: torch.Tensor | None) -> list[torch.Tensor | None]:
    """The same random size x size window of each image of every (B,C,H,W) batch in `images`."""
    b, _, h, w = next(i for i in images if i is not None).shape
    top = torch.randint(h - size + 1, (b,), generator=generator).tolist()
    left = torch.randint(w - size + 1, (b,), generator=generator).tolist()
    return [None if x is None else torch.stack([x[i, :, t : t + size, l : l + size] for i, (t, l) in enumerate(zip(top, left))]) for x in images]


def model_forward(cfg: TrainConfig, g, lq: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return g(lq) if cfg.model == "deblur" else g(lq, mask)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        cfg.validate()
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.runlog = RunLog(self.out)  # log.csv, loss_curve.png, samples_*.png
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        # cpu=True where there is no GPU: accelerate then joins torchrun's processes over gloo
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        # every process draws the same global batch and trains on its share (see sample_batch);
        # all take the same seed, so models start equal and D's noise stays in step
        self.rank, self.world = self.accelerator.process_index, self.accelerator.num_processes
        if cfg.batch % (self.world * cfg.micro):
            raise ValueError(f"--batch {cfg.batch} must be a multiple of --micro {cfg.micro} x {self.world} processes")
        self.main = self.accelerator.is_main_process
        torch.manual_seed(cfg.seed)

        hq_size = cfg.size * (2 if cfg.model == "generator" and cfg.g_out_scale == 2 else 1)
        self.data = AlignedFaces(cfg.data, hq_size, cfg.cache_dir or None, cfg.limit, aligned=cfg.data_aligned)
        order = torch.randperm(len(self.data), generator=torch.Generator().manual_seed(cfg.seed))
        n_val = min(cfg.val_count, len(self.data) // 4)
        self.val_idx, self.train_idx = order[:n_val], order[n_val:]

        self.g, self.d = build_generator(cfg), build_discriminator(cfg)
        self.perceptual = losses.PerceptualLoss().to(self.accelerator.device) if cfg.perceptual_weight > 0 else None
        self.lpips = losses.LPIPSLoss().to(self.accelerator.device) if cfg.lpips_weight > 0 or cfg.mask_lpips_weight > 0 else None
        self.identity = losses.IdentityLoss().to(self.accelerator.device) if cfg.identity_weight > 0 else None
        self.init = self.init_weights(Path(cfg.init_from)) if cfg.init_from and not cfg.resume else None
        betas = (cfg.beta1, cfg.beta2)
        # fused: one kernel for all parameters, 3.5x faster than foreach on this CPU (5.1 -> 1.5 ms a step for G)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr_g, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr_d, betas=betas, fused=True)
        self.sched_g = get_scheduler(cfg.lr_schedule, self.opt_g, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps)
        self.sched_d = get_scheduler(cfg.lr_schedule, self.opt_d, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.steps)
        if cfg.bf16 and self.accelerator.device.type == "cpu" and not cpu_has_bf16():
            log.warning("--bf16 true on a CPU without AVX-512 BF16 or AMX: oneDNN emulates bf16, slower than float32 here (bench/train_speed.py compares them)")
        if cfg.bf16:  # channels-last: the layout oneDNN's bf16 convolutions are fastest in
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
        self.ema = EMAModel(self.g.parameters(), decay=cfg.ema_decay, foreach=True)  # 2x faster than one tensor at a time
        # no DDP wrapper: gradients are averaged over processes once per optimiser step
        # (sync_gradients), which gradient accumulation and the lazy R1 penalty need anyway
        self.device = self.accelerator.device
        self.g.to(self.device)
        self.d.to(self.device)
        self.ema.to(self.device)

        # every random draw of the data pipeline comes from these, saved in checkpoints
        self.data_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.degrade_rng = torch.Generator().manual_seed(cfg.seed + 2)
        self.step, self.wall = 0, 0.0
        if cfg.resume:
            self.load(self.out / "checkpoint.pt" if cfg.resume == "latest" else Path(cfg.resume))

        # fixed validation batch: same faces, same damage, every time (and across resumes)
        val_hq = self.data.batch(self.val_idx[:8]).to(self.device)
        val_lq, val_mask = training_inputs(cfg, val_hq, torch.Generator().manual_seed(1234))
        self.val = (val_lq, val_mask, val_hq)
        self.val_kinds = {}  # column -> (lq, mask, hq): 8 faces with only that damage
        if cfg.model == "generator":
            for i, (column, kind) in enumerate(VAL_KINDS.items()):
                self.val_kinds[column] = (*training_inputs(cfg, val_hq, torch.Generator().manual_seed(4321 + i), kind), val_hq)

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {
            "step": self.step,
            "wall": self.wall,
            "config": dataclasses.asdict(self.cfg),
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "init": self.init,
            "hardware": checkpoint.hardware(),  # the card's, also when exported on another machine
            "rng": {"data": self.data_rng.get_state(), "degrade": self.degrade_rng.get_state()},  # the global ones: train_step
        }

    def load(self, path: Path) -> None:
        state = checkpoint.load(path)
        checkpoint.check_compatible(checkpoint.config_of(state), dataclasses.asdict(self.cfg), path)
        try:
            self.g.load_state_dict(state["g"])
            self.d.load_state_dict(state["d"])
        except RuntimeError as e:
            raise ValueError(f"checkpoint {path} does not fit these models: {e}") from e
        self.ema.load_state_dict(state["ema"])
        self.ema.to(self.device)  # checkpoints load onto the CPU
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        self.data_rng.set_state(state["rng"]["data"])
        self.degrade_rng.set_state(state["rng"]["degrade"])
        self.step, self.wall, self.init = state["step"], state.get("wall", 0.0), state.get("init")
        if self.main:
            self.runlog.truncate(self.step)
        log.info("resumed from %s at step %d", path, self.step)

    def init_weights(self, path: Path) -> dict:
        """Fine-tuning start: G and D weights of another run's checkpoint, or G alone from an
        exported Hub folder (`pretrained/gan-face-generator`: D then starts fresh). G may have
        layers that run lacked (they keep their identity init); anything else that does not
        fit is an error. Optimisers, schedule and EMA start fresh."""
        if path.is_dir():
            state = checkpoint.from_exported(path, self.g)  # loads into self.g
            log.info("initialised G from the exported folder %s (%d steps before; new layers: %s); D starts fresh", path, state["step"], state["missing"] or "none")
            before = state["init"]
            return {"from": str(path), "step": before["step"], "wall": before["wall"]}
        state = checkpoint.load(path)
        try:
            missing, unexpected = self.g.load_state_dict(state["g"], strict=False)
            self.d.load_state_dict(state["d"])
        except RuntimeError as e:
            raise ValueError(f"--init_from {path} does not fit these models: {e}") from e
        if unexpected:
            raise ValueError(f"--init_from {path} has generator weights this model lacks: {unexpected}")
        log.info("initialised from %s (step %d); new generator layers: %s", path, state["step"], missing or "none")
        before = state.get("init") or {"step": 0, "wall": 0.0}  # that run may itself be a fine-tune
        return {"from": str(path), "step": state["step"] + before["step"], "wall": state.get("wall", 0.0) + before["wall"]}

    def save(self) -> None:
        if self.main:
            checkpoint.save(self.state(), self.out / "checkpoint.pt")

    # ------------------------------------------------------------------- step
    def sample_batch(self):
        cfg = self.cfg
        pick = torch.randint(len(self.train_idx), (cfg.batch,), generator=self.data_rng)
        flip = torch.rand(cfg.batch, generator=self.data_rng) < 0.5
        # degraded where the model trains: the blur convolutions and the JPEG codec are most of the
        # data's cost on a CPU (a 256 px motion blur: 3.4 s per 64 faces on one core); the random
        # draws stay on the CPU generators, so a GPU sees the same batches
        hq = self.data.batch(self.train_idx[pick], flip).to(self.device, non_blocking=True)
        if cfg.misalign:  # no draw otherwise: runs without it keep their random stream
            hq = degradations.misalign(hq, self.data_rng, cfg.misalign)
        lq, mask = training_inputs(cfg, hq, self.degrade_rng)
        if cfg.patch:  # damage drawn at the face's size, then one window of it per image
            lq, mask, hq = random_windows(cfg.patch, self.data_rng, lq, mask, hq)
        # the same global batch on every process (same random streams), each trains on its share:
        # N processes see exactly the images one process would
        share = slice(self.rank * cfg.batch // self.world, (self.rank + 1) * cfg.batch // self.world)
        return lq[share], None if mask is None else mask[share], hq[share]

    def train_step(self, lq: torch.Tensor, mask: torch.Tensor | None, hq: torch.Tensor) -> dict:
        cfg, K = self.cfg, len(hq) // self.cfg.micro
        # torch's global generators (the CPU's and every GPU's: D's noise injection draws from
        # them) restart each step from (seed, step), the same on every process: a resumed run
        # draws what an uninterrupted one would, on any device, with no device state to save
        torch.manual_seed(int(np.random.SeedSequence([cfg.seed, self.step]).generate_state(1)[0]))
        d = self.d
        d.noise_std = cfg.d_noise * max(0.0, 1.0 - self.step / max(cfg.d_noise_anneal, 1))
        lq, hq = unit_to_signed(lq), unit_to_signed(hq)
        micro = lambda t, k: None if t is None else t[k * cfg.micro : (k + 1) * cfg.micro]  # noqa: E731
        stats = dict.fromkeys(("d_loss", "g_loss", "l1", "masked_l1", "adv", "fm", "perceptual", "lpips", "masked_lpips", "identity", "gp", "d_real", "d_fake"), 0.0)
        gp_step = cfg.gp != "none" and self.step % cfg.gp_every == 0

        # 2. generator forward, kept for the G phase
        self.g.train()
        self.d.train()
        with self.autocast():
            fakes = [model_forward(cfg, self.g, micro(lq, k), micro(mask, k)).float() for k in range(K)]

        # 3. D phase on detached fakes (skipped in the PSNR phase)
        self.d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        for k in range(K if cfg.gan else 0):
            real = micro(hq, k)
            with self.autocast():
                real_logits, fake_logits = self.d(real), self.d(fakes[k].detach())
                loss = losses.d_adversarial(real_logits, fake_logits)
                if gp_step:
                    if cfg.gp == "r1":
                        gp = losses.r1_penalty(self.d, real)
                    else:
                        gp = losses.wgan_gp_penalty(self.d, real, fakes[k])
                    loss = loss + cfg.gp_weight * cfg.gp_every * gp
                    stats["gp"] += gp.item() / K
                self.check_finite(loss, "discriminator")
                self.accelerator.backward(loss / K)
            stats["d_loss"] += loss.item() / K
            stats["d_real"] += real_logits.mean().item() / K
            stats["d_fake"] += fake_logits.mean().item() / K
        if cfg.gan:
            self.sync_gradients(self.d)
            self.opt_d.step()

        # 4. G phase with D frozen
        self.d.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        for k in range(K):
            terms = self.generator_terms(fakes[k], micro(hq, k), micro(mask, k))
            loss = sum(weight * value for weight, value in terms.values())
            self.check_finite(loss, "generator")
            self.accelerator.backward(loss / K)
            stats["g_loss"] += loss.item() / K
            for name, (_, value) in terms.items():
                stats[name] += value.item() / K
        self.sync_gradients(self.g)
        self.opt_g.step()
        self.d.requires_grad_(True)

        # 5. EMA, schedules
        self.ema.step(self.g.parameters())
        self.sched_g.step()
        if cfg.gan:  # the PSNR phase never steps D's optimiser, so its schedule stays put too
            self.sched_d.step()
        self.step += 1
        stats["lr"] = self.sched_g.get_last_lr()[0]
        stats["d_noise"] = d.noise_std
        return stats

    def generator_terms(self, fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None) -> dict[str, tuple[float, torch.Tensor]]:
        """G's loss terms on one micro-batch (in [-1,1]): name -> (weight, value); the loss is
        their weighted sum. Terms that do not apply are left out: the hole terms without a mask,
        D's terms in the PSNR phase, the perceptual, LPIPS and identity terms when their weight is 0."""
        cfg = self.cfg
        terms = {"l1": (cfg.l1_weight, F.l1_loss(fake, real))}
        hole = mask is not None and cfg.g_out_scale == 1  # the hole terms (the mask is the input's size)
        if hole:
            terms["masked_l1"] = (cfg.mask_l1_weight, losses.masked_l1(fake, real, mask))
        # the LPIPS terms, name -> (weight, the mask it is taken in; None: the whole face): AlexNet runs once for all
        lpips_terms = {}
        if hole and cfg.mask_lpips_weight > 0:
            lpips_terms["masked_lpips"] = (cfg.mask_lpips_weight, mask)
        if cfg.lpips_weight > 0:
            lpips_terms["lpips"] = (cfg.lpips_weight, None)
        if lpips_terms:
            with self.autocast():  # 79 -> 117 ms for 16 faces without it
                values = self.lpips.several(fake, real, [m for _, m in lpips_terms.values()])
            terms.update({name: (weight, v) for (name, (weight, _)), v in zip(lpips_terms.items(), values)})
        if cfg.gan:
            with self.autocast():
                fake_logits, fake_feats = self.d(fake, return_features=True)
                with torch.no_grad():
                    _, real_feats = self.d(real, return_features=True)
            terms["adv"] = (cfg.adv_weight, losses.g_adversarial(fake_logits.float()))
            terms["fm"] = (cfg.fm_weight, losses.feature_matching([f.float() for f in fake_feats], [f.float() for f in real_feats]))
        if self.perceptual is not None:
            terms["perceptual"] = (cfg.perceptual_weight, self.perceptual(fake, real))
        if self.identity is not None:
            terms["identity"] = (cfg.identity_weight, self.identity(fake, real))
        return terms

    def autocast(self):
        return torch.autocast(self.accelerator.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16)

    def sync_gradients(self, model) -> None:
        """Average the accumulated gradients over processes: one all-reduce per optimiser step."""
        if self.world == 1:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = self.accelerator.reduce(torch.cat([g.flatten() for g in grads]), reduction="mean")
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def check_finite(self, loss: torch.Tensor, which: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{which} loss is {loss.item()} at step {self.step + 1}; stopping. The last good checkpoint is "
                f"{self.out / 'checkpoint.pt'} (lower the learning rates or check the data before resuming)"
            )

    # ----------------------------------------------------------- evaluation
    def ema_generator(self):
        return ema_model(self.state())

    @torch.no_grad()
    def validate(self) -> tuple[dict, torch.Tensor]:
        """PSNR of the EMA generator on the mixed validation batch (and its input), and per
        degradation kind; the sample grid (degraded / restored / clean)."""
        g = self.ema_generator().to(self.device)

        def run(lq, mask, hq):
            restored = signed_to_unit(model_forward(self.cfg, g, unit_to_signed(lq), mask)).clamp(0, 1)
            return restored, F.interpolate(lq, size=hq.shape[-2:], mode="bilinear", align_corners=False)

        lq, mask, hq = self.val
        restored, shown_lq = run(lq, mask, hq)
        scores = {"val_psnr": psnr(restored, hq).mean().item(), "val_psnr_input": psnr(shown_lq, hq).mean().item()}
        for column, (k_lq, k_mask, k_hq) in self.val_kinds.items():
            scores[column] = psnr(run(k_lq, k_mask, k_hq)[0], k_hq).mean().item()
        return scores, torch.cat([shown_lq, restored, hq]).cpu()

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        cfg = self.cfg
        stats: dict = {}
        bar = tqdm(total=cfg.steps, initial=self.step, desc=f"train {cfg.model}", unit="step", dynamic_ncols=True, disable=not self.main)
        while self.step < cfg.steps:
            t0 = time.perf_counter()
            stats = self.train_step(*self.sample_batch())
            dt = time.perf_counter() - t0
            self.wall += dt
            stats.update(step=self.step, seconds=round(self.wall, 2), img_per_s=cfg.batch / dt, val_psnr="")
            bar.update(1)
            bar.set_postfix(d=f"{stats['d_loss']:.3f}", g=f"{stats['g_loss']:.3f}", l1=f"{stats['l1']:.4f}", ips=f"{stats['img_per_s']:.1f}")
            # logs, samples and plots: the main process only (its own share's losses)
            if self.main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                scores, grid = self.validate()
                stats.update(scores)
                self.runlog.write_samples(grid, self.step)
            if self.main and (self.step % cfg.log_every == 0 or stats["val_psnr"] != "" or self.step == cfg.steps):
                self.runlog.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in stats.items()})
            if self.main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                self.runlog.write_loss_curve()
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
        bar.close()
        if cfg.export and self.main:
            self.export_to(Path(cfg.export))
        if cfg.push_to_hub and self.main:
            self.ema_generator().push_to_hub(cfg.push_to_hub)
        return stats

    def export_to(self, directory: Path) -> None:
        """The EMA generator as a Hub folder: model.safetensors + config.json + README.md."""
        export_generator(self.state(), directory)
        log.info("exported the EMA generator to %s", directory)


def fit(cfg: TrainConfig) -> dict:
    trainer = Trainer(cfg)
    stats = trainer.run()
    # under torchrun: every process waits for the main one (its last checkpoint, export, push),
    # then the process group is closed; a process that exits with gloo's threads still running
    # can abort on the way out ("terminate called without an active exception")
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()
    return stats
