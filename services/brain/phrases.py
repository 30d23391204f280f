"""What a few words mean for turn-taking (pure): backchannels, noises, goodbyes.

A backchannel ("uh-huh", "okay", "right", "yeah", "mm-hmm") tells the agent the caller is
listening; it is not a request to stop or a new turn. Speech recognisers write noises as
tags ("(coughs)", "[BLANK_AUDIO]") or not at all, so text without real words counts too.
Goodbyes are recognised only when the whole utterance is a closing ("thanks, that's all",
"okay, bye"), never when a question merely contains the word ("how do you say goodbye?").
A request to be forgotten ("forget me", "delete what you know about me") is recognised unless it
is negated or asked about ("don't forget me", "will you forget me?").
"""

from __future__ import annotations

import re

_TAGS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")
_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")

BACKCHANNEL_WORDS = frozenset(
    """
    uh huh uhhuh mhm mmhm mhmm mmhmm hm hmm hmmm mm mmm um umm uh ah oh ooh aha ahh
    ok okay kay right yeah yea yep yup yes sure alright allright got it i see cool nice
    great good fine wow really true totally exactly gotcha
    """.split()
)
# Words that may open a backchannel but mean "wait" when they stand alone would be "stop",
# "wait", "no", "hold on": those are NOT backchannels and interrupt the agent.

_CLOSING = re.compile(
    r"^(?:(?:no|nope|ok|okay|alright|great|perfect|cool|well|right|yeah|yes|awesome|thanks|thank you)\s)*"
    r"(?:that's all|that is all|that's it|that is it|that'll be all|nothing else|i'm done|i am done|"
    r"i'm good|i'm all set|all set|that's everything|we're done)"
    r"(?:\s(?:for now|for today))?"
    r"(?:\s(?:thanks|thank you|thanks a lot|thank you very much|thanks so much|cheers))?"
    r"(?:\s(?:bye|bye bye|goodbye|good bye|bye now))?$"
)
_ENDS_WITH_BYE = re.compile(
    r"(?:^|\s)(?:bye|bye bye|goodbye|good bye|bye now|see you|see ya|talk to you later|"
    r"have a (?:good|nice|great) (?:day|one|night|evening))$"
)
_AGENT_BYE = re.compile(r"\b(?:goodbye|good bye|bye)\b")
_ABOUT_ME = r"(?:about me|on me|of me)"
_MY_DATA = r"my (?:name|details|number|data|information|info|memory|records?|history)"
_KNOWN = r"(?: (?:that )?(?:you know|you have|you've got|you remember|you've stored|you stored|you keep|stored))?"
_FORGET = re.compile(
    r"\b(?:forget (?:me|all about me|everything" + _KNOWN + " " + _ABOUT_ME + "|what" + _KNOWN + " " + _ABOUT_ME
    + "|" + _MY_DATA + r")|"
    r"(?:delete|erase|remove|wipe|clear) (?:me from your (?:memory|records|system)|" + _MY_DATA
    + r"|(?:everything|all|what|whatever|anything)" + _KNOWN
    + " " + _ABOUT_ME + r")|"
    r"(?:do not|don't|stop) (?:remember|remembering|keep|keeping|store|storing) (?:me|anything " + _ABOUT_ME
    + "|" + _MY_DATA + r"))\b")
_NOT_FORGET = re.compile(r"\b(?:don't|do not|never|didn't|did not|won't|will not|please don't|not) "
                         r"(?:forget|delete|erase|remove)\b|\b(?:did|do) you (?:forget|delete|erase|remember)\b")


def normalize(text: str) -> str:
    """Lower case, tags and punctuation removed, single spaces: for comparing transcripts."""
    text = _TAGS.sub(" ", text.lower()).replace("-", " ").replace("\u2019", "'")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def has_words(text: str) -> bool:
    """True when the text holds real words (not just a noise tag or punctuation)."""
    return any(ch.isalnum() for ch in normalize(text))


def is_backchannel(text: str, max_words: int = 4) -> bool:
    """Only listening noises: "uh-huh", "okay", "yeah right", "mm-hmm", a cough, nothing."""
    words = normalize(text).split()
    if not words:
        return True
    joined = "".join(words)
    if len(words) <= max_words and all(w in BACKCHANNEL_WORDS for w in words):
        return True
    return joined in BACKCHANNEL_WORDS


# Words that ask the agent to stop or to answer: a short burst holding one is never a murmur.
STOP_CUES = frozenset(
    """
    stop wait hold hang no nope not sorry excuse pardon what why how who where when which actually
    but hello hey help repeat again question listen
    """.split()
)


def too_many_words(text: str, voiced_ms: float, word_ms: float) -> bool:
    """More words than `voiced_ms` of voice could hold (one a `word_ms` at most), none of them a
    stop cue: a recogniser's guess at a murmur ("uh-huh" written "And then.")."""
    words = normalize(text).split()
    return bool(words) and not any(w in STOP_CUES for w in words) and len(words) * word_ms > voiced_ms


def is_caller_goodbye(text: str) -> bool:
    """The caller is closing the call: "that's all, thanks", "okay bye", "goodbye!"."""
    if "?" in text:
        return False
    said = normalize(text)
    if not said:
        return False
    if _CLOSING.match(said):
        return True
    if not _ENDS_WITH_BYE.search(said):
        return False
    # A short closing ("thanks, bye", "okay great, bye now") - not a request that ends with bye.
    return len(said.split()) <= 8


def is_agent_goodbye(text: str) -> bool:
    """The agent's reply says goodbye (its last sentence holds "bye" or "goodbye")."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    return bool(sentences) and bool(_AGENT_BYE.search(sentences[-1].lower()))


def is_forget_request(text: str) -> bool:
    """The caller asks the agent to forget them: "forget me", "please delete what you know about
    me", "forget everything about me", "stop remembering me"; not "don't forget me", not "did you
    forget me?"."""
    said = normalize(text)
    if not said or not _FORGET.search(said):
        return False
    if _NOT_FORGET.search(said):
        return "remember" in said and bool(re.search(r"\b(?:do not|don't|stop) remember", said))
    # "Will you forget me?" asks about it; "Can you forget me?" asks for it.
    return "?" not in text or bool(re.search(r"\b(?:please|can you|could you|would you)\b", said))
