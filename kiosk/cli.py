"""The ``kiosk`` command: one subcommand per module in :mod:`kiosk.commands`.

Each command module has ``add_arguments(parser)`` and ``run(args) -> int``;
they are imported only when chosen, so ``kiosk --version`` and the config
check start in a fraction of a second. Exit codes: 0 ok, 1 a negative
answer (a rejected code, a failed check) or a resource that is not usable
(a missing device, a broker that is down), 2 usage or configuration errors.

Any :class:`kiosk.errors.KioskError` or :class:`device.DeviceError` is printed
as one line with its class's ``exit_code``; so is an ``OSError`` (a file that
cannot be read, a refused connection). A traceback means a bug: ``-vv`` shows
the traceback of the one-line errors too.

A command whose reader goes away (``kiosk export ... | head -1``) ends quietly
with status 141 (128 + SIGPIPE), as a Unix tool killed by SIGPIPE does: no
"Broken pipe", no traceback. Python ignores SIGPIPE, so the write raises
instead; restoring the default signal would also kill a command whose broker
connection breaks, so the closed pipe is recognised where it surfaces.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import signal
import sys

from device import DeviceError
from kiosk import __version__
from kiosk.errors import KioskError, KioskValueError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("kiosk.commands.run", "run the kiosk with a config file"),
    "demo": ("kiosk.commands.demo", "replay sample visitors through the whole pipeline"),
    "config": ("kiosk.commands.config", "check a config file (validation only)"),
    "decode": ("kiosk.commands.decode", "read QR codes from image files"),
    "verify": ("kiosk.commands.verify", "verify code payloads and print verdicts as JSON lines"),
    "issue": ("kiosk.commands.issue", "make keys and issue signed health-declaration codes"),
    "screenshot": ("kiosk.commands.screenshot", "render one kiosk screen to a PNG"),
    "export": ("kiosk.commands.export", "export the visit log as CSV for the health authority"),
    "monitor": ("kiosk.commands.monitor", "watch a fleet of kiosks over MQTT"),
    "simulate": ("kiosk.commands.simulate", "simulate many kiosks' telemetry against a broker"),
    "doctor": ("kiosk.commands.doctor", "self-check this kiosk's hardware, config and connections"),
    "provision": ("kiosk.commands.provision", "write a kiosk's config, keys and services onto an SD card or host"),
    "update": ("kiosk.commands.update", "update the kiosk software safely, with rollback"),
    "fleet": ("kiosk.commands.fleet", "make every kiosk's config, the fleet registry and the broker's ACL from a fleet file"),
    "trust": ("kiosk.commands.trust", "build, sign, verify and publish trust bundles (trust authority)"),
    "command": ("kiosk.commands.command", "send a signed command from the centre to a kiosk"),
    "centre": ("kiosk.commands.centre", "the centre: ingest the fleet's telemetry, statistics and the web dashboard"),
    "trace": ("kiosk.commands.trace", "contact tracing for the health authority: keys, signed requests, collect answers"),
    "poster": ("kiosk.commands.poster", "print the venue's QR poster as a PDF"),
}

# Commands whose words may also follow their options (``kiosk centre restore --db URL FILE``): argparse
# gives a positional list only the words before the first option.
TRAILING_WORDS = frozenset({"centre"})


class UsageError(KioskValueError):
    """Bad command-line use; reported with exit code 2."""


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose or os.environ.get("KIOSK_LOG") else logging.WARNING
    # Under systemd the journal adds its own timestamps.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="kiosk", description="QR check-in kiosk")
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subs = {name: sub.add_parser(name, help=help_, description=help_) for name, (_, help_) in COMMANDS.items()}
    return parser, subs


def main(argv: list[str] | None = None) -> int:
    try:
        rc = _main(argv)
        _flush(sys.stdout)  # a reader gone while the last lines sat in the buffer shows here, not at exit
        return rc
    except BrokenPipeError:
        if _reader_gone(sys.stdout) or _reader_gone(sys.stderr):
            return _quiet_after_closed_pipe()
        print("kiosk: Broken pipe (a connection closed while writing)", file=sys.stderr)
        return 1


def _main(argv: list[str] | None) -> int:
    parser, subs = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen command's module is imported: peek at the first non-option word.
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    if chosen in COMMANDS:
        module = importlib.import_module(COMMANDS[chosen][0])
        module.add_arguments(subs[chosen])
    args, extra = parser.parse_known_args(argv)
    if extra and chosen in TRAILING_WORDS and not any(e.startswith("-") for e in extra):
        args.words = [*args.words, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if module is None:
        parser.print_help()
        return 2
    _setup_logging(args.verbose)
    from kiosk.config import ConfigError

    log = logging.getLogger("kiosk")
    try:
        return int(module.run(args) or 0)
    except ConfigError as exc:
        log.debug("configuration error", exc_info=True)
        if len(exc.problems) > 1:
            for problem in exc.problems:
                print(f"{problem.level}: {problem}", file=sys.stderr)
        print(f"kiosk: configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KioskError, DeviceError) as exc:
        log.debug("%s", type(exc).__name__, exc_info=True)
        for line in _lines(exc):
            print(f"kiosk {chosen}: {line}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        raise  # the reader of our output went away: main() ends quietly
    except OSError as exc:  # a file named on the command line, a device, a refused connection
        log.debug("%s", type(exc).__name__, exc_info=True)
        print(f"kiosk {chosen}: {_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _lines(exc: BaseException) -> list[str]:
    """The message's lines, each printed with the command's prefix (an error may list several rows)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    return [line for line in lines if line] or [type(exc).__name__]


def _os_error(exc: OSError) -> str:
    what = exc.strerror or " ".join(_lines(exc))
    name = exc.filename if exc.filename is not None else None
    return f"{name}: {what}" if name else what


def _flush(stream) -> None:
    if stream is not None:
        stream.flush()


def _reader_gone(stream) -> bool:
    """True when ``stream`` is a pipe (or socket) whose reading end was closed."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file: nothing could have closed under us
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


def _quiet_after_closed_pipe() -> int:
    """Point stdout at /dev/null (Python's own flush at exit must not fail again) and give 128 + SIGPIPE."""
    for stream in (sys.stdout, sys.stderr):
        if _reader_gone(stream):
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass
    return 128 + signal.SIGPIPE
