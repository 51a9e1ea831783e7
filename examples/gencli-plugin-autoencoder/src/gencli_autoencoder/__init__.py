"""gencli-plugin-autoencoder: a deterministic convolutional autoencoder for gencli."""

__version__ = "0.1.0"
