"""Hypothesis strategies for what clients send: names (nasty ones included) and entity documents."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Names that have broken git, libgit2 or a file system somewhere: `.git` lookalikes on NTFS
# (`git~1`, trailing dots and spaces), HFS+ (ignorable code points) and case-folding systems,
# git's own special files, Windows devices, path separators and control characters.
NASTY_NAMES = [
    ".git",
    ".GIT",
    ".Git",
    "git~1",
    "GIT~1",
    ".git.",
    ".git ",
    ".git::$INDEX_ALLOCATION",
    ".g\u200cit",
    ".g\u200dit",
    ".git\ufeff",
    ".gitmodules",
    ".gitattributes",
    ".gitignore",
    "gitmod~1",
    "HEAD",
    "head",
    "con",
    "nul.txt",
    "com1",
    "lpt9.md",
    ".",
    "..",
    "...",
    "a/b",
    "a\\b",
    "a:b",
    "c:",
    "a\x00b",
    "a\nb",
    "a\x7f",
    "a\x1b[2J",
    "trailing.",
    "trailing ",
    " leading",
    "x.lock",
    "a..b",
    "@{1}",
    "HEAD~1",
    "refs/heads/main",
    "\u00e9",
    "e\u0301",
    "\u212a",  # KELVIN SIGN, case-folds to 'k'
    "\uff47\uff49\uff54",  # fullwidth 'git'
    "k" * 64,
    "k" * 65,
    "",
]

names = st.one_of(
    st.sampled_from(NASTY_NAMES),
    st.from_regex(r"[a-z0-9._-]{1,70}", fullmatch=True),
    st.text(max_size=70),
    # A valid-looking name with one nasty character spliced in.
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.from_regex(r"[a-z0-9]{0,8}", fullmatch=True),
        st.sampled_from(["/", "\\", ":", "~", "\x00", "\t", " ", ".", "..", "\u200c", "\u0301", "A", "\u00e9"]),
        st.from_regex(r"[a-z0-9.]{0,8}", fullmatch=True),
    ),
)

# JSON as orjson stores it exactly: integers within 64 bits, finite floats.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
# Multi-line text is what moves to its own file under fields/.
multi_line_text = st.builds(lambda a, b: f"{a}\n{b}", st.text(max_size=60), st.text(max_size=60))

field_names = st.one_of(names, st.from_regex(r"[a-z_][a-z0-9_-]{0,12}", fullmatch=True))
fields = st.dictionaries(field_names, st.one_of(multi_line_text, json_values), max_size=6)

type_names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,20}", fullmatch=True)
titles = st.text(max_size=80).filter(lambda t: not any(ord(c) < 0x20 or ord(c) == 0x7F for c in t))
locales = st.sampled_from(["en", "cy", "fr", "pt-BR", "zh-Hant-TW"])


def documents(*, link_targets: list[str] | None = None) -> st.SearchStrategy[dict[str, Any]]:
    """Valid entity documents (no members: containers need members that exist). Links name
    `link_targets` only, since every target must exist when the document is written."""
    links = (
        st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,10}", fullmatch=True), st.just(link_targets), max_size=2)
        if link_targets
        else st.just({})
    )
    return st.fixed_dictionaries(
        {"type": type_names, "title": titles},
        optional={"locale": locales, "fields": fields, "links": links},
    )
