#!/usr/bin/env python3
"""Checks that the guide cannot rot quietly (part of scripts/book.sh):

- every page of docs/ is in docs/SUMMARY.md (else the book leaves it out), and every page
  SUMMARY.md names exists;
- every fenced code block says its language, and no Rust block is `ignore`d (Rust blocks
  are compiled as doctests of the tests crate: see tests/build.rs);
- every relative link of docs/ and of the READMEs leads to a file that exists, and links
  from docs/ stay inside docs/ (the book only has docs/; link other files by URL).

Prints each problem with its file and line; exits 1 if there is any.
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
docs = root / "docs"
problems = []


def problem(path, line, text):
    problems.append(f"{path.relative_to(root)}:{line}: {text}")


summary = (docs / "SUMMARY.md").read_text()
listed = set(re.findall(r"\]\(([^)#]+\.md)\)", summary))
for name in sorted(listed):
    if not (docs / name).exists():
        problem(docs / "SUMMARY.md", 1, f"lists {name}, which does not exist")
for page in sorted(docs.glob("*.md")):
    if page.name != "SUMMARY.md" and page.name not in listed:
        problem(page, 1, "is not in docs/SUMMARY.md, so the book leaves it out")

pages = sorted(docs.glob("*.md")) + [root / "README.md"] + sorted(root.glob("*/README.md"))
fence = re.compile(r"^(\s*)(```+|~~~+)(.*)$")
link = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
for page in pages:
    in_docs = page.parent == docs
    open_fence = None
    for n, line in enumerate(page.read_text().splitlines(), 1):
        m = fence.match(line)
        if m:
            marker, info = m.group(2), m.group(3).strip()
            if open_fence is None:
                open_fence = marker
                if not info:
                    problem(page, n, "a code block without a language (rustdoc compiles those as Rust): say ```text, ```sh, ...")
                langs = [w.strip() for w in info.split(",")]
                if "rust" in langs and "ignore" in langs:
                    problem(page, n, "an ignored Rust block: make it compile (hidden `# ` lines help)")
            elif marker.startswith(open_fence[0]) and not info:
                open_fence = None
            continue
        if open_fence is not None:
            continue
        for target in link.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            resolved = (page.parent / path).resolve()
            if not resolved.exists():
                problem(page, n, f"link to {target}, which does not exist")
            elif in_docs and docs.resolve() not in resolved.parents and resolved != docs.resolve():
                problem(page, n, f"link to {target}, outside docs/ (not in the book): link it by URL")
    if open_fence is not None:
        problem(page, 0, "a code block is never closed")

for p in problems:
    print(p)
if problems:
    print(f"{len(problems)} problem(s) in the docs")
    sys.exit(1)
print(f"docs: {len(pages)} pages checked")
