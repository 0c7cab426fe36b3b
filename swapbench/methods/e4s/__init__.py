"""E4S (CVPR 2023): fine-grained face swapping via regional GAN inversion."""
