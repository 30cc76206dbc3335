# The original README's two search commands with the README's CPU-example flags appended (3 epochs,
# WPL as written), as $RNN and $CNN; sourced by the benchmark scripts after they set $data (the
# folder holding ptb/ and cifar10/).
# shellcheck shell=bash
RNN="--comment=rnn-train --train_controller=True --start_training_controller=1 --start_using_fisher=5 \
--max_epoch=150 --shared_max_step=60 --save_epoch=30 --fisher_clip_by_norm=10.0 --alpha_fisher=60.0 --alpha_decay=1. \
--alpha_decay_after=15 --set_fisher_zero_per_iter=2 --policy_batch_size=1 --controller_max_step=2000 --num_blocks=12 \
--num_batch_per_iter=7 --alpha_decay=1. --alpha_decay_after=15 --alpha_small_scale=.0001 --reward_c=80 \
--data_dir=$data --shared_embed=200 --shared_hid=200 --shared_max_step=30 --controller_max_step=300 \
--derive_num_sample=10 --test_batch_size=64 --max_epoch=3"
CNN="--comment=cnn-train --dataset=cifar10 --network_type=micro_cnn --num_blocks=5 --cnn_num_repeat_normal=5 \
--batch_size=32 --test_batch_size=16 --train_controller=True --start_using_fisher=50000 --start_training_controller=2 \
--max_epoch=310 --controller_max_step=100 --save_epoch=10 --fisher_clip_by_norm=10.0 --momentum=False \
--alpha_decay_mode=1 --alpha_fisher=60.0 --alpha_decay=1. --alpha_decay_after=15 --num_batch_per_iter=7 \
--set_fisher_zero_per_iter=3 --stop_training_controller=1000 --nb_batch_reward_controller=20 --log_level=INFO \
--entropy_coeff=0.0001 --controller_lr=0.0035 --controller_max_step=1000 --policy_batch_size=1 --shared_max_step=70 \
--reward_c=1. --ema_baseline_decay=0.99 --softmax_temperature=8. --resume=True --resume_with_new_params=False \
--data_dir=$data --cnn_final_filter_size=32 --cnn_num_repeat_normal=1 --controller_max_step=100 \
--nb_batch_reward_controller=5 --max_epoch=3"
