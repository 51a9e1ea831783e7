"""The gencli entry point of this distribution: what it adds, described without importing torch."""

from gencli import ModelSpec, hookimpl

# The plugin API versions this module speaks; gencli refuses to load it when its own differs.
GENCLI_API = 2


@hookimpl
def gencli_register_models():
    return [
        ModelSpec(
            "ae",
            "deterministic convolutional autoencoder; samples from a Gaussian fitted to its codes",
            "gencli_autoencoder.model:Autoencoder",
            "images",
        )
    ]
