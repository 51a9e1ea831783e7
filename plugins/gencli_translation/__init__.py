"""gencli's image-to-image translation family (CycleGAN, pix2pix), packaged as an ordinary gencli plugin."""
