"""GAN training for gan-face: `python -m train --help`."""
