"""What a training run writes as it goes, beside its checkpoint: `log.csv` (a row per logged
step), `loss_curve.png` and the sample grids `samples_*.png` (degraded / restored / clean)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from gan_face import degradations

# per-degradation validation: one column per kind the generator trains on, and clean faces
VAL_KINDS = {f"val_{kind.replace(' ', '_')}": kind for kind in degradations.TRAINING_KINDS} | {"val_clean": None}
CSV_FIELDS = (
    ("step", "seconds", "lr", "d_loss", "g_loss", "l1", "masked_l1", "adv", "fm", "perceptual", "gp", "d_real", "d_fake", "d_noise", "img_per_s")
    + ("val_psnr", "val_psnr_input", *VAL_KINDS)
    + ("identity", "lpips", "masked_lpips")  # last: a resumed older log keeps its columns in place
)


class RunLog:
    """The log, loss curve and sample grids of the run in `out` (written by the main process)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / "log.csv"

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, step: int) -> None:
        """Drop the rows written after `step` (the checkpoint a run resumes from)."""
        rows = [r for r in self.read() if int(r["step"]) <= step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS)
            writer.writeheader()
            writer.writerows(rows)

    def append(self, row: dict) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def write_samples(self, grid: torch.Tensor, step: int) -> None:
        from torchvision.utils import save_image

        save_image(grid, self.out / f"samples_{step:07d}.png", nrow=len(grid) // 3, padding=2)

    def write_loss_curve(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read()
        if not rows:
            return
        steps = [int(r["step"]) for r in rows]
        fig, axes = plt.subplots(1, 4, figsize=(20, 4))
        for name in ("d_loss", "adv", "fm"):
            axes[0].plot(steps, [float(r[name]) for r in rows], label=name)
        for name in ("l1", "masked_l1"):
            axes[1].plot(steps, [float(r[name]) for r in rows], label=name)
        val = [(int(r["step"]), float(r["val_psnr"]), float(r["val_psnr_input"])) for r in rows if r["val_psnr"]]
        if val:
            axes[2].plot([v[0] for v in val], [v[1] for v in val], label="restored (EMA G)")
            axes[2].plot([v[0] for v in val], [v[2] for v in val], label="degraded input")
        for column in VAL_KINDS:
            kind = [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]
            if kind:
                axes[3].plot([v[0] for v in kind], [v[1] for v in kind], label=column.removeprefix("val_"))
        for ax, title in zip(axes, ("adversarial", "reconstruction", "validation PSNR (dB)", "validation PSNR per kind (dB)")):
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.legend()
        fig.tight_layout()
        fig.savefig(self.out / "loss_curve.png", dpi=80)
        plt.close(fig)
