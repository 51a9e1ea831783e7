"""gencli's diffusion family (DDPM with DDIM sampling and guidance), packaged as an ordinary gencli plugin."""
