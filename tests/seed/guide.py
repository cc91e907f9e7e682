"""The seed guide's code blocks, read from docs/seed-guide.md, with their imports mapped (DESIGN 9)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "seed-guide.md"
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.M | re.S)
_SNIPPET = re.compile(r"<!-- (setup|then) (\d+) -->\s*```python\n(.*?)^```", re.M | re.S)
IMPORTS = [  # DESIGN 9, and the strategy framework the guide assumes (docs/seed-guide.md, "Imports")
    (r"\bfrom ml_pipeline\.\w+ import\b", "from app.ml import"),
    (r"\bfrom orchestration\.ranker import\b", "from app.ml import"),
    (r"\bfrom models\.common\.predictor import\b", "from app.ml import"),
    (r"\bfrom features\.feature_manager import\b", "from app.features import"),
    (r"\bfrom strategies\.base_strategy import\b", "from app.strategy import"),
]


@dataclass(frozen=True)
class Block:
    number: int  # 1-based among the guide's python blocks (0 for the others)
    language: str
    heading: str
    code: str

    @property
    def mapped(self) -> str:
        code = self.code
        for pattern, replacement in IMPORTS:
            code = re.sub(pattern, replacement, code)
        return code


def guide_text() -> str:
    text = GUIDE.read_text()
    start, end = text.index("<!-- seed-guide:start -->"), text.index("<!-- seed-guide:end -->")
    return text[start:end]


def blocks() -> list[Block]:
    """Every fenced block of the guide, in order, each with the heading above it."""
    text, found, number = guide_text(), [], 0
    for match in _FENCE.finditer(text):
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], re.M)
        language = match.group(1)
        number += language == "python"
        found.append(Block(number if language == "python" else 0, language, headings[-1], match.group(2)))
    return found


def python_blocks() -> dict[int, Block]:
    return {b.number: b for b in blocks() if b.language == "python"}


def snippets() -> dict[tuple[str, int], str]:
    """The documented code run before (`setup`) or after (`then`) guide block N."""
    text = GUIDE.read_text().split("<!-- seed-guide:start -->")[0]
    return {(kind, int(n)): code for kind, n, code in _SNIPPET.findall(text)}


def run(code: str, namespace: dict[str, Any], label: str) -> None:
    exec(compile(code, f"<{label}>", "exec"), namespace)  # noqa: S102 - the guide's own code, from the repo
