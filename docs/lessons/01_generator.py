# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 1: the generator
#
# **Learning goal.** After this lesson you can say what StyleGAN's mapping network does (Z to W),
# what truncation trades away, what the noise inputs change, and which W+ rows (coarse, middle,
# fine) decide which attributes of a face; and you will have *measured* the last one instead of
# taking it from a paper figure.
#
# About 15 minutes of reading and running; the whole notebook runs in about a minute on a laptop
# CPU, offline. Everything happens in the **toyfaces** world that ships inside stylekit: a small
# StyleGAN2 (64x64 cartoon faces), a procedural renderer that knows every face's attributes, and an
# attribute predictor that reads 15 attributes back from any image.
#
# Run it as a notebook (`jupytext --to notebook docs/lessons/01_generator.py`, then open it in
# Jupyter) or cell by cell in an editor that understands `# %%` cells.

# %%
# %matplotlib inline
import time
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm's notice about notebook widgets

import matplotlib.pyplot as plt
import numpy as np
import torch

import stylekit
from stylekit.checkpoints.predictor import load_predictor
from stylekit.edit import describe_layers, layer_presets, mixing_grid, style_mix, truncate
from stylekit.latent import Latent

lesson_start = time.perf_counter()
torch.manual_seed(0)

G = stylekit.load_generator("toyfaces")  # offline: the weights ship inside the package
judge = load_predictor("toyfaces")        # the attribute predictor


def show(images, titles=None, ncols=None, size=1.3, title=None):
    """Draw ``[N, 3, H, W]`` images in [-1, 1] in one row (or ``ncols`` columns)."""
    images = images.detach().clamp(-1, 1).add(1).div(2).permute(0, 2, 3, 1).cpu().numpy()
    n = len(images)
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    plt.tight_layout()
    plt.show()


def render(latent, **kwargs):
    """Render a Latent in batches of 32 (without gradients)."""
    with torch.no_grad():
        return torch.cat([latent.select(slice(i, i + 32)).render(G, **kwargs)
                          for i in range(0, latent.batch_size, 32)])


print(f"z_dim {G.z_dim}, w_dim {G.w_dim}, W+ rows {G.num_ws}, {G.img_resolution}x{G.img_resolution} pixels")
print("layer groups:", describe_layers(G))
print("the judge reads:", ", ".join(judge.attribute_names))

# %% [markdown]
# **About the judge.** Every claim below is checked with the attribute predictor. Know its limits:
# its features were also one of the losses that trained this generator (see
# `stylekit/toyfaces/weights/generator.md`), so it is a friendly judge that reads the generator's
# faces well. An independent judge is planned; until then, treat its numbers as "what the
# predictor sees", and look at the pictures too.
#
# ## 1. From Z to W: the mapping network
#
# A StyleGAN does not draw from its input noise directly. A sample starts as `z`, a vector of
# `z_dim` standard-normal numbers. The **mapping network** (here 4 fully connected layers) turns it
# into `w`, and the synthesis network reads `w` once per layer: the `num_ws` rows of **W+**. For an
# ordinary sample every row is the same `w`; inversion and style mixing make them differ.

# %%
seeds = list(range(8))
lat = Latent.from_seed(G, seeds)          # space 'w': tensor [8, num_ws, w_dim], all rows equal
print(lat.describe(), "| rows equal:", lat.rows_equal())
faces = render(lat)
show(faces, titles=[f"seed {s}" for s in seeds], title="Eight samples (no truncation)")

# %% [markdown]
# Where do the samples live? `z` is Gaussian in 64 dimensions, so nearly all of it sits on a thin
# shell of radius about $\sqrt{64} = 8$. The mapping network first normalises `z` onto that sphere,
# then bends it into W, a space with its own centre `G.w_avg` (the average of many `w`) and an
# uneven spread per coordinate. Truncation (next section) is defined around that centre, which is
# one reason edits happen in W, not in Z.

# %%
z = Latent.sample(G, 2000, seed=1, space="z").tensor          # [2000, z_dim]
w = Latent.from_z(G, z, space="w").tensor[:, 0]              # [2000, w_dim], one row per code
fig, axes = plt.subplots(1, 3, figsize=(11, 2.6))
axes[0].hist(z.norm(dim=1).numpy(), bins=40, color="tab:blue")
axes[0].set_title("|z|: a thin shell near 8")
axes[1].hist((w - G.w_avg).norm(dim=1).numpy(), bins=40, color="tab:orange")
axes[1].set_title("|w - w_avg|")
axes[2].bar(range(G.w_dim), w.std(dim=0).numpy(), color="tab:orange")
axes[2].set_title("spread of each w coordinate")
plt.tight_layout()
plt.show()
print(f"|z| = {z.norm(dim=1).mean():.2f} +- {z.norm(dim=1).std():.2f} (sqrt(z_dim) = {G.z_dim ** 0.5:.2f})")
print(f"w coordinates: std from {w.std(dim=0).min():.3f} to {w.std(dim=0).max():.3f}")

# %% [markdown]
# ### Exercise 1
# You want a morph between two faces. Take two random `z` and go along the straight line between
# them. How long is the midpoint vector `(z_a + z_b) / 2`, compared with the 8 of the shell? Why
# does `stylekit.edit.interpolate` use `slerp` for Z codes and `lerp` for W codes?
#
# <details><summary>Answer</summary>
#
# Two random 64-d Gaussians are nearly orthogonal, so $|z_a + z_b| \approx \sqrt{8^2 + 8^2}$ and the
# midpoint has length about $8/\sqrt{2} \approx 5.7$: far inside the shell, where the mapping
# network never saw an input during training (its normalisation rescales it, but the path bends).
# `slerp` goes along the sphere and keeps the norm. W has no such shell: the mapping network has
# already undone it, so a straight line is the natural path there. Try
# `stylekit.edit.lerp(Latent("z", z[:1]), Latent("z", z[1:2]), 0.5).tensor.norm()`.
# </details>
#
# ## 2. Truncation: quality against variety
#
# Truncation pulls a code toward the average: `w' = w_avg + psi (w - w_avg)`. With `psi = 1`
# nothing changes; with `psi = 0` every code becomes the average face. Small `psi` gives typical,
# clean faces and loses the unusual ones.

# %%
psis = [1.0, 0.7, 0.4, 0.0]
base = Latent.from_seed(G, [0, 1, 2, 3, 4, 5])
rows = torch.cat([render(truncate(G, base, psi)) for psi in psis])
show(rows, ncols=6, size=1.1, title="rows: psi = 1.0, 0.7, 0.4, 0.0 (the same six seeds)")

# %% [markdown]
# How much variety is lost? Ask the judge: for 48 codes, read the 15 attributes (each on a 0-1
# scale) and take their standard deviation across the codes, averaged over the attributes.

# %%
many = Latent.sample(G, 48, seed=2)
diversity = []
for psi in [1.0, 0.85, 0.7, 0.55, 0.4, 0.2, 0.0]:
    with torch.no_grad():
        unit = judge.predict_unit(render(truncate(G, many, psi)))   # [48, 15] in 0-1
    diversity.append((psi, float(unit.std(dim=0).mean())))
psi_axis, spread = zip(*diversity)
plt.figure(figsize=(4.5, 2.8))
plt.plot(psi_axis, spread, "o-")
plt.xlabel("psi")
plt.ylabel("attribute spread (judge)")
plt.title("Truncation removes variety")
plt.grid(alpha=0.3)
plt.show()
for psi, s in diversity:
    print(f"psi {psi:4.2f}: spread {s:.3f}")

# %% [markdown]
# ### Exercise 2
# What does `psi = -0.7` draw? Predict it before you run
# `show(render(truncate(G, base, -0.7)))`.
#
# <details><summary>Answer</summary>
#
# The code is reflected through the average: `w_avg - 0.7 (w - w_avg)`, the "anti-face". Continuous
# attributes flip almost exactly: a left tilt becomes a right tilt, the background hue goes to the
# other end of its scale, long hair turns short (on 48 codes the judge's readings before and after
# correlate at -0.98 to -1.00).
# Binary features flip only partly (glasses -0.36, open eyes -0.33): they are not a straight line
# through `w_avg`. Check a few with `judge.predict(...)`.
# </details>
#
# ## 3. Noise: the per-pixel details
#
# Besides W, every synthesis layer adds a per-pixel noise map scaled by a learned strength. The
# generator stores one fixed map per layer (`noise_mode="const"`, what every picture so far used);
# `"random"` draws new maps and `"none"` turns them off. In an FFHQ model the noise places hair
# strands, pores and freckles. Compare the change it makes here with the change from another seed.

# %%
one = Latent.from_seed(G, 3)
other = Latent.from_seed(G, 4)
with torch.no_grad():
    a = one.render(G, noise_mode="const")
    torch.manual_seed(1)
    b = one.render(G, noise_mode="random")
    c = one.render(G, noise_mode="none")
    d = other.render(G, noise_mode="const")
diff_noise = (a - b).abs().mean().item()
diff_seed = (a - d).abs().mean().item()
change = (a - b).abs().sum(1, keepdim=True)
heat = (change / change.max().clamp_min(1e-8)).repeat(1, 3, 1, 1) * 2 - 1   # scaled to its own maximum
show(torch.cat([a, b, c, heat, d]), titles=["const noise", "random noise", "no noise", "|const - random| (scaled)",
                                            "another seed"])
print(f"mean |pixel change|: new noise {diff_noise:.4f}, another seed {diff_seed:.4f} "
      f"({diff_seed / max(diff_noise, 1e-8):.0f}x larger)")
strengths = {n: p.item() for n, p in G.synthesis.named_parameters() if n.endswith("noise_strength")}
print("learned noise strengths:", ", ".join(f"{n.rsplit('.', 1)[0]} {v:+.4f}" for n, v in strengths.items()))

# %% [markdown]
# The noise does almost nothing in this generator, and the learned strengths say why: the
# toyfaces renders it was trained to reproduce have no random detail (no hair strands, no
# freckles), so training drove the strengths to about zero. A generator learns to use noise only
# where its data has stochastic detail. That is worth remembering for inversion (lesson 2): on
# toyfaces, optimising the noise maps cannot buy much.
#
# %% [markdown]
# ## 4. Style mixing: coarse, middle and fine rows
#
# Because every W+ row feeds its own layers, we can take some rows from face A and the rest from
# face B. Rows that feed low-resolution layers (4-8 px here, **coarse**) act on the layout; rows of
# the 16-32 px layers (**middle**) on features; the 64 px rows (**fine**) on what is left at full
# resolution. `layer_presets(G)` computes the groups from the network, not from a table of 18 rows.

# %%
print(layer_presets(G))
rows_lat = Latent.from_seed(G, [10, 11, 12])
cols_lat = Latent.from_seed(G, [20, 21, 22, 23])
for group in ("coarse", "middle", "fine"):
    grid = mixing_grid(G, rows_lat, cols_lat, layers=group)       # images [3, 4, 3, H, W]
    tiles = torch.cat([torch.cat([torch.full_like(grid.col_images[:1], 1.0), grid.col_images]),
                       *[torch.cat([grid.row_images[i:i + 1], grid.images[i]]) for i in range(3)]])
    show(tiles, ncols=5, size=1.0, title=f"rows: faces A; columns: faces B; cells: A with B's {group} rows")

# %% [markdown]
# The pictures suggest a split; now measure it. For 64 pairs (A, B) and each group, render A with
# B's rows of that group and ask the judge how far each attribute moved from A toward B:
#
# $$\text{transfer} = \frac{\sum (\text{mix} - A)(B - A)}{\sum (B - A)^2}$$
#
# 1 means the attribute followed B completely, 0 means it stayed A's.

# %%
A = Latent.sample(G, 64, seed=5)
B = Latent.sample(G, 64, seed=6)
with torch.no_grad():
    pa, pb = judge.predict_unit(render(A)), judge.predict_unit(render(B))
    transfer = {}
    for group in ("coarse", "middle", "fine"):
        pm = judge.predict_unit(render(style_mix(G, A, B, group)))
        transfer[group] = (((pm - pa) * (pb - pa)).sum(0) / ((pb - pa) ** 2).sum(0)).numpy()
names = judge.attribute_names
table = np.stack([transfer[g] for g in ("coarse", "middle", "fine")])
fig, ax = plt.subplots(figsize=(10, 2.4))
im = ax.imshow(table, cmap="viridis", vmin=0, vmax=1, aspect="auto")
ax.set_yticks(range(3), ["coarse", "middle", "fine"])
ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
for (i, j), v in np.ndenumerate(table):
    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
fig.colorbar(im, ax=ax, fraction=0.02)
ax.set_title("How much of B each group carries (the judge's reading)")
plt.show()
for g in ("coarse", "middle", "fine"):
    top = np.argsort(-transfer[g])[:4]
    print(f"{g:6s} carries most: " + ", ".join(f"{names[j]} {transfer[g][j]:.2f}" for j in top))

# %% [markdown]
# ### Exercise 3
# You want face A in face B's pose (tilt, turn and position) and nothing else of B. Which group do
# you take, and what else comes along? Check it with the table, then with
# `show(render(style_mix(G, A.select([0]), B.select([0]), "coarse")))`.
#
# <details><summary>Answer</summary>
#
# The coarse rows: rotation, yaw and position follow them almost completely. They also carry hair
# length and the light direction (the layout of the picture, decided at 4-8 px), so those come
# along. Nothing in the table is a pure "pose only" group: for a single attribute you need a
# direction (lesson 3), not a group of rows. Try `style_mix(G, A, B, [0, 1])` and see how much of
# the pose the first two rows alone carry.
# </details>
#
# ## The claim and the number
#
# **Claim.** In this generator the coarse W+ rows decide the face's pose: taking them from another
# face moves rotation and position (x and y) most of the way to that face, while the fine rows move
# them hardly at all. And truncation trades variety away steadily: the attribute spread falls with
# every step down in `psi`.

# %%
pose = [names.index(n) for n in ("rotation", "position_x", "position_y")]
coarse_pose = float(transfer["coarse"][pose].mean())
fine_pose = float(transfer["fine"][pose].mean())
kept = dict(diversity)[0.4] / dict(diversity)[1.0]
print(f"CLAIM pose follows the coarse rows: transfer {coarse_pose:.2f} from coarse, {fine_pose:.2f} from fine "
      f"(64 pairs, judged by the attribute predictor)")
print(f"CLAIM truncation: the spread falls at every step of psi; psi=0.4 keeps {kept:.0%} of it")
print(f"lesson ran in {time.perf_counter() - lesson_start:.0f} s ({time.process_time():.0f} s of CPU)")
assert coarse_pose > 0.7 and fine_pose < 0.2, "the coarse rows no longer decide the pose"
assert all(x[1] > y[1] for x, y in zip(diversity, diversity[1:])) and kept < 0.8, \
    "truncation no longer reduces the variety step by step"
