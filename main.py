"""The original repository's entry point, kept so its commands run as written:

    python main.py --network_type=rnn --dataset=ptb --data_dir=DIR ...

It is ``wpl search`` with the same flags.
"""

from wpl_entry import run

if __name__ == "__main__":
    run("search")
