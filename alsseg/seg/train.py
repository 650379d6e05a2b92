"""Training loop: one CPU, one GPU, or several processes under ``torchrun`` (DDP) — same code.

``RUN/`` holds::

    run.json                 recipe, data folder, init bundle, preprocessing, network, best metrics
    checkpoints/last.pt      model + optimiser + iteration + elapsed time (resume)
    checkpoints/best.pt      model weights with the best mean validation Dice
    log.csv                  iteration, epoch, loss, lr, elapsed_s, val Dice per muscle, mean
    tb/                      TensorBoard event files (same numbers)
    cache/                   preprocessed cases (.npz), keyed by a hash of the preprocessing

Determinism: a batch depends only on ``(seed, rank, iteration)``; augmentation uses a torch
generator seeded the same way, so a resumed run draws the batches an uninterrupted one would.
Augmentation runs on the training device (on a GPU the CPU only crops patches), so the same
seed gives the same batches on the same kind of device, not across CPU and GPU.
A wall-clock budget (``train.max_minutes``) stops early and bends the poly learning-rate
schedule to end on time (then runs are reproducible only up to where time cut them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import csv
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from alsseg.io.atomic import atomic_path, write_text_atomic
from alsseg.io.errors import InputError
from alsseg.seg.dataset import RawDataset
from alsseg.seg.recipe import Recipe
from alsseg.seg.store import member_checksums

if TYPE_CHECKING:
    import torch


def _dist_info():
    """(rank, world_size, local_rank) from torchrun's variables (1 process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def dice_per_class(pred: np.ndarray, gt: np.ndarray, n_classes: int, ignore: int | None) -> np.ndarray:
    """Dice of classes 1..n-1 (NaN where absent from both), ignoring ``ignore`` voxels of ``gt``."""
    valid = np.ones(gt.shape, bool) if ignore is None else gt != ignore
    out = np.full(n_classes - 1, np.nan)
    for c in range(1, n_classes):
        p, g = (pred == c) & valid, (gt == c) & valid
        s = p.sum() + g.sum()
        if s:
            out[c - 1] = 2.0 * (p & g).sum() / s
    return out


def validate(model, cases: list[dict], patch_size, device, n_classes: int, ignore: int | None,
             network=None) -> np.ndarray:
    """Mean Dice per muscle over validation cases (on the preprocessed grid), shape ``(n-1,)``.

    ``patch_size`` (H, W) or (H, W, D) picks the 2-D or 3-D sliding window (see
    :func:`~alsseg.seg.infer.sliding_logits`); ``network`` (a NetworkConfig) gives the context
    slices of a 2.5-D network."""
    import torch

    from alsseg.seg.infer import sliding_logits
    from alsseg.seg.slices import uses_context

    model.eval()
    scores = []
    for c in cases:
        pred = np.zeros(c["labels"].shape, np.uint8)
        k = network.context_slices if network is not None else 0
        use = uses_context(k, c["slice_mm"], network.max_context_spacing_mm) if k else False
        for z0, logits in sliding_logits(model, c["image"], patch_size, device, context_slices=k, use_context=use):
            pred[:, :, z0:z0 + logits.shape[0]] = np.moveaxis(logits.argmax(1).numpy(), 0, 2)
        scores.append(dice_per_class(pred, c["labels"], n_classes, ignore))
    model.train()
    torch.set_grad_enabled(True)
    with np.errstate(all="ignore"):
        return np.nanmean(np.array(scores), axis=0) if scores else np.full(n_classes - 1, np.nan)


def _save(obj, path: Path) -> None:
    import torch

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(obj, tmp)


def _cpus() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _training_device(requested: str | None, local: int, world: int) -> torch.device:
    """The device of this process: ``requested`` (``cpu``, ``cuda``), else GPU ``local`` when there
    are GPUs, else the CPU. Raises InputError when torchrun starts more processes per node than
    there are GPUs (two processes on one GPU would deadlock NCCL)."""
    import torch

    kind = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind not in ("cpu", "cuda"):
        raise InputError("--device", f"must be cpu or cuda, not {requested!r}")
    if kind == "cpu":
        return torch.device("cpu")
    n = torch.cuda.device_count()
    if n == 0:
        raise InputError("--device", "cuda asked for, but no GPU is visible")
    if local >= n:
        raise InputError("torchrun", f"{world} processes per node but {n} GPU(s): use --nproc_per_node={n}, "
                                     "or --device cpu")
    return torch.device("cuda", local)


def train(recipe: Recipe, data: str | Path, out: str | Path, *, init: str | Path | None = None,
          resume: bool = False, quiet: bool = False, recipe_path: str | Path | None = None,
          max_iterations: int | None = None, device: str | None = None, init_member: int = 0) -> dict:
    """Train a model from a recipe on an nnU-Net raw dataset; returns the best validation metrics.

    Parameters
    ----------
    recipe : parsed recipe.
    data : dataset folder (see :mod:`alsseg.seg.dataset`).
    out : run folder (created; must be new unless ``resume``).
    init : bundle (name or path) whose weights, network and (unless ``train.init_preprocess`` is
        ``"recipe"``) preprocessing start the run (fine-tuning).
    resume : continue from ``out/checkpoints/last.pt``.
    max_iterations : stop after this many iterations in this call (for tests of interruption).
    device : ``"cpu"`` or ``"cuda"`` (one GPU per torchrun process); default: GPU when there is one.
    init_member : which network of an ensemble ``init`` bundle starts the run (0: its first,
        ``models/model.pt``); fine-tune each member in its own run to keep an ensemble.

    Raises
    ------
    InputError
        bad dataset, an existing run without ``resume``, nothing to resume, mismatching run.
    """
    import torch
    import torch.distributed as dist

    from alsseg.progress import progress_bar

    from alsseg.seg.augment import augment_batch, augment_volume_batch
    from alsseg.seg.network import build_network, masked_dice_ce
    from alsseg.seg.slices import PatchSampler, load_prepared

    rank, world, local = _dist_info()
    distributed = world > 1
    torch_device = _training_device(device, local, world)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch_device.type == "cuda" else "gloo")
    torch.set_num_threads(max(1, recipe.train.num_threads // world))

    out = Path(out)
    ds = RawDataset(data)
    ckdir = out / "checkpoints"
    last_path = ckdir / "last.pt"
    if resume and not last_path.is_file():
        raise InputError(out, "nothing to resume (no checkpoints/last.pt)")
    if not resume and (out / "run.json").exists():
        raise InputError(out, "already holds a training run; pass --resume or choose a new folder")
    if distributed:  # every rank has checked the folder before rank 0 writes to it
        dist.barrier()

    pre, net = recipe.preprocess, recipe.network
    init_state = None
    init_name = None
    init_sha256 = None
    if init is not None:
        from alsseg.seg.infer import load_bundle

        seg = load_bundle(init, device="cpu")
        if recipe.train.init_preprocess == "bundle":
            pre = seg.preprocess
        # the bundle's architecture; a recipe may add context slices (2-D → 2.5-D, inflated below)
        net = seg.network
        if recipe.network.context_slices > net.context_slices:
            net = replace(net, context_slices=recipe.network.context_slices,
                          max_context_spacing_mm=recipe.network.max_context_spacing_mm)
        members = seg.networks  # an ensemble: start from one of its members
        if not 0 <= init_member < len(members):
            raise InputError(init, f"has {len(members)} member(s); member {init_member} does not exist "
                                   f"(--init-member counts from 0)")
        base = members[init_member]
        init_state = {k: v.clone() for k, v in base.state_dict().items()}
        init_name = seg.metadata.get("path", str(init))
        # the starting bundle's member checksums, so ``alsseg export --rejoin`` can prove it joins the
        # fine-tuned network with the very ensemble it came from
        init_sha256 = [sha for _, sha in member_checksums(seg.metadata)]
        recipe = replace(recipe, preprocess=pre, network=net)
    spec = {"recipe": recipe.to_dict(), "recipe_file": str(recipe_path) if recipe_path else None,
            "data": str(Path(data).resolve()), "init": init_name, "init_member": init_member if init else None,
            "init_sha256": init_sha256,
            "preprocess": asdict(pre),
            "network": json.loads(json.dumps(asdict(net))), "world_size": world,
            "trained_on": {"device": str(torch_device), "world_size": world, "torch": torch.__version__}}
    if resume:
        old = json.loads((out / "run.json").read_text())
        if old["recipe"] != spec["recipe"]:
            raise InputError(out, "resume with a different recipe than the run was started with")
        spec = {**old, **{k: spec[k] for k in ("world_size",)}}
    n_classes = ds.n_classes
    ignore = ds.ignore
    cfg = recipe.train
    if len(cfg.patch_size) != net.spatial_dims:  # e.g. a 3-D recipe fine-tuning a 2-D bundle
        raise InputError(init if init is not None else (recipe_path or out),
                         f"train.patch_size {list(cfg.patch_size)} does not fit a {net.spatial_dims}-D network")

    # data (every rank preprocesses; rank 0 writes the cache first)
    cache = out / "cache"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            write_text_atomic(out / "run.json", json.dumps(spec, indent=1))
        train_cases = load_prepared(ds, ds.split["train"], pre, cache, progress=not quiet, workers=_cpus())
    if distributed:
        dist.barrier()
    if rank != 0:
        train_cases = load_prepared(ds, ds.split["train"], pre, cache)
    val_cases = load_prepared(ds, ds.split["val"], pre, cache, workers=_cpus()) if rank == 0 else []
    spacing = float(np.mean([c["spacing_mm"].mean() for c in train_cases]))
    pad_label = ignore if ignore is not None else 255  # z-padding of 3-D patches (and the sampler's ignore)
    loss_ignore = pad_label if net.spatial_dims == 3 else ignore
    sampler = PatchSampler(train_cases, cfg.patch_size, pad_label,
                           cfg.foreground_fraction, net.context_slices, recipe.augment.p_context_drop,
                           net.max_context_spacing_mm)

    torch.manual_seed(cfg.seed)
    model = build_network(net, n_classes).to(torch_device)
    if init_state is not None:
        from alsseg.seg.network import inflate_input_channels

        try:
            model.load_state_dict(inflate_input_channels(init_state, model.state_dict()))
        except ValueError as exc:
            raise InputError(init, f"its weights do not fit the recipe's network ({exc})") from None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    best: dict[str, Any]
    it0, elapsed0, best = 0, 0.0, {"mean_dice": -1.0}
    if resume:
        from alsseg.seg.store import safe_load_weights  # noqa: F401  (format check below)

        ck = torch.load(last_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        it0, elapsed0 = int(ck["iteration"]), float(ck["elapsed_s"])
        best = {k: (float(v) if not isinstance(v, (list, dict)) else v) for k, v in ck["best"].items()}
    ddp_model = model
    if distributed:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if torch_device.type == "cuda" else None)

    writer = None
    log_path = out / "log.csv"
    muscles = [m.abbrev for m in ds.anatomy.muscles]
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tb"), purge_step=it0 if it0 else None)
        except ImportError:  # tensorboard optional: the CSV log stays, and the user is told
            writer = None
            print("alsseg: note: tensorboard is not installed (pip install 'alsseg[tensorboard]'); "
                  f"training curves go to {log_path} only", file=sys.stderr)
        if not log_path.exists():
            write_text_atomic(log_path, ",".join(["iteration", "epoch", "loss", "lr", "elapsed_s"]
                                                 + [f"dice_{m}" for m in muscles] + ["dice_mean"]) + "\n")
        elif resume:  # drop lines past the checkpoint (written after it, lost with the interruption)
            rows = log_path.read_text().splitlines()
            kept = [rows[0]] + [r for r in rows[1:] if int(r.split(",")[0]) <= it0]
            write_text_atomic(log_path, "\n".join(kept) + "\n")


    def end_epoch(it, lr, best, running, final=False):
        """Validate, log, checkpoint (rank 0); every rank waits."""
        epoch = (it - 1) // cfg.iterations_per_epoch + 1
        if rank == 0:
            do_val = val_cases and (epoch % cfg.val_every_epochs == 0 or it >= cfg.iterations or final)
            dice = validate(model, val_cases, cfg.patch_size, torch_device, n_classes, ignore, net) if do_val \
                else np.full(n_classes - 1, np.nan)
            mean = float(np.nanmean(dice)) if np.isfinite(dice).any() else float("nan")
            el = elapsed0 + time.time() - t_start
            mloss = float(np.mean(running)) if running else float("nan")
            running = []
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([it, epoch, f"{mloss:.5f}", f"{lr:.6g}", f"{el:.1f}"]
                                       + [f"{d:.4f}" for d in dice] + [f"{mean:.4f}"])
            if writer is not None:
                writer.add_scalar("loss/train", mloss, it)
                writer.add_scalar("lr", lr, it)
                if np.isfinite(mean):
                    writer.add_scalar("dice/mean", mean, it)
                    for m, d in zip(muscles, dice):
                        writer.add_scalar(f"dice/{m}", float(d), it)
                writer.flush()
            if np.isfinite(mean) and mean > best["mean_dice"]:
                best = {"mean_dice": mean, "iteration": it,
                        "dice": {m: round(float(d), 4) for m, d in zip(muscles, dice)}}
                _save({k: v.detach().cpu() for k, v in model.state_dict().items()}, ckdir / "best.pt")
            state = {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                     "optimizer": opt.state_dict(), "iteration": it, "elapsed_s": el, "best": best}
            _save(state, last_path)
            if not val_cases:  # no validation split: best = last
                _save(state["model"], ckdir / "best.pt")
            spec["best"] = best
            spec["iterations_done"] = it
            spec["elapsed_s"] = round(el, 1)
            write_text_atomic(out / "run.json", json.dumps(spec, indent=1))
        else:
            running = []
        if distributed:
            dist.barrier()
        return best, running

    last_saved = it0
    per_rank_batch = max(1, cfg.batch_size // world)
    budget_s = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    stop_at = cfg.iterations if max_iterations is None else min(cfg.iterations, it0 + max_iterations)
    gen = torch.Generator(device=torch_device)
    t_start = time.time()
    bar = progress_bar(total=cfg.iterations, initial=it0, desc="train", unit="it", show=not quiet and rank == 0)
    running = []
    it = it0
    lr = cfg.learning_rate
    model.train()
    while it < stop_at:
        elapsed = elapsed0 + time.time() - t_start
        if budget_s is not None:
            # all ranks agree on stopping (rank 0's clock decides)
            flag = torch.tensor([1.0 if elapsed >= budget_s else 0.0], device=torch_device)  # NCCL: on the GPU
            if distributed:
                dist.broadcast(flag, 0)
            if flag.item() > 0:
                break
        progress = it / cfg.iterations
        if budget_s is not None:
            progress = max(progress, elapsed / budget_s)
        lr = cfg.learning_rate * (1.0 - min(progress, 0.999)) ** 0.9
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys = sampler.sample(per_rank_batch, cfg.seed, rank, it)
        gen.manual_seed(int(cfg.seed) * 1_000_003 + rank * 7919 + it)
        x, y = torch.from_numpy(xs).to(torch_device), torch.from_numpy(ys).to(torch_device)
        if net.spatial_dims == 3:  # the same in-plane transform in every slice of a patch
            x, y = augment_volume_batch(x, y, recipe.augment, gen, spacing, pad_label)
        else:
            x, y = augment_batch(x, y, recipe.augment, gen, spacing)
        logits = ddp_model(x)
        loss = masked_dice_ce(logits, y, loss_ignore, cfg.dice_weight, cfg.ce_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 12.0)
        opt.step()
        it += 1
        running.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}", best=f"{best['mean_dice']:.3f}")
        if it % cfg.iterations_per_epoch == 0 or it >= stop_at:
            best, running = end_epoch(it, lr, best, running)
            last_saved = it
    if it != last_saved:  # stopped by the time budget between epochs: validate the final weights too
        best, running = end_epoch(it, lr, best, running, final=True)
    bar.close()
    if writer is not None:
        writer.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return {**best, "iterations_done": it}
