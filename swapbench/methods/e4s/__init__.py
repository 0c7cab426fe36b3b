"""E4S (CVPR 2023): regional GAN inversion face swapping."""
