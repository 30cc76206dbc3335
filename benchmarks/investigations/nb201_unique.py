"""NAS-Bench-201: does sampling only the 6,466 non-isomorphic cells (``--nb201_unique=true``) rank better?

Usage: python -m benchmarks.investigations.nb201_unique --data_dir DIR [--quick] [--seeds 0,1,2,3,4] [--work_dir W]
DIR holds cifar10/. Writes benchmarks/results/reproduce_nb201_unique.json (``_quick`` with --quick).

Two plain random-search arms (nb201_arms.py): one samples uniformly over all 15,625 cells, the other over the
isomorphism classes (``--nb201_unique=true``). Ning et al. (NeurIPS 2021) report that de-duplicated sampling
doubles P@5%.
"""

from __future__ import annotations

from benchmarks.investigations.nb201_arms import Arms, compare

STUDY = Arms("nb201_unique", {"all": ["--nb201_unique=False"], "unique": ["--nb201_unique=True"]},
             "reported (Ning et al.: 0.21 → 0.47 on their supernet)")

if __name__ == "__main__":
    compare(STUDY, __doc__)
