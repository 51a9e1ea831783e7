"""gencli's StyleGAN family, packaged as an ordinary gencli plugin."""
