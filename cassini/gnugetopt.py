"""A faithful emulation of glibc ``getopt`` (short options only).

The reference ``cassini`` parses its command line with glibc's ``getopt``, so
this module reproduces its observable behaviour over raw ``bytes`` arguments:

- permutation: operands may be interleaved with options; they are collected
  in their original order and handed back after the options;
- ``--`` ends the options (everything after it is an operand);
- ``POSIXLY_CORRECT`` in the environment, or an optstring starting with
  ``+``, stops option parsing at the first operand;
- a lone ``-`` is an operand;
- attached arguments (``-m5``) and clustered flags (``-lc``);
- a required argument takes the next element whatever it looks like
  (``-m -l`` gives ``-m`` the argument ``-l``);
- diagnostics exactly as glibc words them.

:func:`getopt` is a generator: it yields ``(option, argument)`` pairs in
command-line order, so that a caller can act on each option before the next
one is even looked at (as a C ``while ((opt = getopt(...)) != -1)`` loop
does).  An error yields ``("?", message)`` and stops.  After the generator
is exhausted, ``state.operands`` holds the operands.
"""


TYPE_CHECKING = False
if TYPE_CHECKING:   # names for the hints only: nothing more to import at start-up
    from collections.abc import Iterator, Sequence


class GetoptState:
    """Where the scan stands; ``operands`` is complete once the scan ends."""

    __slots__ = ("operands",)

    def __init__(self) -> None:
        self.operands: list[bytes] = []


def _parse_optstring(optstring: str) -> tuple[dict[int, bool], bool]:
    """``{option byte: takes an argument}`` and whether to stop at the first operand."""
    require_order = False
    if optstring[:1] in ("+", "-"):
        require_order = optstring[0] == "+"
        optstring = optstring[1:]
    if optstring[:1] == ":":
        optstring = optstring[1:]
    spec = {}
    i = 0
    while i < len(optstring):
        c = optstring[i]
        takes_arg = optstring[i + 1:i + 2] == ":"
        spec[ord(c)] = takes_arg
        i += 1
        while optstring[i:i + 1] == ":":
            i += 1
    return spec, require_order


def getopt(args: "Sequence[bytes]", optstring: str, state: GetoptState,
           posixly_correct: bool = False,
           prog: bytes = b"cassini") -> "Iterator[tuple[str, bytes | None]]":
    """Scan ``args`` (a list of bytes, without the program name).

    Yields ``(option_char, optarg_bytes_or_None)``; on an error yields
    ``("?", diagnostic_line)`` (bytes, the glibc wording, without newline)
    and stops.
    """
    spec, require_order = _parse_optstring(optstring)
    require_order = require_order or posixly_correct
    operands = state.operands
    n = len(args)
    i = 0
    while i < n:
        arg = args[i]
        if arg == b"--":
            operands.extend(args[i + 1:])
            return
        if len(arg) < 2 or arg[0] != 0x2D:       # not "-x...": an operand
            if require_order:
                operands.extend(args[i:])
                return
            operands.append(arg)
            i += 1
            continue
        # an option element: "-abc", possibly with an attached argument
        i += 1
        pos = 1
        while pos < len(arg):
            c = arg[pos]
            pos += 1
            # glibc also refuses ':' and ';' even though they appear in optstrings
            if c not in spec or c in (0x3A, 0x3B):
                yield "?", b"%s: invalid option -- '%c'" % (prog, c)
                return
            if not spec[c]:
                yield chr(c), None
                continue
            if pos < len(arg):                   # attached: -m5
                yield chr(c), arg[pos:]
            elif i < n:                          # next element, whatever it is
                i += 1
                yield chr(c), args[i - 1]
            else:
                yield "?", b"%s: option requires an argument -- '%c'" % (prog, c)
                return
            break

