"""The ``tfgradlint`` command (click).

Exit codes: 0 nothing reported, 1 findings, 2 usage, configuration or internal error.
``--exit-zero`` turns 1 into 0, never 2 into 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import click

from tfgradlint import __version__
from tfgradlint.config import OUTPUT_FORMATS, ConfigError, Overrides, validate_selectors

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _DefaultToCheck(click.Group):
    """``tfgradlint PATHS`` means ``tfgradlint check PATHS``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")):
            args = ["check", *args]
        return super().parse_args(ctx, args)


def _split_codes(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out += [c.strip() for c in v.split(",") if c.strip()]
    return tuple(out)


def _fail(message: str) -> None:
    click.echo(f"tfgradlint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


@click.group(cls=_DefaultToCheck, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfgradlint")
def main() -> None:
    """Find TensorFlow gradient bugs: custom gradients, tapes, gradient registrations."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rule codes, prefixes (TGL1) or names to enable (replaces the default set).")
@click.option("--extend-select", multiple=True, help="Rule codes, prefixes or names to enable in addition.")
@click.option("--ignore", multiple=True, help="Rule codes, prefixes or names to disable.")
@click.option("--preview/--no-preview", default=None, help="Also run preview rules.")
@click.option("--output-format", type=click.Choice(OUTPUT_FORMATS), default=None, help="How to print findings (default: full).")
@click.option("--output-file", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write the report to this file.")
@click.option("--statistics", is_flag=True, help="Count findings per rule.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (errors still exit 2).")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary.")
@click.option("--stdin-filename", default=None, help="The name of the file read from standard input (PATHS = -).")
@click.option("--force-exclude", is_flag=True, help="Apply excludes to paths named on the command line too.")
@click.option("--no-respect-gitignore", is_flag=True, help="Lint files that .gitignore excludes.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Use this configuration file only.")
def check(
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    preview: Optional[bool],
    output_format: Optional[str],
    output_file: Optional[Path],
    statistics: bool,
    exit_zero: bool,
    quiet: bool,
    stdin_filename: Optional[str],
    force_exclude: bool,
    no_respect_gitignore: bool,
    config_path: Optional[Path],
) -> None:
    """Lint PATHS (default: the current folder)."""
    from tfgradlint.report import ReportContext, writer
    from tfgradlint.runner import RunOptions, run

    try:
        select_codes = _split_codes(select) if select else None
        extend_codes = _split_codes(extend_select)
        ignore_codes = _split_codes(ignore)
        for name, codes in (("--select", select_codes or ()), ("--extend-select", extend_codes), ("--ignore", ignore_codes)):
            validate_selectors(codes, name)
        overrides = Overrides(
            select=select_codes,
            extend_select=extend_codes,
            ignore=ignore_codes,
            preview=preview,
            output_format=output_format,
            respect_gitignore=False if no_respect_gitignore else None,
        )
        stdin_text = None
        path_list = list(paths) or [Path(".")]
        if path_list == [Path("-")]:
            stdin_text = sys.stdin.buffer.read()
            from tfgradlint.engine import UnreadableSource, decode_source

            try:
                stdin_text = decode_source(stdin_text).text
            except UnreadableSource as exc:
                _fail(f"standard input: {exc}")
        elif Path("-") in path_list:
            raise ConfigError("'-' (standard input) cannot be combined with other paths")
        result = run(
            RunOptions(
                paths=path_list,
                overrides=overrides,
                config_path=config_path,
                force_exclude=force_exclude,
                stdin_text=stdin_text,
                stdin_filename=stdin_filename,
            )
        )
        fmt = output_format
        if fmt is None:
            fmt = result.outcomes[0].settings.output_format if result.outcomes else "full"
    except ConfigError as exc:
        _fail(str(exc))
        return

    ctx = ReportContext(
        format=fmt,
        sources=result.sources,
        statistics=statistics,
        quiet=quiet,
        files_checked=result.files_checked,
    )
    write = writer(fmt)
    if output_file is not None:
        try:
            with open(output_file, "w", encoding="utf-8") as out:
                write(result.findings, out, ctx)
        except OSError as exc:
            _fail(f"cannot write {output_file}: {exc.strerror}")
    else:
        write(result.findings, sys.stdout, ctx)
    for err in result.errors:
        click.echo(f"tfgradlint: error: {err}", err=True)
    if result.errors:
        sys.exit(EXIT_ERROR)
    if result.findings and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_OK)


@main.command("rule")
@click.argument("code")
def rule_cmd(code: str) -> None:
    """Print the documentation of rule CODE (a code such as TGL201, or a name)."""
    from tfgradlint.rules import rule_by_code_or_name

    rule = rule_by_code_or_name(code)
    if rule is None:
        _fail(f"unknown rule {code!r} (see `tfgradlint rules`)")
        return
    click.echo(rule.documentation(), nl=False)


@main.command("rules")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text")
def rules_cmd(output_format: str) -> None:
    """List every rule with its code, name, severity and default."""
    from tfgradlint.rules import all_rules

    rules = all_rules()
    if output_format == "json":
        data = [
            {
                "code": r.code,
                "name": r.name,
                "severity": r.severity,
                "default": r.default,
                "summary": r.summary,
                "fix": r.fix_safety,
                "needs_project": r.needs_project,
            }
            for r in rules
        ]
        click.echo(json.dumps(data, indent=2))
        return
    width = max(len(r.name) for r in rules)
    for r in rules:
        click.echo(f"{r.code}  {r.name:<{width}}  {r.severity:<7}  {r.default:<7}  {r.summary}")
