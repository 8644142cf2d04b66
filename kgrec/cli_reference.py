"""The command-line reference page (``docs/cli.md``), written from the commands themselves.

    python -m kgrec.cli_reference            # rewrites docs/cli.md

``tests/test_cli.py`` checks that the page equals :func:`render`, so it cannot drift from the
commands' own help.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer

from .cli import app

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render() -> str:
    """The reference as Markdown: each command's usage, its help and a table of its options."""
    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="kgrec")
    lines = ["# kgrec command line", "",
             "Written from the commands by `python -m kgrec.cli_reference`; `kgrec COMMAND --help` prints the same.",
             "", "| command | what it does |", "|---|---|"]
    commands = [(name, group.get_command(ctx, name)) for name in group.list_commands(ctx)]
    for name, cmd in commands:
        lines.append(f"| [`{name}`](#kgrec-{name}) | {_first_line(cmd.help)} |")
    lines += ["", "Every command takes `--help`; `kgrec --version` prints the version. A user error prints one "
              "line (`error: <file> row <n>: <problem>. Fix: <fix>`) and exits with code 2."]
    for name, cmd in commands:
        sub = click.Context(cmd, info_name=name, parent=ctx)
        pieces = " ".join(cmd.collect_usage_pieces(sub))
        lines += ["", f"## kgrec {name}", "", "```", f"kgrec {name} {pieces}".rstrip(), "```", "",
                  _clean(cmd.help), ""]
        params = [p for p in cmd.get_params(sub) if p.name != "help"]
        if params:
            lines += ["| argument / option | meaning | default |", "|---|---|---|"]
            for p in params:
                lines.append(f"| {_names(p)} | {_clean(getattr(p, 'help', '') or '')} | {_default(p)} |")
    return "\n".join(lines).rstrip() + "\n"


def _names(param: click.Parameter) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`" + ("" if param.required else " (optional)")
    opts = list(param.opts) + list(getattr(param, "secondary_opts", []))
    return ", ".join(f"`{o}`" for o in opts)


def _default(param: click.Parameter) -> str:
    if getattr(param, "required", False):
        return "required"
    value = param.default
    if value is None or value == () or callable(value):
        return ""
    if isinstance(value, bool) and getattr(param, "secondary_opts", None):
        return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
    return f"`{value}`"


def _clean(text: str | None) -> str:
    """Help text on one line, with Markdown's table separator escaped."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _first_line(text: str | None) -> str:
    return _clean((text or "").strip().split("\n\n")[0])


if __name__ == "__main__":
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}", file=sys.stderr)
