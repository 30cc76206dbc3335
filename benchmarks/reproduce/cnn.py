"""The paper's ENAS micro-CNN claim on real CIFAR-10: forgetting while searching, plain vs WPL, and each
run's derived cell trained from scratch (error rates).

Usage: python -m benchmarks.reproduce.cnn --data_dir DIR [--quick] [--seeds 0,1,2]
DIR holds cifar10/ (../shared/data/cifar10/get DIR/cifar10). Writes benchmarks/results/reproduce_cnn.json
and .png (``_quick`` with --quick).

The README's CNN command (whose WPL, as in the original, never starts: ``--start_using_fisher=50000``)
at its CPU example's size (20 derive candidates instead of 100, and 1 epoch of final training, so the
full mode's three seeds fit 90 minutes on 2 cores); plain to the branch epoch, then plain, original
(the README's WPL settings, switched on at the branch) and recommended. Everything else as in
reproduce_rnn.py.
"""

from __future__ import annotations

from benchmarks.lib.search_repro import Spec, main

SPEC = Spec(
    name="cnn", dataset="cifar10", unit="error", lr=0.1,
    flags=("--dataset=cifar10 --network_type=micro_cnn --num_blocks=5 --cnn_num_repeat_normal=5 --batch_size=32 "
           "--test_batch_size=16 --train_controller=True --start_training_controller=2 --max_epoch=310 "
           "--controller_max_step=100 --fisher_clip_by_norm=10.0 --momentum=False --alpha_decay_mode=1 "
           "--alpha_fisher=60.0 --alpha_decay=1. --alpha_decay_after=15 --num_batch_per_iter=7 "
           "--set_fisher_zero_per_iter=3 --stop_training_controller=1000 --nb_batch_reward_controller=20 "
           "--log_level=INFO --entropy_coeff=0.0001 --controller_lr=0.0035 --controller_max_step=1000 "
           "--policy_batch_size=1 --shared_max_step=70 --reward_c=1. --ema_baseline_decay=0.99 "
           "--softmax_temperature=8. "
           # the README's CPU example
           "--cnn_final_filter_size=32 --cnn_num_repeat_normal=1 --controller_max_step=100 "
           "--nb_batch_reward_controller=5 "
           # 20 candidates at each derive (the default 100 take 25 s an epoch), so three seeds fit 90 minutes
           "--derive_num_sample=20").split(),
    quick_flags=("--shared_max_step=15 --controller_max_step=15 --nb_batch_reward_controller=2 "
                 "--derive_num_sample=10 --forgetting_batches=2").split(),
    final_flags=("--final_channels=8 --final_num_cells=5 --final_batch_size=64 --final_drop_path=0.1 "
                 "--final_auxiliary=False").split(),
    quick_final_flags=["--final_channels=4", "--final_num_cells=3"],
    modes={"full": {"branch": 2, "epochs": 2, "final_epochs": 1},
           "quick": {"branch": 1, "epochs": 1, "final_epochs": 1}},
    paper={"final_test_error_percent": [4.87, 3.81], "order": "plain, WPL"},
    scale="the README's CNN command + CPU example: 5-block micro cells, 32 final filters, one normal cell per "
          "stage, 70 shared steps × 7 batches of 32 and 100 controller steps per epoch, real CIFAR-10; "
          "final training at 8 channels × 5 cells, batch 64 (the README's CPU recipe)",
)

if __name__ == "__main__":
    main(SPEC, __doc__)
