"""The paper's ENAS-RNN claims on real Penn Treebank: forgetting while searching, plain vs WPL, and each
run's derived cell trained from scratch.

Usage: python -m benchmarks.reproduce.rnn --data_dir DIR [--quick] [--seeds 0,1,2]
DIR holds ptb/. Writes benchmarks/results/reproduce_rnn.json and .png (``_quick`` with --quick).

Per seed, one plain ENAS search (the README's RNN command at its CPU example's size, with a third of its
controller steps so the full mode's three seeds fit 90 minutes on 2 cores) runs to the branch epoch.
The variants continue from that checkpoint with their own flags: plain (no WPL), original (the README's
WPL as written: α = 60 compounded into F, clip 10) and recommended (what the mechanism study chose;
BENCHMARKS.md). Runs agree until WPL starts, as the original's ``--start_using_fisher`` makes
them. Each variant's cell derived at its last epoch is trained from scratch with the same recipe and
seed and tested once. Resumable: finished searches and trainings are kept, unfinished ones resume;
finished seeds go to results/reproduce_rnn_seeds/ (commit them: a fresh clone continues from there).
"""

from __future__ import annotations

from benchmarks.lib.search_repro import Spec, main

SPEC = Spec(
    name="rnn", dataset="ptb", unit="ppl", lr=20.0,
    flags=("--train_controller=True --start_training_controller=1 --shared_max_step=60 "
           "--fisher_clip_by_norm=10.0 --alpha_fisher=60.0 --alpha_decay=1. --alpha_decay_after=15 "
           "--set_fisher_zero_per_iter=2 --policy_batch_size=1 --controller_max_step=2000 --num_blocks=12 "
           "--num_batch_per_iter=7 --alpha_small_scale=.0001 --reward_c=80 "
           # the README's CPU example
           "--shared_embed=200 --shared_hid=200 --shared_max_step=30 --controller_max_step=300 "
           "--derive_num_sample=10 --test_batch_size=64 "
           # a third of its controller steps, so three seeds fit in 90 minutes
           "--controller_max_step=100").split(),
    quick_flags="--shared_max_step=10 --controller_max_step=40 --derive_num_sample=5 --forgetting_batches=2".split(),
    final_flags=("--final_embed=200 --final_hid=200 --final_dropout=0.4 --final_dropouti=0.2 --final_dropoute=0.1 "
                 "--final_wdrop=0.2").split(),
    quick_final_flags=["--final_embed=64", "--final_hid=64"],
    modes={"full": {"branch": 2, "epochs": 2, "final_epochs": 1},
           "quick": {"branch": 1, "epochs": 2, "final_epochs": 1}},
    paper={"mean_diff_peak_ppl": [57, 15], "best5_diff_ppl": [80, 43], "max_diff_ppl": [190, 108],
           "reward": [0.44, 0.54], "final_test_ppl": [65.01, 61.9], "order": "plain, WPL"},
    scale="the README's RNN command + CPU example: embedding = hidden = 200, 30 shared steps × 7 batches and "
          "100 controller steps per epoch (the CPU example has 300), real PTB; final training at 200/200 (the "
          "README's CPU recipe)",
)

if __name__ == "__main__":
    main(SPEC, __doc__)
