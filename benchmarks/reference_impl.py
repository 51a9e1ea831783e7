"""Reference training steps that gencli's train step is compared against (benchmarks/bench_reference.py).

These are re-implementations written for this benchmark, in plain torch and torchvision (nothing
from gencli), following the published architectures and training loops of:

- PyTorch's DCGAN example (``examples/dcgan/main.py``): the 64 px generator and discriminator
  with batch norm, BCELoss on a sigmoid output, Adam 2e-4 with betas (0.5, 0.999), N(0, 0.02)
  initialisation; per step D on the real batch (label 1), G(z), D on ``fake.detach()`` (label 0),
  the D update, then D on the same fakes (label 1) and the G update; the three logged values are
  read with ``.item()`` every step, as the script prints them every iteration. Its data comes from
  a ``DataLoader`` (2 workers, the script's default) over a dataset of images with the script's
  per-item transforms (Resize, CenterCrop, ToTensor, Normalize), moved with ``.to(device)``.
- The CycleGAN and pix2pix code of Zhu, Park, Isola et al. (pytorch-CycleGAN-and-pix2pix): its
  ``ResnetGenerator`` (reflection padding, instance norm without affine parameters or running
  statistics, two stride-2 convolutions, residual blocks, two transposed convolutions), its
  ``UnetGenerator`` (``unet_256``: 8 downsamplings, batch norm, dropout in the three 512-wide
  decoder blocks below the bottleneck, the in-place LeakyReLU of its skip blocks), its
  ``NLayerDiscriminator`` (PatchGAN, 3 layers), its ``GANLoss`` (lsgan: MSE; vanilla:
  BCEWithLogits), its ``ImagePool`` and the ``optimize_parameters`` of ``cycle_gan_model`` and
  ``pix2pix_model``, including their ``set_requires_grad(D, False)`` around the generator update.
  Data as its unaligned / aligned datasets give it: per-item Resize to the load size (bicubic),
  random crop, random horizontal flip, ToTensor, Normalize, in a ``DataLoader`` with 4 workers
  (its ``--num_threads`` default), batch 1.
- A common DDPM trainer (Ho et al. 2020 as re-implemented in popular PyTorch trainers): the
  CIFAR-10 U-Net layout (base width, channel multipliers, residual blocks per level, attention
  levels, GroupNorm(32), swish written as ``x * sigmoid(x)``, attention as two ``bmm`` and a
  softmax with separate q/k/v/out 1x1 convolutions, sinusoidal time embedding looked up from a
  table), linear betas, uniform t, epsilon MSE, Adam 2e-4 with linear warm-up, gradient-norm
  clipping at 1, an EMA copy updated every step through ``state_dict`` and the loss read with
  ``.item()`` every step for the progress bar. ``scale_shift=True`` injects the time embedding as
  a scale and shift after the second group norm (improved DDPM's ``use_scale_shift_norm``) instead
  of Ho et al.'s added bias; see bench_reference.py for which one is compared and why.

Each ``*Reference`` class builds its networks, optimizers and data loader; ``step()`` runs one
training iteration, fetching its batch from the loader as the original loop does. Images are
given as uint8 NCHW tensors and kept in memory as PIL images (no file decoding on either side).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

NORMALIZE = transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


# ======================================================================================== data
def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """uint8 [N, 3, H, W] -> a list of RGB PIL images."""
    return [Image.fromarray(img.permute(1, 2, 0).contiguous().numpy(), "RGB") for img in images.cpu()]


class ImageListDataset(Dataset):
    """Images and a dummy class, as torchvision's ImageFolder returns them after ``transform``."""

    def __init__(self, images: torch.Tensor, transform) -> None:
        self.images, self.transform = to_pil(images), transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), 0


def translation_transform(load_size: int, crop_size: int) -> transforms.Compose:
    """The ``resize_and_crop`` preprocessing of the CycleGAN/pix2pix code, with flips."""
    return transforms.Compose([
        transforms.Resize([load_size, load_size], transforms.InterpolationMode.BICUBIC),
        transforms.RandomCrop(crop_size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        NORMALIZE,
    ])


class UnalignedDataset(Dataset):
    """Domain A in order (modulo its size), domain B at a random index, each transformed on its own."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, load_size: int, crop_size: int) -> None:
        self.a, self.b = to_pil(a), to_pil(b)
        self.transform = translation_transform(load_size, crop_size)

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def __getitem__(self, index: int):
        a = self.a[index % len(self.a)]
        b = self.b[random.randint(0, len(self.b) - 1)]
        return {"A": self.transform(a), "B": self.transform(b)}


class AlignedDataset(Dataset):
    """Aligned pairs that share one random crop and flip (the AB image of the original, already split)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, load_size: int, crop_size: int) -> None:
        self.a, self.b = to_pil(a), to_pil(b)
        self.load_size, self.crop_size = load_size, crop_size
        self.tail = transforms.Compose([transforms.ToTensor(), NORMALIZE])

    def __len__(self) -> int:
        return len(self.a)

    def _transform(self, img: Image.Image, x: int, y: int, flip: bool) -> torch.Tensor:
        img = img.resize((self.load_size, self.load_size), Image.BICUBIC)
        img = img.crop((x, y, x + self.crop_size, y + self.crop_size))
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        return self.tail(img)

    def __getitem__(self, index: int):
        room = self.load_size - self.crop_size
        x, y = random.randint(0, room), random.randint(0, room)
        flip = random.random() > 0.5
        return {"A": self._transform(self.a[index], x, y, flip), "B": self._transform(self.b[index], x, y, flip)}


def forever(loader: DataLoader) -> Iterator:
    """Batches of ``loader``, epoch after epoch."""
    while True:
        yield from loader


class Repeated(Dataset):
    """``dataset`` seen ``length`` items long (its items in turn), so that one epoch spans a whole benchmark."""

    def __init__(self, dataset: Dataset, length: int) -> None:
        self.dataset, self.length = dataset, max(length, len(dataset))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        return self.dataset[index % len(self.dataset)]


def make_loader(dataset: Dataset, batch_size: int, workers: int, drop_last: bool = False,
                epoch_items: int = 0) -> DataLoader:
    """The scripts' DataLoader (shuffled, ``workers`` processes, no pinned memory).

    The benchmark's image sets are small; ``epoch_items`` stretches an epoch so that, as in the
    original scripts' epochs of thousands of batches, the loader runs in its steady state of
    prefetching while the model trains instead of restarting its workers every few steps.
    """
    if epoch_items:
        dataset = Repeated(dataset, epoch_items)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=drop_last,
                      persistent_workers=workers > 0)


class Reference:
    """Base: ``nets`` (for parameter counts), ``step()``, ``close()``."""

    nets: dict[str, nn.Module]
    loader: DataLoader

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.batches: Iterator | None = None

    def next_batch(self):
        if self.batches is None:
            self.batches = forever(self.loader)
        return next(self.batches)

    def step(self) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def close(self) -> None:
        """Stop the loader's worker processes."""
        self.batches = None
        self.loader = None  # type: ignore[assignment]

    def parameter_counts(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in v.parameters() if p.requires_grad) for k, v in self.nets.items()}


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


# ======================================================================================== DCGAN
class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),  # 4x4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),  # 16
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),  # 32
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),  # 64x64
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class DCGANDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 3) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),  # 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),  # 4x4 -> 1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def dcgan_weights_init(m: nn.Module) -> None:
    name = m.__class__.__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGANReference(Reference):
    """PyTorch examples' DCGAN training iteration (64 px, nz 100, ngf = ndf = 64)."""

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device, workers: int = 2,
                 nz: int = 100, ngf: int = 64, ndf: int = 64, image_size: int = 64, epoch_items: int = 0) -> None:
        super().__init__(device)
        self.nz = nz
        transform = transforms.Compose([
            transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(), NORMALIZE])
        self.loader = make_loader(ImageListDataset(images, transform), batch_size, workers, epoch_items=epoch_items)
        self.netG = DCGANGenerator(nz, ngf).to(device)
        self.netG.apply(dcgan_weights_init)
        self.netD = DCGANDiscriminator(ndf).to(device)
        self.netD.apply(dcgan_weights_init)
        self.nets = {"G": self.netG, "D": self.netD}
        self.criterion = nn.BCELoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.last = None

    def step(self) -> None:
        data = self.next_batch()
        netD, netG, criterion = self.netD, self.netG, self.criterion
        # (1) maximise log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real = data[0].to(self.device)
        n = real.size(0)
        label = torch.full((n,), 1.0, dtype=real.dtype, device=self.device)
        output = netD(real)
        err_real = criterion(output, label)
        err_real.backward()
        d_x = output.mean().item()
        noise = torch.randn(n, self.nz, 1, 1, device=self.device)
        fake = netG(noise)
        label.fill_(0.0)
        output = netD(fake.detach())
        err_fake = criterion(output, label)
        err_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_real + err_fake
        self.optimizerD.step()
        # (2) maximise log(D(G(z)))
        netG.zero_grad()
        label.fill_(1.0)
        output = netD(fake)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        self.optimizerG.step()
        self.last = (err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2)  # what the script prints every iteration


# ======================================================================================== translation networks
def translation_norm(kind: str):
    if kind == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True, track_running_stats=True)
    return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm, use_bias: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm_kind: str = "instance") -> None:
        super().__init__()
        norm, use_bias = translation_norm(norm_kind), norm_kind == "instance"
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=use_bias), norm(ngf), nn.ReLU(True)]
        for i in range(2):  # downsampling
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                      norm(ngf * mult * 2), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 4, norm, use_bias) for _ in range(n_blocks)]
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                         bias=use_bias),
                      norm(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm_kind: str = "batch",
                 use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        norm, use_bias = translation_norm(norm_kind), norm_kind == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)  # in place, as in the original: the skip carries its output
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, norm(inner_nc), submodule, uprelu, upconv, norm(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm_kind: str = "batch", use_dropout: bool = True) -> None:
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_kind=norm_kind)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_kind=norm_kind,
                                            use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_kind=norm_kind)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_kind=norm_kind)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_kind=norm_kind)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_kind=norm_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm_kind: str = "instance") -> None:
        super().__init__()
        norm, use_bias = translation_norm(norm_kind), norm_kind == "instance"
        seq = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=use_bias), norm(ndf * mult),
                    nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=use_bias), norm(ndf * mult),
                nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def translation_init(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """init_type 'normal': conv/linear weights N(0, gain), biases 0; batch-norm weights N(1, gain)."""
    def init(m: nn.Module) -> None:
        name = m.__class__.__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            nn.init.normal_(m.weight, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net.apply(init)


class GANLoss(nn.Module):
    """lsgan: MSE to a target tensor of 1s or 0s; vanilla: BCE with logits."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.MSELoss() if mode == "lsgan" else nn.BCEWithLogitsLoss()

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        return self.loss(prediction, target)


class ImagePool:
    """History of 50 generated images; each query returns, per image, it or (p = 1/2) a stored one."""

    def __init__(self, pool_size: int = 50) -> None:
        self.pool_size, self.num_imgs, self.images = pool_size, 0, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.pool_size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


# ======================================================================================== CycleGAN
class CycleGANReference(Reference):
    """cycle_gan_model: ResNet generators, PatchGANs, LSGAN, cycle 10, identity 0.5, pools of 50."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, crop_size: int, load_size: int, device: torch.device,
                 batch_size: int = 1, workers: int = 4, ngf: int = 64, ndf: int = 64, n_blocks: int | None = None,
                 lambda_a: float = 10.0, lambda_b: float = 10.0, lambda_identity: float = 0.5,
                 epoch_items: int = 0) -> None:
        super().__init__(device)
        n_blocks = n_blocks if n_blocks is not None else (9 if crop_size >= 256 else 6)
        self.loader = make_loader(UnalignedDataset(a, b, load_size, crop_size), batch_size, workers,
                                  epoch_items=epoch_items)
        self.netG_A = translation_init(ResnetGenerator(3, 3, ngf, n_blocks)).to(device)
        self.netG_B = translation_init(ResnetGenerator(3, 3, ngf, n_blocks)).to(device)
        self.netD_A = translation_init(NLayerDiscriminator(3, ndf, 3)).to(device)
        self.netD_B = translation_init(NLayerDiscriminator(3, ndf, 3)).to(device)
        self.nets = {"G_A": self.netG_A, "G_B": self.netG_B, "D_A": self.netD_A, "D_B": self.netD_B}
        self.lambda_a, self.lambda_b, self.lambda_idt = lambda_a, lambda_b, lambda_identity
        self.fake_A_pool, self.fake_B_pool = ImagePool(50), ImagePool(50)
        self.criterionGAN = GANLoss("lsgan").to(device)
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()
        betas = (0.5, 0.999)
        self.optimizer_G = torch.optim.Adam([*self.netG_A.parameters(), *self.netG_B.parameters()], lr=2e-4, betas=betas)
        self.optimizer_D = torch.optim.Adam([*self.netD_A.parameters(), *self.netD_B.parameters()], lr=2e-4, betas=betas)

    def backward_D_basic(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss_real = self.criterionGAN(netD(real), True)
        loss_fake = self.criterionGAN(netD(fake.detach()), False)
        loss = (loss_real + loss_fake) * 0.5
        loss.backward()
        return loss

    def step(self) -> None:
        data = self.next_batch()
        real_A, real_B = data["A"].to(self.device), data["B"].to(self.device)
        # forward
        fake_B = self.netG_A(real_A)
        rec_A = self.netG_B(fake_B)
        fake_A = self.netG_B(real_B)
        rec_B = self.netG_A(fake_A)
        # G_A and G_B
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        idt_A = self.netG_A(real_B)
        loss_idt_A = self.criterionIdt(idt_A, real_B) * self.lambda_b * self.lambda_idt
        idt_B = self.netG_B(real_A)
        loss_idt_B = self.criterionIdt(idt_B, real_A) * self.lambda_a * self.lambda_idt
        loss_G_A = self.criterionGAN(self.netD_A(fake_B), True)
        loss_G_B = self.criterionGAN(self.netD_B(fake_A), True)
        loss_cycle_A = self.criterionCycle(rec_A, real_A) * self.lambda_a
        loss_cycle_B = self.criterionCycle(rec_B, real_B) * self.lambda_b
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        self.optimizer_G.step()
        # D_A and D_B
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_basic(self.netD_A, real_B, self.fake_B_pool.query(fake_B))
        self.backward_D_basic(self.netD_B, real_A, self.fake_A_pool.query(fake_A))
        self.optimizer_D.step()


# ======================================================================================== pix2pix
class Pix2PixReference(Reference):
    """pix2pix_model: unet_256 with batch norm and dropout, conditional PatchGAN, vanilla GAN + 100 L1."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, crop_size: int, load_size: int, device: torch.device,
                 batch_size: int = 1, workers: int = 4, ngf: int = 64, ndf: int = 64, num_downs: int = 8,
                 lambda_l1: float = 100.0, epoch_items: int = 0) -> None:
        super().__init__(device)
        self.loader = make_loader(AlignedDataset(a, b, load_size, crop_size), batch_size, workers,
                                  epoch_items=epoch_items)
        self.netG = translation_init(UnetGenerator(3, 3, num_downs, ngf, "batch", use_dropout=True)).to(device)
        self.netD = translation_init(NLayerDiscriminator(6, ndf, 3, "batch")).to(device)
        self.nets = {"G": self.netG, "D": self.netD}
        self.criterionGAN = GANLoss("vanilla").to(device)
        self.criterionL1 = nn.L1Loss()
        self.lambda_l1 = lambda_l1
        self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self) -> None:
        data = self.next_batch()
        real_A, real_B = data["A"].to(self.device), data["B"].to(self.device)
        fake_B = self.netG(real_A)
        # D
        set_requires_grad([self.netD], True)
        self.optimizer_D.zero_grad()
        loss_D_fake = self.criterionGAN(self.netD(torch.cat((real_A, fake_B), 1).detach()), False)
        loss_D_real = self.criterionGAN(self.netD(torch.cat((real_A, real_B), 1)), True)
        ((loss_D_fake + loss_D_real) * 0.5).backward()
        self.optimizer_D.step()
        # G
        set_requires_grad([self.netD], False)
        self.optimizer_G.zero_grad()
        loss_G_GAN = self.criterionGAN(self.netD(torch.cat((real_A, fake_B), 1)), True)
        loss_G_L1 = self.criterionL1(fake_B, real_B) * self.lambda_l1
        (loss_G_GAN + loss_G_L1).backward()
        self.optimizer_G.step()


# ======================================================================================== DDPM
class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def sinusoid_table(T: int, d_model: int) -> torch.Tensor:
    freqs = torch.exp(-torch.arange(0, d_model, 2).float() / d_model * math.log(10000))
    args = torch.arange(T).float()[:, None] * freqs[None, :]
    return torch.stack([torch.sin(args), torch.cos(args)], dim=-1).view(T, d_model)


class TimeEmbedding(nn.Module):
    def __init__(self, T: int, d_model: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Embedding.from_pretrained(sinusoid_table(T, d_model)),
                                 nn.Linear(d_model, dim), Swish(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net(t)


class DownSample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.main = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class UpSample(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.main = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        return self.main(F.interpolate(x, scale_factor=2, mode="nearest"))


class AttnBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(32, ch)
        self.proj_q, self.proj_k, self.proj_v, self.proj = (nn.Conv2d(ch, ch, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        h = self.group_norm(x)
        q = self.proj_q(h).permute(0, 2, 3, 1).reshape(B, H * W, C)
        k = self.proj_k(h).reshape(B, C, H * W)
        v = self.proj_v(h).permute(0, 2, 3, 1).reshape(B, H * W, C)
        w = F.softmax(torch.bmm(q, k) * (C ** -0.5), dim=-1)
        h = torch.bmm(w, v).view(B, H, W, C).permute(0, 3, 1, 2)
        return x + self.proj(h)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, tdim: int, dropout: float, attn: bool, scale_shift: bool) -> None:
        super().__init__()
        self.scale_shift = scale_shift
        self.block1 = nn.Sequential(nn.GroupNorm(32, in_ch), Swish(), nn.Conv2d(in_ch, out_ch, 3, padding=1))
        self.temb_proj = nn.Sequential(Swish(), nn.Linear(tdim, out_ch * (2 if scale_shift else 1)))
        self.norm2 = nn.GroupNorm(32, out_ch)
        self.block2 = nn.Sequential(Swish(), nn.Dropout(dropout), nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.attn = AttnBlock(out_ch) if attn else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.block1(x)
        emb = self.temb_proj(temb)[:, :, None, None]
        if self.scale_shift:
            scale, shift = emb.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + emb)
        h = self.block2(h)
        return self.attn(h + self.shortcut(x))


class DDPMUNet(nn.Module):
    def __init__(self, T: int = 1000, ch: int = 128, ch_mult=(1, 2, 2, 2), attn=(1,), num_res_blocks: int = 2,
                 dropout: float = 0.1, scale_shift: bool = False) -> None:
        super().__init__()
        tdim = ch * 4
        self.time_embedding = TimeEmbedding(T, ch, tdim)
        self.head = nn.Conv2d(3, ch, 3, padding=1)
        self.downblocks = nn.ModuleList()
        chs, now = [ch], ch
        for i, mult in enumerate(ch_mult):
            for _ in range(num_res_blocks):
                self.downblocks.append(ResBlock(now, ch * mult, tdim, dropout, i in attn, scale_shift))
                now = ch * mult
                chs.append(now)
            if i != len(ch_mult) - 1:
                self.downblocks.append(DownSample(now))
                chs.append(now)
        self.middleblocks = nn.ModuleList([ResBlock(now, now, tdim, dropout, True, scale_shift),
                                           ResBlock(now, now, tdim, dropout, False, scale_shift)])
        self.upblocks = nn.ModuleList()
        for i, mult in reversed(list(enumerate(ch_mult))):
            for _ in range(num_res_blocks + 1):
                self.upblocks.append(ResBlock(chs.pop() + now, ch * mult, tdim, dropout, i in attn, scale_shift))
                now = ch * mult
            if i != 0:
                self.upblocks.append(UpSample(now))
        self.tail = nn.Sequential(nn.GroupNorm(32, now), Swish(), nn.Conv2d(now, 3, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        h = self.head(x)
        hs = [h]
        for layer in self.downblocks:
            h = layer(h, temb)
            hs.append(h)
        for layer in self.middleblocks:
            h = layer(h, temb)
        for layer in self.upblocks:
            if isinstance(layer, ResBlock):
                h = torch.cat([h, hs.pop()], dim=1)
            h = layer(h, temb)
        return self.tail(h)


def extract(v: torch.Tensor, t: torch.Tensor, shape) -> torch.Tensor:
    return torch.gather(v, 0, t).float().view([t.shape[0]] + [1] * (len(shape) - 1))


class DDPMReference(Reference):
    """One iteration of a common DDPM trainer: noise a batch at uniform t, epsilon MSE, Adam, clip, EMA."""

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device, workers: int = 4,
                 T: int = 1000, ch: int = 128, ch_mult=(1, 2, 2, 2), attn=(1,), num_res_blocks: int = 2,
                 dropout: float = 0.1, scale_shift: bool = False, beta_1: float = 1e-4, beta_T: float = 0.02,
                 lr: float = 2e-4, warmup: int = 5000, grad_clip: float = 1.0, ema_decay: float = 0.9999,
                 epoch_items: int = 0) -> None:
        super().__init__(device)
        transform = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor(), NORMALIZE])
        self.loader = make_loader(ImageListDataset(images, transform), batch_size, workers, drop_last=True,
                                  epoch_items=epoch_items)
        self.net = DDPMUNet(T, ch, tuple(ch_mult), tuple(attn), num_res_blocks, dropout, scale_shift).to(device)
        self.ema_net = copy.deepcopy(self.net)
        self.nets = {"unet": self.net}
        self.optim = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.optim, lambda step: min(step, warmup) / warmup)
        self.grad_clip, self.ema_decay, self.T = grad_clip, ema_decay, T
        betas = torch.linspace(beta_1, beta_T, T).double()
        alphas_bar = torch.cumprod(1.0 - betas, dim=0)
        self.sqrt_alphas_bar = torch.sqrt(alphas_bar).to(device)
        self.sqrt_one_minus_alphas_bar = torch.sqrt(1.0 - alphas_bar).to(device)
        self.last = None

    def loss(self, x_0: torch.Tensor) -> torch.Tensor:
        t = torch.randint(self.T, size=(x_0.shape[0],), device=x_0.device)
        noise = torch.randn_like(x_0)
        x_t = extract(self.sqrt_alphas_bar, t, x_0.shape) * x_0 + extract(self.sqrt_one_minus_alphas_bar, t, x_0.shape) * noise
        return F.mse_loss(self.net(x_t, t), noise, reduction="none")

    def ema(self) -> None:
        source, target = self.net.state_dict(), self.ema_net.state_dict()
        for key in source:
            target[key].data.copy_(target[key].data * self.ema_decay + source[key].data * (1 - self.ema_decay))

    def step(self) -> None:
        self.optim.zero_grad()
        x_0 = self.next_batch()[0].to(self.device)
        loss = self.loss(x_0).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optim.step()
        self.sched.step()
        self.ema()
        self.last = loss.item()  # the progress bar and the scalar log read it every step
