"""A user's words about what is wrong with a source, restated in the `stats` describer's own words.

The bundled `compact` weights learnt to read a degradation from the sentence the describer writes ("Degradation:
the visible image is dark (under-exposed) and noisy."), and a user writes "the visible image is dark and noisy"
or "the CT is grainy". `prompt_findings` finds each source a prompt names and the degradation words that follow
it (up to the next source it names) and returns the describer's sentence for them, which the text encoder adds
after the user's words (`fusekit.guidance.text.features`): the words the user wrote stay, for any model, and the
bundled one reads the findings it was trained on. Only the kinds the describer names for that source count
(`fusekit.guidance.describe.measure.SOURCE_FINDINGS`: an infrared image is not "dark", an MEF frame's exposure
is what MEF is about); a negated word ("not noisy", "no noise") is left out.
"""

from __future__ import annotations

import re

from .measure import SOURCE_FINDINGS
from .stats import degradation_sentence

# the words a user calls each source by, per task and role (a regex alternation, matched as whole words)
SOURCE_WORDS = {
    ("ivf", "a"): r"infra-?red|thermal|ir",
    ("ivf", "b"): r"visible|rgb|colou?r|optical",
    ("mif", "a"): r"mri|mr",
    ("mif", "b"): r"ct|pet|spect|functional",
    ("mef", "a"): r"over-?exposed (?:image|frame|exposure|photo)|bright (?:image|frame|exposure)",
    ("mef", "b"): r"under-?exposed (?:image|frame|exposure|photo)|dark (?:image|frame|exposure)",
    ("mff", "a"): r"first|source a|image a",
    ("mff", "b"): r"second|source b|image b",
}
# the words that name each kind (a regex alternation, matched as whole words)
KIND_WORDS = {
    "low-contrast": r"low[- ]contrast|low in contrast|flat|hazy|faded",
    "over-exposed": r"over-?exposed|washed[- ]out|too bright|blown[- ]out",
    "dark": r"dark|under-?exposed|dim",
    "noisy": r"noisy|noise|grainy|grain",
    "blurred": r"blurr?ed|blurry|out of focus|soft",
}
_NEGATION = re.compile(r"\b(?:not|no|without|isn't|is not)\s+(?:\w+\s+)?$")


def _mentions(prompt: str, task: str) -> list[tuple[int, int, str]]:
    """(start, end, role) of each source the prompt names, in order."""
    found = []
    for role in ("a", "b"):
        for match in re.finditer(rf"\b(?:{SOURCE_WORDS[task, role]})\b", prompt):
            found.append((match.start(), match.end(), role))
    return sorted(found)


def _affirmed(kind: str, span: str) -> bool:
    """Whether `span` names `kind` at least once without a negation just before it."""
    return any(not _NEGATION.search(span[: match.start()]) for match in re.finditer(rf"\b(?:{KIND_WORDS[kind]})\b", span))


def kinds_named(prompt: str, task: str) -> dict[str, list[str]]:
    """role → the kinds the prompt says that source has (describer order), for the roles it names with any."""
    text = prompt.lower()
    mentions = _mentions(text, task)
    spans: dict[str, str] = {}  # per role, the words after each of its mentions up to the next mention of a source
    for index, (_, end, role) in enumerate(mentions):
        stop = mentions[index + 1][0] if index + 1 < len(mentions) else len(text)
        spans[role] = spans.get(role, "") + " " + text[end:stop]
    named = {role: [kind for kind in SOURCE_FINDINGS[task, role] if _affirmed(kind, span)] for role, span in spans.items()}
    return {role: kinds for role, kinds in named.items() if kinds}


def prompt_findings(prompt: str, task: str, paths: dict[str, str]) -> str:
    """The describer's degradation sentences for what `prompt` says is wrong ("" when it names nothing); `paths`
    (role → image path) give MIF's second source its modality name, as the describer does."""
    named = kinds_named(prompt, task)
    return " ".join(degradation_sentence(named[role], task, role, paths.get(role, ""))
                    for role in ("a", "b") if role in named)
