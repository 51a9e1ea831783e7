"""The dataset zoo's registrations (no torch import): every downloadable dataset and its card.

Card keys (all optional, shown by ``gencli datasets --info NAME``): ``source``, ``licence``,
``citation``, ``classes``, ``images`` (counts per split, in words), ``count`` (all images, a
number), ``resolution`` (native, in words), ``native`` (short, e.g. "256x256"),
``download_size``, ``url``, ``fetch_by_hand`` (what to do on an offline machine; paths are
relative to ``GENCLI_DATA_DIR``), ``layout``, ``splits``, ``domains`` (A and B of translation
sets), ``notes``.
"""

from gencli.data.archives import ARCHIVES, target
from gencli.data.zoo import ZOO_ARCHIVES, CelebA
from gencli.registry import DatasetSpec

_celeba = CelebA()

_TORCHVISION = [
    DatasetSpec("celeba", "celebrity faces, aligned and cropped, 202k colour photos (torchvision download)",
                "gencli.data.zoo:celeba", "images",
                {"source": "CUHK MMLab, https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html via torchvision "
                           "(files on Google Drive)",
                 "licence": "non-commercial research and educational use only (CelebA agreement)",
                 "citation": "Liu, Luo, Wang, Tang 2015, Deep Learning Face Attributes in the Wild (ICCV)",
                 "images": "162,770 train / 19,962 test (19,867 validation unused)", "count": 202_599,
                 "resolution": "178x218 JPEG; centre 148x148 crop resized to the requested size", "native": "178x218",
                 "download_size": "about 1.4 GB",
                 "fetch_by_hand": _celeba.by_hand,
                 "notes": "Google Drive often refuses automated downloads for a while; the by-hand route always works"}),
    DatasetSpec("svhn", "Street View house-number digits, 32 px colour, 73k/26k (torchvision download)",
                "gencli.data.torchvision_sets:build_svhn", "labelled",
                {"source": "http://ufldl.stanford.edu/housenumbers/ via torchvision",
                 "licence": "non-commercial use only",
                 "citation": "Netzer et al. 2011, Reading Digits in Natural Images with Unsupervised Feature Learning "
                             "(NIPS workshop)",
                 "classes": [str(d) for d in range(10)], "images": "73,257 train / 26,032 test", "count": 99_289,
                 "resolution": "32x32, 3 channels", "native": "32x32",
                 "download_size": "about 240 MB (train and test .mat files)",
                 "url": "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                 "fetch_by_hand": "download train_32x32.mat and test_32x32.mat from http://ufldl.stanford.edu/housenumbers/ "
                                  "into GENCLI_DATA_DIR/svhn/"}),
    DatasetSpec("cifar100", "a hundred object classes, 32 px colour, 50k/10k (torchvision download)",
                "gencli.data.torchvision_sets:build_cifar100", "labelled",
                {"source": "https://www.cs.toronto.edu/~kriz/cifar.html via torchvision",
                 "citation": "Krizhevsky 2009, Learning Multiple Layers of Features from Tiny Images",
                 "classes": "100 fine classes (apple, aquarium_fish, ... worm)",
                 "images": "50,000 train / 10,000 test", "count": 60_000,
                 "resolution": "32x32, 3 channels", "native": "32x32",
                 "download_size": "about 170 MB",
                 "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "fetch_by_hand": "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz into "
                                  "GENCLI_DATA_DIR/cifar100/"}),
]

DATASETS: list[DatasetSpec] = [
    *(DatasetSpec(d.name, d.summary, target(d, "gencli.data.zoo"), d.kind, d.card()) for d in ZOO_ARCHIVES),
    *_TORCHVISION,
    *(DatasetSpec(d.name, d.summary, target(d), d.kind, d.card()) for d in ARCHIVES.values()),
]
