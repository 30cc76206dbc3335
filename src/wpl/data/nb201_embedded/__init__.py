"""NAS-Bench-201's CIFAR-10 ground truth, compact (see ``wpl.data.nb201``; rebuilt by tools/make_embedded_nb201.py).

Source: NAS-Bench-201 (Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020) test accuracies of all 15,625 cells after its 200-epoch training,
and two published supernets' estimates of the same cells (one-shot and few-shot, as released with
Zhao et al., "Few-shot Neural Architecture Search", ICML 2021). Published measurements, values
unchanged (two decimals); cite NAS-Bench-201 where they are used.
"""
