"""Progress bars in a log file are whole lines: no carriage returns, no cursor moves."""

import io

from wpl.progress import LineWriter, bar


def test_a_bar_without_a_terminal_writes_whole_lines() -> None:
    log = io.StringIO()  # not a terminal
    outer = bar(range(3), desc="search", file=log)
    for _ in outer:
        for _ in bar(range(2), desc="epoch shared", leave=False, file=log):
            pass
    outer.close()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines and all(line.strip() for line in lines)
    assert lines[0].startswith("search:") and lines[-1].startswith("search: 100%")


def test_line_writer_drops_escapes_and_blank_redraws() -> None:
    out = io.StringIO()
    LineWriter(out).write("\rstep 1/3\x1b[A\r   \rstep 2/3\n")
    assert out.getvalue() == "step 1/3\nstep 2/3\n"
