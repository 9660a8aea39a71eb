"""Solution markers: the comment lines an instructor puts around a homework body, and how they become a stub.

Python: a comment line ``# BEGIN SOLUTION`` (optionally followed by ``hint="..."``) opens a block inside a
function body and a comment line ``# END SOLUTION`` closes it. The student copy replaces the block, markers
included, by ``raise NotImplementedError("<hint>")`` at the block's indentation; the signature, the
docstring and any code before the block are kept.

C++: the same with ``//`` comments (``// BEGIN SOLUTION hint="..."`` ... ``// END SOLUTION``); the block
becomes ``throw std::runtime_error("not implemented: <hint>");`` (a RuntimeError in Python) and ``#include <stdexcept>`` is added when missing. The block
must be self-contained: code after it may not use names declared inside it, or the stub will not compile;
and it must run on the calling thread, not inside a parallel region, where an escaping exception aborts.

A marker is a whole comment line; the same words after code or (in Python) inside a string are not a marker.
Worked examples: docs/assignments.md.
"""
from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass

PYTHON_SUFFIXES = (".py",)
CPP_SUFFIXES = (".cpp", ".cc", ".cxx", ".h", ".hpp", ".cu")
DEFAULT_HINT = "homework: implement this block (see the docstring)"
CPP_STUB_PREFIX = "not implemented: "  # pybind11 turns std::runtime_error into RuntimeError; this tags it

_HINT = r'(?:\s+hint="(?P<hint>(?:[^"\\]|\\.)*)")?\s*$'
_SYNTAX = {
    "python": (re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b" + _HINT),
               re.compile(r"^[ \t]*#\s*END SOLUTION\s*$")),
    "cpp": (re.compile(r"^(?P<indent>[ \t]*)//\s*BEGIN SOLUTION\b" + _HINT),
            re.compile(r"^[ \t]*//\s*END SOLUTION\s*$")),
}


@dataclass(frozen=True)
class SolutionBlock:
    """One marked block: 1-based line numbers of its BEGIN and END lines, its indentation and hint."""

    begin: int
    end: int
    indent: str
    hint: str


def language_of(path) -> str | None:
    """'python', 'cpp' or None (files of other kinds are copied unchanged)."""
    name = str(path)
    if name.endswith(PYTHON_SUFFIXES):
        return "python"
    if name.endswith(CPP_SUFFIXES):
        return "cpp"
    return None


def _python_comment_lines(text: str, filename: str) -> set:
    """Line numbers holding only a comment, found with the tokenizer (so text inside strings never counts)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise ValueError(f"{filename}: cannot tokenize the Python source: {error}") from error
    return {tok.start[0] for tok in tokens
            if tok.type == tokenize.COMMENT and not tok.line[:tok.start[1]].strip()}


def find_blocks(text: str, language: str, filename: str = "<string>") -> list:
    """Every solution block in ``text``, in order; unbalanced or nested markers raise ValueError with file:line."""
    begin_re, end_re = _SYNTAX[language]
    if "SOLUTION" not in text:
        return []
    comment_lines = _python_comment_lines(text, filename) if language == "python" else None
    blocks, open_block = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        if comment_lines is not None and number not in comment_lines:
            continue
        begin = begin_re.match(line)
        if begin:
            if open_block is not None:
                raise ValueError(f"{filename}:{number}: BEGIN SOLUTION inside the block opened at line {open_block[0]}")
            hint = begin.group("hint")
            hint = json.loads(f'"{hint}"') if hint is not None else DEFAULT_HINT  # undo \" and \\ escapes
            open_block = (number, begin.group("indent"), hint)
        elif end_re.match(line):
            if open_block is None:
                raise ValueError(f"{filename}:{number}: END SOLUTION without a BEGIN SOLUTION")
            blocks.append(SolutionBlock(open_block[0], number, open_block[1], open_block[2]))
            open_block = None
    if open_block is not None:
        raise ValueError(f"{filename}:{open_block[0]}: BEGIN SOLUTION is never closed by END SOLUTION")
    return blocks


def block_owners(text: str, language: str, filename: str = "<string>") -> list:
    """The function each solution block sits in, in block order: ``Mul.backward`` (enclosing classes and defs
    joined by dots) in Python, the nearest function signature above the block in C++. What a student implements."""
    blocks = find_blocks(text, language, filename)
    if not blocks:
        return []
    if language == "python":
        scopes = []  # (first line, last line, qualified name) of every def and class

        def visit(node, prefix):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    name = prefix + child.name
                    scopes.append((child.lineno, child.end_lineno, name))
                    visit(child, name + ".")
                else:
                    visit(child, prefix)

        visit(ast.parse(text, filename=filename), "")
        owners = []
        for block in blocks:
            inside = [s for s in scopes if s[0] < block.begin <= s[1]]
            owners.append(max(inside, key=lambda s: s[0])[2] if inside else "<module>")
        return owners
    lines = text.split("\n")
    signature = re.compile(r"^[A-Za-z_][\w:<>,*&\s]*?\b(?P<name>[A-Za-z_]\w*)\s*\(")
    owners = []
    for block in blocks:
        found = next((m.group("name") for line in reversed(lines[:block.begin - 1])
                      for m in [signature.match(line)] if m and m.group("name") not in _CPP_KEYWORDS), None)
        owners.append(found or "<file scope>")
    return owners


_CPP_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "catch"}


def _stub_line(block: SolutionBlock, language: str) -> str:
    if language == "python":
        literal = json.dumps(block.hint, ensure_ascii=False)  # a valid string literal in Python and in C++
        return f"{block.indent}raise NotImplementedError({literal})"
    literal = json.dumps(CPP_STUB_PREFIX + block.hint, ensure_ascii=False)
    return f"{block.indent}throw std::runtime_error({literal});"


def _ensure_stdexcept(lines: list) -> list:
    """Add ``#include <stdexcept>`` (for std::runtime_error) after the last #include, or at the top."""
    if any(re.match(r"\s*#\s*include\s*<stdexcept>", line) for line in lines):
        return lines
    includes = [i for i, line in enumerate(lines) if re.match(r"\s*#\s*include\b", line)]
    at = includes[-1] + 1 if includes else 0
    return lines[:at] + ["#include <stdexcept>  // std::runtime_error in the homework stubs"] + lines[at:]


def strip_solutions(text: str, language: str, filename: str = "<string>") -> tuple:
    """Replace each solution block (markers included) by its one-line stub.

    Returns ``(new_text, blocks)``; the text is unchanged when there is no block. A Python result is
    parsed with ``ast`` so a misplaced block (e.g. at module level) fails here, naming the file.
    """
    blocks = find_blocks(text, language, filename)
    if not blocks:
        return text, blocks
    lines = text.split("\n")
    for block in reversed(blocks):
        if language == "python" and not block.indent:
            raise ValueError(f"{filename}:{block.begin}: a Python solution block must be inside a function body")
        lines[block.begin - 1:block.end] = [_stub_line(block, language)]
    if language == "cpp":
        lines = _ensure_stdexcept(lines)
    new_text = "\n".join(lines)
    if language == "python":
        try:
            ast.parse(new_text, filename=filename)
        except SyntaxError as error:
            raise ValueError(f"{filename}: the student stub does not parse ({error.msg} at line {error.lineno}); "
                             f"is a solution block cutting a statement in half?") from error
    return new_text, blocks
