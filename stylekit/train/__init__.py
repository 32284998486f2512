"""Training stylekit's networks, every trainer on one skeleton (:mod:`stylekit.train.skeleton`).

- :mod:`~stylekit.train.gan` — StyleGAN2 adversarial training (StyleGAN2-ADA style, without
  augmentation): non-saturating logistic loss, lazy R1, optional path-length regularisation, style
  mixing, generator EMA; data from an image folder or the toyfaces renderer
  (:mod:`~stylekit.train.data`, :mod:`~stylekit.train.discriminator`, :mod:`~stylekit.train.adversarial`).
- :mod:`~stylekit.train.supervised` — the toyfaces generator's pretraining: every latent has a
  rendered target image (labelled latents, :mod:`stylekit.toyfaces.latents`), so G is trained by
  regression. Both generator trainers share :mod:`~stylekit.train.generators` and
  :mod:`~stylekit.train.kimg_loop`.
- :mod:`~stylekit.train.encoder` — e4e / pSp / ReStyle encoders for a generator.
- :mod:`~stylekit.train.clip` — the toyfaces CLIP (:mod:`~stylekit.train.clip_data`,
  :mod:`~stylekit.train.clip_weights`).
- :mod:`~stylekit.train.predictor` — the toyfaces attribute predictor (:mod:`~stylekit.train.predictor_data`).
- :mod:`~stylekit.train.metrics` — Fréchet distance and the toyfaces acceptance metric.

Command line (:mod:`~stylekit.train.cli`): ``python -m stylekit.train {gan,supervised,encoder,clip,predictor} --out
RUN ...``, ``python -m stylekit.train fd GENERATOR``, ``python -m stylekit.train clip-eval WEIGHTS``.
Importing this package imports nothing else; import the trainer's module (``from
stylekit.train.gan import GanConfig, train_gan``).
"""
