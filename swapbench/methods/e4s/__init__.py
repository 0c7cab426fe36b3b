"""E4S (Fine-grained Face Swapping via Regional GAN Inversion, CVPR 2023)."""
