"""The commands in the README and docs/ cannot rot: each one's flags parse (search and train-final: parsed and
checked as the command would), or (the other verbs) are flags that verb's --help lists."""

import re
import shlex
from pathlib import Path

import pytest

from wpl.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(text: str) -> list[str]:
    """The shell code blocks of a markdown page (fenced with ```, ```bash or ```sh)."""
    out, lang, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                if lang in ("", "bash", "sh"):
                    out.append("\n".join(lines))
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def commands() -> list[tuple[str, list[str]]]:
    """(page, argv after the program) of every complete `wpl VERB`/`python main.py` line in a code block."""
    out = []
    for page in PAGES:
        for block in blocks(page.read_text()):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#.*$", "", line.strip().removeprefix("$ "))
                line = re.sub(r"^torchrun .*?-m wpl ", "wpl ", line)  # a data-parallel job: the same command
                if not re.match(r"(wpl [a-z-]+|python main\.py)( |$)", line) or re.search(r"[<\[|]|\.\.\.", line):
                    continue
                argv = shlex.split(line)
                out.append((page.name, ["search", *argv[2:]] if argv[0] == "python" else argv[1:]))
    return out


CASES = commands()


def test_the_pages_have_commands_to_check() -> None:
    assert len(CASES) >= 10 and {v[0] for _, v in CASES} >= {"search", "train-final"}


@pytest.mark.filterwarnings("ignore:--start_using_fisher")  # the original CNN command's WPL never starts
@pytest.mark.parametrize("page, argv", CASES, ids=[f"{p}:{' '.join(a)[:60]}" for p, a in CASES])
def test_a_documented_command_parses(page: str, argv: list[str], capsys) -> None:
    verb, args = argv[0], argv[1:]
    if verb == "search":
        from wpl.nas.search.flags import parse_search_args

        parse_search_args(args)  # exits 2 with the flag named if one is unknown or bad
    elif verb == "train-final":
        from wpl.nas.final.flags import parse_final_args

        parse_final_args(args)
    else:
        with pytest.raises(SystemExit):
            main([verb, "--help"])
        listed = capsys.readouterr().out
        for flag in (a.split("=")[0] for a in args if a.startswith("--")):
            assert flag in listed, f"{page}: wpl {verb} has no {flag}"
