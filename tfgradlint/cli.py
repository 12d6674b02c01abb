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


def entry() -> None:
    """The ``tfgradlint`` process (console script, ``python -m tfgradlint``): ``main``, then
    an immediate exit once the output is flushed. Python's own teardown would free every
    text, index and tree of the run one object at a time (about 0.06 s after a run over
    TensorFlow Probability) for nothing: the process ends anyway. Everything the run opens
    (worker processes, the cache, output files) is closed before ``main`` returns."""
    import os

    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        code = code or 1
    try:
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(code)


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
@click.option("--fix/--no-fix", default=None, help="Apply safe fixes.")
@click.option("--unsafe-fixes/--no-unsafe-fixes", default=None, help="Also apply (with --fix) or show unsafe fixes.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option("--show-fixes", is_flag=True, help="List what was fixed.")
@click.option("--confirm", is_flag=True, help="Confirm findings by running TensorFlow (needs tfgradlint[runtime]).")
@click.option("--confirm-timeout", type=float, default=None, help="Seconds per confirmed finding (default 60).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the cache.")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Where the cache lives.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=None, help="Worker processes (default: one per core; 1 = serial).")
@click.option("--baseline", "baseline", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Report only findings not in this baseline file.")
@click.option("--write-baseline", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Record the current findings in this baseline file.")
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
    fix: Optional[bool],
    unsafe_fixes: Optional[bool],
    diff: bool,
    show_fixes: bool,
    confirm: bool,
    confirm_timeout: Optional[float],
    no_cache: bool,
    cache_dir: Optional[Path],
    jobs: Optional[int],
    baseline: Optional[Path],
    write_baseline: Optional[Path],
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
        if confirm:
            from tfgradlint.config import SettingsResolver
            from tfgradlint.runtime import tensorflow_missing_message

            where = Path(stdin_filename).absolute() if stdin_filename else path_list[0].absolute()
            runtime_python = SettingsResolver(overrides, config_path).for_path(where).runtime_option("python")
            missing = tensorflow_missing_message(runtime_python)
            if missing:
                _fail(missing)
        result = run(
            RunOptions(
                paths=path_list,
                overrides=overrides,
                config_path=config_path,
                force_exclude=force_exclude,
                stdin_text=stdin_text,
                stdin_filename=stdin_filename,
                no_cache=no_cache,
                cache_dir=cache_dir,
                jobs=jobs,
            )
        )
        first = result.outcomes[0].settings if result.outcomes else None
        fmt = output_format or (first.output_format if first else "full")
        want_fix = fix if fix is not None else bool(first and first.fix)
        want_unsafe = unsafe_fixes if unsafe_fixes is not None else bool(first and first.unsafe_fixes)
    except ConfigError as exc:
        _fail(str(exc))
        return

    ctx = ReportContext(
        format=fmt,
        sources=result.sources,
        statistics=statistics,
        quiet=quiet,
        files_checked=result.files_checked,
        show_fixes=show_fixes,
    )
    ctx.unsafe_fixes = want_unsafe
    report_out = sys.stdout
    would_fix = 0
    if want_fix or diff:
        from tfgradlint.fixes import fix_run

        # Standard input is never written back: the fixed text goes to standard output
        # (the report to standard error), as an editor expects.
        outcome = fix_run(result, unsafe=want_unsafe, write=not diff and stdin_text is None)
        result.errors.extend(outcome.errors)
        if diff:
            sys.stdout.write(outcome.diff)
            would_fix = len(outcome.fixed)
        else:
            result.findings = outcome.remaining
            result.sources.update(outcome.texts)  # code frames and baselines: the fixed text
            ctx.fixed = len(outcome.fixed)
            ctx.fixed_findings = outcome.fixed
            if stdin_text is not None:
                name = result.outcomes[0].source_file.display if result.outcomes else "-"
                sys.stdout.write(outcome.texts.get(name, stdin_text))
                sys.stdout.flush()
                report_out = sys.stderr
    if not want_unsafe:
        # Without --unsafe-fixes, unsafe fixes are not offered (only counted in the hint).
        ctx.unsafe_fixes_hidden = sum(
            1 for f in result.findings if f.fix is not None and f.fix.applicability == "unsafe"
        )
    if write_baseline is not None:
        from tfgradlint.baseline import BaselineError, write_baseline_file

        try:
            write_baseline_file(write_baseline, result.findings, result.sources)
        except BaselineError as exc:
            _fail(str(exc))
        click.echo(
            f"tfgradlint: recorded {len(result.findings)} finding(s) in {write_baseline}; "
            f"later runs with --baseline {write_baseline} report only new ones",
            err=True,
        )
        # Everything found is now in the baseline: the run succeeds, as Ruff's --add-noqa does.
        result.findings = []
    if baseline is not None:
        from tfgradlint.baseline import BaselineError, filter_with_baseline

        try:
            result.findings = filter_with_baseline(baseline, result.findings, result.sources)
        except BaselineError as exc:
            _fail(str(exc))
    if confirm:
        from tfgradlint.runtime.confirm import confirm_findings

        confirm_findings(
            result.findings,
            result.sources,
            timeout=confirm_timeout,
            settings=first,
            progress=sys.stderr.isatty(),
        )
    write = writer(fmt)
    if diff:
        pass  # the diff is the output
    elif output_file is not None:
        try:
            with open(output_file, "w", encoding="utf-8") as out:
                write(result.findings, out, ctx)
        except OSError as exc:
            _fail(f"cannot write {output_file}: {exc.strerror}")
    else:
        write(result.findings, report_out, ctx)
    for err in result.errors:
        click.echo(f"tfgradlint: error: {err}", err=True)
    if result.errors:
        sys.exit(EXIT_ERROR)
    remaining = result.findings
    if diff:
        # --diff is about the fixes only (as in Ruff): 1 when there is something to fix.
        remaining = [None] * would_fix
    if remaining and not exit_zero:
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


@main.command("clean")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
def clean_cmd(cache_dir: Optional[Path]) -> None:
    """Remove the cache."""
    from tfgradlint.cache import clean

    removed = clean(cache_dir)
    click.echo(f"Removed {removed}." if removed else "No cache to remove.")


@main.command("lsp")
def lsp_cmd() -> None:
    """Run the language server on standard input/output."""
    from tfgradlint.lsp import serve

    serve()


@main.command("gradcheck", context_settings={"ignore_unknown_options": False})
@click.argument("targets", nargs=-1, required=True)
@click.option("--output-format", type=click.Choice(["full", "json"]), default="full")
@click.option("--timeout", type=float, default=None, help="Seconds per function (default 120).")
def gradcheck_cmd(targets: tuple[str, ...], output_format: str, timeout: Optional[float]) -> None:
    """Check custom gradients numerically: PATH[::FUNCTION]... (needs tfgradlint[runtime])."""
    from tfgradlint.config import ConfigError, Overrides, SettingsResolver
    from tfgradlint.runtime import tensorflow_missing_message

    first = Path(targets[0].split("::", 1)[0]).absolute()
    try:
        runtime_python = SettingsResolver(Overrides()).for_path(first).runtime_option("python")
    except ConfigError as exc:
        _fail(str(exc))
        return
    missing = tensorflow_missing_message(runtime_python)
    if missing:
        _fail(missing)
    from tfgradlint.runtime.gradcheck import run_gradcheck_command

    sys.exit(run_gradcheck_command(list(targets), output_format=output_format, timeout=timeout))
