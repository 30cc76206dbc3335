"""The original repository's GIF script, kept so its command runs as written:

    python generate_gif.py --model_name=ptb_rnn-train --output=sample.gif

It is ``wpl gif`` with the same flags.
"""

from wpl_entry import run

if __name__ == "__main__":
    run("gif")
