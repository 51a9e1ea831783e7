"""The core's own plugin: built-in datasets, metrics and loggers, registered like any other plugin's."""

from gencli.hookspecs import hookimpl
from gencli.registry import DatasetSpec

GENCLI_API = 2

_SHAPES_INFO = {
    "source": "generated on the fly by gencli (offline, deterministic by seed)",
    "storage": "generated",
    "licence": "MIT (part of gencli)",
    "images": "10,000 train / 1,000 test",
    "resolution": "any (drawn at the requested size)",
}


@hookimpl
def gencli_register_metrics():
    from gencli.metrics.catalog import METRICS

    return list(METRICS)


@hookimpl
def gencli_register_datasets():
    from gencli.data.catalog import DATASETS

    return _CORE_DATASETS + list(DATASETS)


# A set whose four IDX files may already be on this machine: ``gencli.data.local`` looks for them
# before downloading. ``apt_package`` names the Debian package that installs them, where one exists.
_IDX_FILES = {
    "local_format": "idx",
    "layout": "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
              "t10k-labels-idx1-ubyte.gz (gzipped or not)",
}

_CORE_DATASETS = [
        DatasetSpec("shapes", "six coloured shape classes on dark backgrounds (offline)",
                    "gencli.data.synthetic:build_shapes", "labelled",
                    {**_SHAPES_INFO, "classes": ["circle", "square", "triangle", "diamond", "ring", "cross"]}),
        DatasetSpec("shapes-paired", "filled shape (A) -> its outline (B), aligned pairs (offline)",
                    "gencli.data.synthetic:build_shapes_paired", "paired", dict(_SHAPES_INFO)),
        DatasetSpec("shapes-unpaired", "shapes on light backgrounds (A) vs dark backgrounds (B) (offline)",
                    "gencli.data.synthetic:build_shapes_unpaired", "unpaired", dict(_SHAPES_INFO)),
        DatasetSpec("mnist", "handwritten digits, 28 px grey, 60k/10k (local IDX files, else torchvision download)",
                    "gencli.data.torchvision_sets:build_mnist", "labelled",
                    {"source": "http://yann.lecun.com/exdb/mnist/ via torchvision", "images": "60,000 train / 10,000 test",
                     "resolution": "28x28, 1 channel", "licence": "CC BY-SA 3.0",
                     "citation": "LeCun et al. 1998, Gradient-based learning applied to document recognition",
                     "classes": [f"{d} - {w}" for d, w in enumerate(
                         "zero one two three four five six seven eight nine".split())],
                     **_IDX_FILES}),
        DatasetSpec("fashion-mnist", "Zalando clothing, 28 px grey, 60k/10k (local IDX files, else torchvision download)",
                    "gencli.data.torchvision_sets:build_fashion_mnist", "labelled",
                    {"source": "https://github.com/zalandoresearch/fashion-mnist via torchvision",
                     "images": "60,000 train / 10,000 test", "resolution": "28x28, 1 channel", "licence": "MIT",
                     "citation": "Xiao et al. 2017, Fashion-MNIST",
                     "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                 "Sneaker", "Bag", "Ankle boot"],
                     **_IDX_FILES, "apt_package": "dataset-fashion-mnist"}),
        DatasetSpec("cifar10", "ten object classes, 32 px colour, 50k/10k (torchvision download)",
                    "gencli.data.torchvision_sets:build_cifar10", "labelled",
                    {"source": "https://www.cs.toronto.edu/~kriz/cifar.html via torchvision",
                     "images": "50,000 train / 10,000 test", "resolution": "32x32, 3 channels",
                     "citation": "Krizhevsky 2009, Learning multiple layers of features from tiny images"}),
]


@hookimpl
def gencli_register_loggers():
    from gencli.registry import LoggerSpec

    return [
        LoggerSpec("tensorboard", "losses, quality, sample grids, eval metrics and HParams in RUN/tensorboard",
                   "gencli.training.tensorboard:TensorBoardRun", requires=("tensorboard",),
                   install="pip install 'gencli[tensorboard]'"),
        LoggerSpec("mlflow", "MLflow run (local file store RUN/mlflow, or MLFLOW_TRACKING_URI)",
                   "gencli.loggers.mlflow:MlflowLogger", requires=("mlflow",), install="pip install 'gencli[mlflow]'"),
        LoggerSpec("wandb", "Weights & Biases run, offline in RUN/wandb unless WANDB_MODE says otherwise",
                   "gencli.loggers.wandb:WandbLogger", requires=("wandb",), install="pip install 'gencli[wandb]'"),
    ]
