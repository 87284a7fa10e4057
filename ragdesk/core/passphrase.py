"""How hard a passphrase is to guess, and the minimum a new vault's passphrase must meet.

One estimate for every front end: the GUI's strength meter and the command line's refusal of a
weak passphrase (`ragdesk init`, `passwd`) both use `estimate`, so a passphrase the meter calls
good is one the command line accepts. The estimate is zxcvbn's (Dropbox's model of how password
crackers guess: dictionaries, common passwords, names, keyboard patterns, repeats, sequences,
dates, l33t substitutions), not a count of character classes, which rates "Password1!" highly.

The minimum is zxcvbn's score 3, "safely unguessable: moderate protection from an offline
slow-hash scenario" (about 10^8 guesses or more). That is the vault's threat: whoever copies the
vault's files can guess offline, each guess paying one Argon2id derivation.
"""

from __future__ import annotations

from dataclasses import dataclass

from zxcvbn import zxcvbn

MIN_SCORE = 3
MIN_LENGTH = 8
LABELS = ("Very weak", "Weak", "Fair", "Good", "Strong")
# zxcvbn refuses longer input (its matching is quadratic); the first 72 characters' estimate is
# a lower bound for the whole, and a passphrase that long already passes by length.
_ESTIMATED_CHARS = 72


@dataclass(frozen=True)
class Strength:
    """zxcvbn's verdict: `score` 0..4, log10 of the guesses it expects an attacker to need, and
    its feedback (`warning` may be empty; `suggestions` say what to do)."""

    score: int
    guesses_log10: float
    warning: str
    suggestions: tuple[str, ...]

    @property
    def label(self) -> str:
        return LABELS[self.score]

    @property
    def acceptable(self) -> bool:
        return self.score >= MIN_SCORE

    @property
    def feedback(self) -> str:
        """The warning and the suggestions as one sentence or two."""
        parts = [self.warning, *self.suggestions] if self.warning else list(self.suggestions)
        return " ".join(p if p.endswith((".", "!", "?")) else p + "." for p in parts if p)


def estimate(passphrase: str) -> Strength:
    """The strength of `passphrase` (an empty one scores 0)."""
    if not passphrase:
        return Strength(0, 0.0, "", ("Type a passphrase.",))
    if len(passphrase) > _ESTIMATED_CHARS:
        result = zxcvbn(passphrase[:_ESTIMATED_CHARS])
        return Strength(4, max(float(result["guesses_log10"]), 10.0), "", ())
    result = zxcvbn(passphrase)
    feedback = result.get("feedback") or {}
    score = int(result["score"])
    suggestions = tuple(str(s) for s in feedback.get("suggestions") or ())
    if len(passphrase) < MIN_LENGTH:
        score = min(score, MIN_SCORE - 1)
        suggestions = (f"Use at least {MIN_LENGTH} characters; four or more random words work well.",
                       *suggestions)
    return Strength(score, float(result["guesses_log10"]), str(feedback.get("warning") or ""),
                    suggestions)


def weakness(passphrase: str) -> str | None:
    """Why `passphrase` is too weak for a vault, or None if it is strong enough."""
    s = estimate(passphrase)
    if s.acceptable:
        return None
    advice = s.feedback or "Add another word or two; uncommon words are better."
    return (f"the passphrase is too easy to guess ({s.label.lower()}: about 10^{s.guesses_log10:.0f}"
            f" guesses; at least 10^8 are needed). {advice}")
