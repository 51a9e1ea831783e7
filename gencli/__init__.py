"""gencli: train and use generative image models from the command line."""

__version__ = "0.1.0"

# The plugin API version this core speaks. A plugin declares the versions it supports with a
# module-level ``GENCLI_API = 1`` (or a tuple of versions); the core refuses one that does not
# list this version, with a line saying which side to upgrade.
API_VERSION = 1


def load_run(path, device: str = "cpu"):
    """Return the trained model of a run directory, checkpoint or model name, ready to use."""
    from gencli.training.runs import load_trained

    return load_trained(str(path), device=device)


__all__ = ["__version__", "API_VERSION", "load_run"]
