"""Averaging of streamed network output: the streams are runs of consecutive slices
``(z0, logits (k, C, X', Y'), ...)`` as :func:`alsseg.seg.infer.sliding_logits` yields them,
combined run by run so memory stays bounded whatever the volume size."""

from __future__ import annotations


def mean_with_mirrored(straight, mirrored):
    """``(z0, log of the mean softmax, the mirrored logits flipped back)`` of two
    :func:`alsseg.seg.infer.sliding_logits` streams over the same slices, the second over the
    left-right mirrored volume."""
    import torch

    for (z0, a), (z1, b) in zip(straight, mirrored, strict=True):
        assert z0 == z1 and a.shape == b.shape
        b = torch.flip(b, dims=[2])
        mean = 0.5 * (torch.softmax(a, 1) + torch.softmax(b, 1))
        yield z0, torch.log(mean.clamp_min(1e-12)), b


def mean_with_neighbours(stream):
    """A stream of ``(z0, logits (k, C, X', Y'), mirrored logits or None)`` runs of consecutive
    slices → the same runs with each slice's logits replaced by the log of the mean softmax of the
    slice and its two neighbours (an end slice stands in for its missing neighbour), the mirrored
    logits alike. The result does not depend on how the slices are cut into runs."""
    import torch

    def smooth(p: torch.Tensor, before: torch.Tensor | None, after: torch.Tensor | None) -> torch.Tensor:
        ext = torch.cat([p[:1] if before is None else before[None], p, p[-1:] if after is None else after[None]])
        return torch.log(((ext[:-2] + ext[1:-1] + ext[2:]) / 3.0).clamp_min(1e-12))

    pending = None  # the previous run, waiting for the first slice of the next one
    before: list = [None, None]  # last slice of the run before the pending one (straight, mirrored)
    for z0, logits, mirrored in stream:
        probs = [torch.softmax(logits, 1), None if mirrored is None else torch.softmax(mirrored, 1)]
        if pending is not None:
            pz, pp = pending
            yield pz, smooth(pp[0], before[0], probs[0][0]), \
                None if pp[1] is None else smooth(pp[1], before[1], probs[1][0])
            before = [pp[0][-1], None if pp[1] is None else pp[1][-1]]
        pending = (z0, probs)
    if pending is not None:
        pz, pp = pending
        yield pz, smooth(pp[0], before[0], None), None if pp[1] is None else smooth(pp[1], before[1], None)
