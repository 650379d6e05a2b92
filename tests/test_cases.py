"""alsseg.cases: labelled cases from the synthetic generator, above both seg and synth."""

from __future__ import annotations

import numpy as np


def test_synthetic_cases_are_neutral_cases_on_their_image_grid():
    from alsseg.cases import disease_of, synthetic_cases
    from alsseg.io.case import Case
    from alsseg.seg.dataset import Case as SegCase

    assert SegCase is Case  # the dataset writer takes the neutral type
    cases = list(synthetic_cases([5], ["mese_e1", "t1w"], grids_per_subject=2))
    assert [c.case_id for c in cases] == ["synth00005__mese_e1", "synth00005__t1w"]
    for c in cases:
        assert isinstance(c, Case) and c.labels.shape == c.image.shape and c.labels.dtype == np.int16
        right = set(np.unique(c.labels).tolist()) & set(range(1, 8))
        left = set(np.unique(c.labels).tolist()) & set(range(11, 18))
        assert len(right) >= 5 and len(left) >= 5  # both legs, most muscles
    # the two contrasts sit on two different random grids of the same subject
    assert cases[0].image.shape != cases[1].image.shape
    assert disease_of(5, 0.5) in ("als", "healthy") and disease_of(5, 0.0) == "healthy"
