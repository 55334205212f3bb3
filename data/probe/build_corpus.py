"""Build basepick's default probe corpus, data/probe/corpus.jsonl.gz, from redistributable text on this machine.

    .venv/bin/python data/probe/build_corpus.py [--rust-doc DIR] [--docs 12] [--chars 3000]

Five domains, ``--docs`` documents each, every document at most ``--chars`` characters cut at a line or
sentence boundary (provenance and licences: SOURCES.md next to this file):

* code          CPython standard-library modules (Python Software Foundation License 2.0)
* books         "The Rust Programming Language" book, prose paragraphs (MIT OR Apache-2.0)
* scientific    numpy docstrings of numerical functions, Examples sections dropped (BSD-3-Clause)
* encyclopedic  Python language-reference topics from pydoc_data.topics (PSF License 2.0)
* qa            XZ Utils FAQ (public domain) and the Cargo Book FAQ (MIT OR Apache-2.0), as Q:/A: pairs

The output is deterministic for fixed inputs (fixed choices, gzip mtime 0); each row is
{"domain", "text", "source"}. LICENSES.txt next to it carries the licence texts the excerpts require.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import html
import inspect
import io
import json
import re
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODE_MODULES = ("textwrap", "heapq", "bisect", "fractions", "statistics", "colorsys", "difflib", "shlex",
                "calendar", "graphlib", "fnmatch", "string", "netrc", "quopri")
BOOK_CHAPTERS = tuple(f"ch{n:02d}" for n in range(1, 21))  # one document per chapter: its sections' prose
NUMPY_FUNCTIONS = ("fft", "histogram", "linalg.svd", "linalg.lstsq", "polyfit", "kaiser", "hanning", "gradient",
                   "percentile", "random.Generator.vonmises", "random.Generator.weibull", "random.Generator.gamma",
                   "random.Generator.poisson", "random.Generator.hypergeometric", "random.Generator.zipf",
                   "random.Generator.wald", "linalg.eig", "convolve", "interp", "corrcoef")
TOPICS = ("assignment", "atom-identifiers", "booleans", "class", "exceptions", "for", "function", "import",
          "integers", "numbers", "objects", "types", "naming", "execmodel", "comparisons", "lambda")


def clip(text: str, chars: int) -> str:
    """At most ``chars`` characters, cut at the last line break (or sentence end) before the limit."""
    text = text.strip()
    if len(text) <= chars:
        return text
    head = text[:chars]
    cut = max(head.rfind("\n"), head.rfind(". ") + 1)
    return head[: cut if cut > chars // 2 else chars].rstrip()


def _plain(fragment: str) -> str:
    """HTML fragment -> text: tags dropped, entities decoded, whitespace folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", fragment))).strip()


def code_docs(chars: int) -> list[tuple[str, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for name in CODE_MODULES:
        source = (stdlib / f"{name}.py").read_text(encoding="utf-8")
        start = re.search(r"^(def|class) ", source, flags=re.M)  # skip licence headers and module docstrings
        docs.append((f"cpython {sys.version.split()[0]} Lib/{name}.py", clip(source[start.start():], chars)))
    return docs


def book_docs(rust_doc: Path, chars: int) -> list[tuple[str, str]]:
    docs = []
    for chapter in BOOK_CHAPTERS:
        paragraphs = []
        for path in sorted((rust_doc / "book").glob(f"{chapter}-*.html")):
            main = path.read_text(encoding="utf-8").split("<main>", 1)[-1].split("</main>", 1)[0]
            paragraphs += [_plain(p) for p in re.findall(r"<p>(.*?)</p>", main, flags=re.S)]
        text = "\n\n".join(p for p in paragraphs if len(p) > 80)  # prose only: no captions, code or notes
        if text:
            docs.append((f"The Rust Programming Language, chapter {chapter[2:]}", clip(text, chars)))
    return docs


def scientific_docs(chars: int) -> list[tuple[str, str]]:
    import numpy as np

    docs = []
    for name in NUMPY_FUNCTIONS:
        obj = np
        for part in name.split("."):
            obj = getattr(obj, part, None)
        doc = inspect.getdoc(obj) if obj is not None else None
        if not doc:
            continue
        sections = re.split(r"\n([A-Z][a-z]+(?: [A-Z][a-z]+)?)\n-{3,}\n", "\n" + doc)  # [summary, title, body, ...]
        parts = dict(zip(sections[1::2], sections[2::2]))
        notes = parts.get("Notes", "").strip()
        if len(notes) < 400:  # keep functions whose docstring explains the mathematics
            continue
        summary = re.sub(r"\A\w+\(.*\)\n+", "", sections[0].strip())  # compiled methods start with a signature
        doc = f"{summary}\n\n{notes}"  # summary and notes: no parameter lists, no >>> examples
        docs.append((f"numpy {np.__version__} numpy.{name} docstring", clip(doc, chars)))
    return docs


def encyclopedic_docs(chars: int) -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    return [(f"cpython {sys.version.split()[0]} pydoc_data.topics[{t!r}]", clip(topics[t], chars))
            for t in TOPICS if t in topics]


def _qa_groups(pairs: list[str], source: str, chars: int) -> list[tuple[str, str]]:
    docs, current = [], ""
    for pair in pairs:
        if current and len(current) + len(pair) > chars:
            docs.append((source, current))
            current = ""
        current = f"{current}\n\n{pair}".strip()
    if current:
        docs.append((source, clip(current, chars)))
    return docs


def qa_docs(rust_doc: Path, chars: int) -> list[tuple[str, str]]:
    xz = gzip.decompress(Path("/usr/share/doc/xz-utils/faq.txt.gz").read_bytes()).decode("utf-8")
    xz_pairs = []
    for pair in xz.split("\nQ:")[1:]:
        text = re.sub(r"\n    ", "\n", pair.strip())  # answers are indented by 4 spaces
        xz_pairs.append(clip("Q: " + re.sub(r"^A:\s+", "A: ", text, flags=re.M), chars))
    faq = (rust_doc / "cargo" / "faq.html").read_text(encoding="utf-8").split("<main>", 1)[-1]
    cargo_pairs = []
    for block in re.split(r"<h2 id=", faq)[1:]:
        question = _plain(block.split("</h2>", 1)[0].split(">", 1)[-1])
        answer = "\n\n".join(_plain(p) for p in re.findall(r"<p>(.*?)</p>", block, flags=re.S))
        if answer:
            cargo_pairs.append(clip(f"Q: {question}\n\nA: {answer}", chars))
    size = chars // 2  # a few question-answer pairs per document
    return _qa_groups(xz_pairs, "XZ Utils FAQ (/usr/share/doc/xz-utils/faq.txt.gz)", size) + _qa_groups(
        cargo_pairs, "The Cargo Book, FAQ (cargo/faq.html)", size)


def licence_texts(rust_doc: Path) -> str:
    """The licences whose notices must travel with the excerpts (PSF, numpy's BSD-3, MIT for the Rust docs)."""
    import numpy as np

    psf = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text(encoding="utf-8")
    dist = sorted(Path(np.__file__).parent.parent.glob("numpy-*.dist-info"))[-1]
    bsd = (dist / "licenses" / "LICENSE.txt").read_text(encoding="utf-8").split("\n----", 1)[0]  # numpy's own part
    mit = (rust_doc.parent / "licenses" / "MIT.txt").read_text(encoding="utf-8")
    mit = mit.replace("<year> <copyright holders>", "The Rust Project Developers (see https://thanks.rust-lang.org)")
    parts = [("code, encyclopedic: CPython " + sys.version.split()[0] + " LICENSE.txt", psf),
             ("scientific: numpy " + np.__version__ + " (BSD-3-Clause)", bsd),
             ("books, qa (Cargo Book FAQ): Rust documentation, MIT option of MIT OR Apache-2.0", mit),
             ("qa (XZ Utils FAQ)", "Public domain (Debian xz-utils copyright: the documentation is public domain).")]
    rule = "=" * 78
    return "".join(f"{rule}\n{title}\n{rule}\n\n{text.strip()}\n\n" for title, text in parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_rust = sorted(glob.glob("/root/.rustup/toolchains/stable-*/share/doc/rust/html"))
    parser.add_argument("--rust-doc", type=Path, default=Path(default_rust[0]) if default_rust else None,
                        help="the html/ folder of a Rust toolchain's documentation (rustup component rust-docs)")
    parser.add_argument("--docs", type=int, default=12, help="documents per domain")
    parser.add_argument("--chars", type=int, default=3000, help="largest document, characters")
    parser.add_argument("--out", type=Path, default=HERE / "corpus.jsonl.gz")
    args = parser.parse_args(argv)
    if args.rust_doc is None or not (args.rust_doc / "book").is_dir():
        parser.error("Rust documentation not found; pass --rust-doc .../share/doc/rust/html")
    domains = {
        "code": code_docs(args.chars),
        "books": book_docs(args.rust_doc, args.chars),
        "scientific": scientific_docs(args.chars),
        "encyclopedic": encyclopedic_docs(args.chars),
        "qa": qa_docs(args.rust_doc, args.chars),
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
        for domain, docs in domains.items():
            docs = [(source, text) for source, text in docs if len(text) >= 500][: args.docs]
            if len(docs) < args.docs:
                print(f"warning: {domain}: only {len(docs)} documents", file=sys.stderr)
            for source, text in docs:
                row = {"domain": domain, "text": text, "source": source}
                gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            print(f"{domain}: {len(docs)} documents, {sum(len(t) for _, t in docs)} characters", file=sys.stderr)
    args.out.write_bytes(buffer.getvalue())
    (args.out.parent / "LICENSES.txt").write_text(licence_texts(args.rust_doc), encoding="utf-8")
    print(f"wrote {args.out} ({len(buffer.getvalue())} bytes) and LICENSES.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
