"""League runner: pythae's VAE with its convolutional MNIST encoder and decoder, trained by its pipeline.

pythae's documented MNIST setup: ``VAEConfig(input_dim=(1, 28, 28), latent_dim=16)``,
``Encoder_Conv_VAE_MNIST`` / ``Decoder_Conv_AE_MNIST``, ``BaseTrainerConfig`` with learning rate
1e-3 and batch 64, ``TrainingPipeline`` on an array of images in [0, 1]; samples from its
``NormalSampler``. A callback after each training step keeps the clock and the snapshots.
"""

import torch
from common import Clock, arguments, finish, load_folder, save_samples, snapshot, snapshots, to_judge

BATCH = 64


def build():
    from pythae.models import VAE, VAEConfig
    from pythae.models.nn.benchmarks.mnist import Decoder_Conv_AE_MNIST, Encoder_Conv_VAE_MNIST

    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=16)
    return VAE(config, encoder=Encoder_Conv_VAE_MNIST(config), decoder=Decoder_Conv_AE_MNIST(config))


class OverBudget(Exception):
    pass


def main() -> None:
    import pythae
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    args = arguments(__doc__)
    torch.manual_seed(args.seed)
    if args.sample:
        from pythae.samplers import NormalSampler

        for snap in snapshots(args.out):
            model = build()
            model.load_state_dict(torch.load(args.out / f"snap-{snap['index']:02d}.pt"))
            model.eval()
            torch.manual_seed(args.seed)
            with torch.no_grad():
                x = NormalSampler(model).sample(num_samples=args.sample, batch_size=500)
            save_samples(args.out, snap["index"], to_judge(x, low=0.0))
        return
    clock = Clock(args.minutes, args.snapshots)
    images, _ = load_folder(args.data, 28, 1)
    data = images.float().div(255).numpy()
    model = build()
    count = {"steps": 0}

    class Budget(TrainingCallback):
        def on_train_step_end(self, training_config, **kwargs):
            count["steps"] += 1
            if clock.due():
                snapshot(args.out, clock, count["steps"], count["steps"] * BATCH, model.state_dict())
            if clock.over():
                raise OverBudget

    config = BaseTrainerConfig(output_dir=str(args.out / "pythae"), learning_rate=1e-3,
                               per_device_train_batch_size=BATCH, num_epochs=10_000, no_cuda=True,
                               steps_saving=None, seed=args.seed)
    try:
        TrainingPipeline(training_config=config, model=model)(train_data=data, callbacks=[Budget()])
    except OverBudget:
        pass
    if clock.due():
        snapshot(args.out, clock, count["steps"], count["steps"] * BATCH, model.state_dict())
    finish(args.out, {"peer": "pythae", "version": getattr(pythae, "__version__", "0.1.2"),
                      "settings": "VAE, latent 16, Encoder_Conv_VAE_MNIST / Decoder_Conv_AE_MNIST, MSE "
                                  "reconstruction, Adam 1e-3, batch 64, 28 px grey; NormalSampler",
                      "steps": count["steps"], "batch": BATCH})


if __name__ == "__main__":
    main()
