"""gencli's variational autoencoder family, packaged as an ordinary gencli plugin."""
