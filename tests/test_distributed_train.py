"""Training on several processes (stylekit.train.distributed): torchrun with gloo on this CPU.

``--batch`` is the global batch: two ranks at ``--batch 8`` train on 4 rows each, and must end
where one process at ``--batch 8`` ends. Tolerance (float32, deterministic data: the supervised
trainer with constant noise inputs): every tensor of the checkpoint (G, its EMA, Adam's moments)
within ``1e-5 * max(1, max|tensor|)`` of the one-process run; measured about 6e-8 (the gradient
average sums two half-batch means where one process takes one mean). Networks with BatchNorm
(predictor, CLIP's image tower) normalise with each rank's rows, so for them only the run itself
and the ranks' agreement are checked.

Every child process runs with OMP_NUM_THREADS=1 and --threads 1.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SUPERVISED = ["--resolution", "16", "--batch", "8", "--seed", "1", "--z-dim", "16", "--w-dim", "16",
              "--map-layers", "2", "--g-channels", "4:16,8:16,16:8", "--lr", "0.01", "--percep", "0", "--noise-mode", "const",
              "--log-kimg", "0.008", "--snapshot-kimg", "0.024", "--threads", "1"]
REL_TOL = 1e-5


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(nproc: int, argv: list[str]) -> subprocess.CompletedProcess:
    """``python -m stylekit.train ARGV`` on one process, or under torchrun on ``nproc`` (launched once more if
    the free port picked for the rendezvous was taken by another program in between)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for _ in range(2):
        launch = [sys.executable]
        if nproc > 1:
            launch += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
                       "--master_port", str(_port())]
        proc = subprocess.run(launch + ["-m", "stylekit.train"] + argv, env=env, capture_output=True, text=True,
                              timeout=240, cwd=Path(__file__).resolve().parents[1])
        if proc.returncode == 0 or "EADDRINUSE" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _checkpoint(folder: Path) -> dict:
    return torch.load(folder / "checkpoint-latest.pt", map_location="cpu", weights_only=True)


def _worst(a: dict, b: dict) -> float:
    """The largest ``|a - b| / max(1, max|a|)`` over the tensors of two state dicts (same keys)."""
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) / max(1.0, float(a[k].abs().max()))
               for k in a if a[k].is_floating_point())


def _adam_moments(state: dict) -> dict:
    return {f"{i}.{name}": v for i, s in state["state"].items() for name, v in s.items() if name != "step"}


def _assert_same_run(a: dict, b: dict) -> None:
    assert (a["step"], a["cur_nimg"]) == (b["step"], b["cur_nimg"])
    for net in ("G", "G_ema"):
        assert _worst(a["nets"][net], b["nets"][net]) <= REL_TOL, net
    assert _worst(_adam_moments(a["optims"]["G"]), _adam_moments(b["optims"]["G"])) <= REL_TOL


def test_two_ranks_match_one_process_at_the_global_batch_and_resume_on_one(tmp_path):
    # 3 steps of 8 images: two ranks of 4 rows vs one process of 8
    two = _train(2, ["supervised", "--out", str(tmp_path / "two"), "--kimg", "0.024"] + SUPERVISED)
    _train(1, ["supervised", "--out", str(tmp_path / "one"), "--kimg", "0.024"] + SUPERVISED)
    a, b = _checkpoint(tmp_path / "two"), _checkpoint(tmp_path / "one")
    assert a["step"] == 3 and a["cur_nimg"] == 24
    _assert_same_run(a, b)
    # rank 0 alone logged and printed
    log = (tmp_path / "two" / "log.txt").read_text().splitlines()
    assert log[0] == "2 processes (gloo), batch 8 = 2 x 4"
    assert sum(line.startswith("G: ") for line in log) == 1 and sum("sec/step" in line for line in log) == 3
    assert two.stdout.count('"generator"') == 1

    # the checkpoint written by two ranks continues on one process, exactly as an uninterrupted run
    resumed = _train(1, ["supervised", "--out", str(tmp_path / "two"), "--kimg", "0.040", "--resume"] + SUPERVISED)
    assert "resumed from" in resumed.stdout
    assert math.isfinite(json.loads(resumed.stdout[resumed.stdout.index("{"):])["loss"])
    _train(1, ["supervised", "--out", str(tmp_path / "five"), "--kimg", "0.040"] + SUPERVISED)
    c, d = _checkpoint(tmp_path / "two"), _checkpoint(tmp_path / "five")
    assert c["step"] == 5 and c["cur_nimg"] == 40
    _assert_same_run(c, d)
    # ... and the trained weights moved on from what the two ranks saved
    assert _worst(c["nets"]["G"], a["nets"]["G"]) > 1e-4
    # the other way: the one-process checkpoint continues on two ranks
    _train(2, ["supervised", "--out", str(tmp_path / "one"), "--kimg", "0.040", "--resume"] + SUPERVISED)
    _assert_same_run(_checkpoint(tmp_path / "one"), d)


TRAINERS = {
    "gan": (["--resolution", "16", "--batch", "8", "--kimg", "0.016", "--z-dim", "16", "--w-dim", "16",
             "--map-layers", "2", "--g-channels", "4:16,8:16,16:8", "--d-channels", "4:16,8:16,16:8",
             "--pl-weight", "2", "--r1-interval", "1", "--log-kimg", "0.008"], 2, "generator.safetensors"),
    "predictor": (["--steps", "2", "--batch", "8", "--pool", "16", "--eval-samples", "20", "--log-every", "1"], 2,
                  "predictor.safetensors"),
    "encoder": (["--steps", "2", "--batch", "4", "--eval-images", "4", "--perceptual", "none", "--perceptual-weight",
                 "0", "--log-every", "1", "--w-disc-weight", "0.1", "--data", "mix", "--latent-weight", "1"], 2,
                "encoder.safetensors"),
    "clip": (["--steps", "2", "--batch", "8", "--fresh-per-step", "4", "--buffer-size", "64", "--eval-every", "0",
              "--log-every", "1", "--warmup", "0"], 2, "clip.safetensors"),
}


@pytest.mark.parametrize("kind", sorted(TRAINERS))
def test_every_trainer_runs_on_two_ranks(tmp_path, kind):
    argv, steps, product = TRAINERS[kind]
    out = tmp_path / kind
    proc = _train(2, [kind, "--out", str(out), "--threads", "1"] + argv)
    state = _checkpoint(out)
    assert state["step"] == steps
    batch = int(argv[argv.index("--batch") + 1])
    assert state["cur_nimg"] == steps * batch  # counted over the global batch
    assert (out / product).is_file()
    log = (out / "log.txt").read_text().splitlines()
    assert log[0] == f"2 processes (gloo), batch {batch} = 2 x {batch // 2}"
    assert proc.stdout.count("2 processes (gloo)") == 1  # rank 0 alone logs
    for name, net in state["nets"].items():
        assert all(torch.isfinite(t).all() for t in net.values() if t.is_floating_point()), name


# ------------------------------------------------------------------------------------------------
# The pieces, on two processes spawned here (gloo)


def _pieces(rank: int, world: int, port: int, folder: str) -> None:
    import torch.distributed as td

    from stylekit.train.distributed import connect

    torch.set_num_threads(1)
    td.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dist, device = connect("cpu")
    result: dict = {"rank": dist.rank, "world": dist.world, "owns": dist.owns_group, "device": str(device),
                    "rows": list(range(10))[dist.rows(10)]}
    try:
        dist.local_batch(7)
    except Exception as exc:  # noqa: BLE001 - the message is checked by the parent
        result["error"] = str(exc)

    # a linear layer with a BatchNorm, different on each rank until attached (broadcast from rank 0)
    torch.manual_seed(rank)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    extra = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD(list(net.parameters()) + [extra], lr=1.0)
    dist.attach([net], [opt])
    result["start"] = [p.detach().clone() for p in net.parameters()]
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3) * (rank + 1)
    loss = net(x).square().mean() + (extra.sum() if rank == 1 else 0.0)  # ``extra`` has a gradient on rank 1 only
    loss.backward()
    result["local_grad"] = [p.grad.clone() for p in net.parameters()]
    opt.step()
    result["grad"] = [p.grad.clone() for p in net.parameters()] + [extra.grad.clone()]
    result["after"] = [p.detach().clone() for p in net.parameters()] + [extra.detach().clone()]
    result["buffers"] = [b.clone() for b in net.buffers() if b.is_floating_point()]
    result["clip"] = _clip_gradients(dist)
    torch.save(result, f"{folder}/rank{rank}.pt")
    td.destroy_process_group()


def _clip_gradients(dist) -> list:
    """The gradients of the contrastive loss over a batch of 6 embeddings (with hard negatives), computed
    from this rank's rows through stylekit.train.clip._global_batch and averaged over the ranks."""
    from stylekit.train.clip import _global_batch, clip_loss

    gen = torch.Generator().manual_seed(0)
    feats = torch.nn.Parameter(torch.randn(2, 6, 5, generator=gen))   # image and text rows of the global batch
    negs = torch.nn.Parameter(torch.randn(4, 5, generator=gen))        # 4 negatives owned by rows 0, 2, 3, 5
    owner = torch.tensor([0, 2, 3, 5])
    log_scale = torch.nn.Parameter(torch.tensor(1.0))
    rows = dist.rows(6)
    mine = [i for i in range(4) if int(owner[i]) in range(6)[rows]]
    img = torch.nn.functional.normalize(feats[0][rows], dim=-1)
    txt = torch.nn.functional.normalize(feats[1][rows], dim=-1)
    neg = torch.nn.functional.normalize(negs[mine], dim=-1)
    local_owner = torch.tensor([range(6)[rows].index(int(owner[i])) for i in mine])
    img, txt, neg, local_owner, scale, factor = _global_batch(dist, img, txt, neg, local_owner, log_scale.exp())
    loss, _ = clip_loss(img, txt, neg, local_owner, scale, 1.0)
    (loss * factor).backward()
    opt = torch.optim.SGD([feats, negs, log_scale], lr=0.0)
    dist.attach([], [opt])
    opt.step()
    # one process, the whole batch, in the gathered order (rank 0's rows, then rank 1's)
    order = list(range(0, 6, 2)) + list(range(1, 6, 2))
    f2 = feats.detach().clone().requires_grad_(True)
    n2 = negs.detach().clone().requires_grad_(True)
    s2 = log_scale.detach().clone().requires_grad_(True)
    neg_order = [i for i in range(4) if int(owner[i]) % 2 == 0] + [i for i in range(4) if int(owner[i]) % 2 == 1]
    ref, _ = clip_loss(torch.nn.functional.normalize(f2[0][order], dim=-1),
                       torch.nn.functional.normalize(f2[1][order], dim=-1),
                       torch.nn.functional.normalize(n2[neg_order], dim=-1),
                       torch.tensor([order.index(int(owner[i])) for i in neg_order]), s2.exp(), 1.0)
    ref.backward()
    return [feats.grad, negs.grad, log_scale.grad, f2.grad, n2.grad, s2.grad]


def test_gradients_buffers_and_rows_are_shared_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_pieces, args=(2, _port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world"], r0["owns"]) == (0, 1, 2, False)
    assert r0["rows"] == [0, 2, 4, 6, 8] and r1["rows"] == [1, 3, 5, 7, 9]
    assert "--batch 7 is the global batch" in r0["error"]
    # attached: both ranks start from rank 0's weights, step with the mean of their gradients, and agree after
    for p0, p1 in zip(r0["start"], r1["start"]):
        assert torch.equal(p0, p1)
    for g0, g1, l0, l1 in zip(r0["grad"], r1["grad"], r0["local_grad"], r1["local_grad"]):
        assert torch.equal(g0, g1)
        torch.testing.assert_close(g0, (l0 + l1) / 2)
    assert not torch.allclose(r0["local_grad"][0], r1["local_grad"][0])
    torch.testing.assert_close(r0["grad"][-1], torch.full([2], 0.5))  # a gradient on rank 1 only counts as 0 on rank 0
    for a, b in zip(r0["after"], r1["after"]):
        assert torch.equal(a, b)
    for a, b in zip(r0["buffers"], r1["buffers"]):  # BatchNorm running statistics averaged
        assert torch.equal(a, b)
    # CLIP's gathered contrastive loss: the averaged gradients are those of the whole batch on one process
    for r in (r0, r1):
        grads, ref = r["clip"][:3], r["clip"][3:]
        for g, want in zip(grads, ref):
            torch.testing.assert_close(g, want, rtol=1e-5, atol=1e-6)
