"""Model-card templates that `PyTorchModelHubMixin.save_pretrained` fills in.

The mixin formats them with jinja: `{{ card_data }}` becomes the YAML front matter
(library name, licence, tags, pipeline tag). Training runs append their own measured
sections (command, data, steps, wall time, evaluation) after the template.
"""

GENERATOR_CARD = """---
{{ card_data }}
---

# gan-face generator

A U-Net with skip connections and residual blocks that reconstructs an aligned face
(motion blur, occlusions, uneven lighting, low resolution). It predicts a per-pixel gain
that relights the input and a residual added to it. Input: a face aligned to the FFHQ
5-point template, RGB in [-1, 1], plus an optional occlusion mask (1 = unknown pixel).

## Usage

```python
from gan_face import UNetGenerator

generator = UNetGenerator.from_pretrained("path/or/repo-id")  # eval mode
restored = generator(face, mask)  # (B,3,H,W) in [-1,1], mask (B,1,H,W) or None
```

For whole photos (detection, alignment, deblurring, upscaling, paste-back) use
`gan_face.FaceRestorer`.

## Limits

Weights trained on CelebA are for non-commercial research only (the CelebA terms).
A GAN invents plausible detail where the input has none: do not use the output
as evidence of what a person looks like.
"""

DISCRIMINATOR_CARD = """---
{{ card_data }}
---

# gan-face discriminator

PatchGAN discriminator used to train the gan-face generator (batch and/or instance
normalisation, noise injection). Published so that training can be continued.

```python
from gan_face import PatchDiscriminator

discriminator = PatchDiscriminator.from_pretrained("path/or/repo-id")
```
"""

DEBLUR_CARD = """---
{{ card_data }}
---

# gan-face DeblurGAN-v2 generator

FPN generator with a MobileNetV2 backbone and a global residual (DeblurGAN-v2,
Kupyn et al., ICCV 2019), for motion-blurred aligned faces.

```python
from gan_face import DeblurGenerator

deblur = DeblurGenerator.from_pretrained("path/or/repo-id")
sharp = deblur(blurred)  # (B,3,H,W) in [-1,1]
```
"""
