"""gencli's GAN family (MLP GAN, DCGAN, WGAN, WGAN-GP, SS-GAN, conditional GAN), packaged as an ordinary gencli plugin."""
