"""NAS-Bench-201: does stepping the weights a cell did not use (PyTorch 0.4.1's ``zero_grad``) change ranking?

Usage: python -m benchmarks.investigations.nb201_zero_grad --data_dir DIR [--quick] [--seeds 0,1,2,3,4] [--work_dir W]
DIR holds cifar10/. Writes benchmarks/results/reproduce_nb201_zero_grad.json (``_quick`` with --quick).

Two plain random-search arms (nb201_arms.py) that train the same cells on the same batches: ``all`` is
PyTorch 2.x's gradient clearing (a weight the step's cell did not use gets no step), ``zero`` is 0.4.1's, which
the original code ran on (``--shared_zero_grad=zero``: every weight used before keeps receiving momentum and
weight decay). Its ``all`` arm is nb201_unique.py's: with the same --work_dir layout, link
``seedS/cifar10_all`` from that study's work folder to reuse it.
"""

from __future__ import annotations

from benchmarks.investigations.nb201_arms import Arms, compare

STUDY = Arms("nb201_zero_grad",
             {"all": ["--nb201_unique=False"], "zero": ["--nb201_unique=False", "--shared_zero_grad=zero"]},
             "reported (the pre-fix 'original' lead: τ +0.069 [−0.030, +0.168])")

if __name__ == "__main__":
    compare(STUDY, __doc__)
