"""Likely duplicate questions: diacritics-insensitive token sets, compared incrementally through an inverted index.

A question's tokens are the words of its folded text ("Hạ Long" and "ha long" alike) without the filler and
question words every question shares ("cho hỏi", "ạ", "what", "the"). Two open questions are likely the same
when their token sets overlap enough (Jaccard ≥ THRESHOLD, and at least two shared words unless one of
them has fewer). Questions are kept in groups compared through their first question, so adding one costs
in proportion to the groups sharing a word with it, not to the thousands pending.
"""

from __future__ import annotations

import re

from .text import fold

THRESHOLD = 0.6
MAX_POSTING = 100  # a word shared by more groups than this is too common to find a duplicate by (the others do)
MAX_SIMILAR = 20  # ids a question lists as its likely duplicates (the closest, newest first among equals)

# Folded filler: Vietnamese particles, pronouns and question words, English stop words. What is left is what a
# question is about.
STOPWORDS = frozenset("""
a ad ah ai anh ba ban bao bay be biet cac cai can cho chi chu chua co con cua cung da dang day de den di do
duoc em gi gio hay hoi khi khong kia la lai lam lau len ma minh muon nao nay ne neu nha nhe nhi nhieu nhu
nhung o oi on qua ra rang roi sao se tai thay the thi thoi toi tu tren trong uh um va vao van vay vi voi
xin ya
about after all am an and any are as at be been but by can could did do does for from had has have how i if in
into is it its me my no not of on or our please should so than that the their them then there these they this
to us was we were what when where which who why will with would you your
""".split())
_WORD = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> frozenset[str]:
    """The words that say what `text` is about, folded."""
    return frozenset(w for w in _WORD.findall(fold(text)) if w not in STOPWORDS and (len(w) > 1 or w.isdigit()))


def alike(a: frozenset[str], b: frozenset[str]) -> float:
    """How alike two token sets are (0 when not likely the same question), else their Jaccard index."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    if shared < min(2, len(a), len(b)):
        return 0.0
    score = shared / (len(a) + len(b) - shared)
    return score if score >= THRESHOLD else 0.0


class SimilarIndex:
    """Open questions in groups of likely duplicates, each group compared through its first question's words.

    A new question is compared with the groups' representatives that share one of its words (an inverted
    index over the representatives only), and joins the closest, or starts a group. A burst of the same
    question therefore costs one comparison per group, not one per question already pending.
    """

    def __init__(self) -> None:
        self.group_of: dict[int, int] = {}  # question id -> group id (the id of the group's first question)
        self.members: dict[int, dict[int, None]] = {}  # group id -> its questions, in the order they came
        self.rep: dict[int, frozenset[str]] = {}  # group id -> the words it is compared by
        self.postings: dict[str, dict[int, None]] = {}  # word -> groups whose representative holds it
        self.words: dict[int, frozenset[str]] = {}  # question id -> its words
        self.exact: dict[frozenset[str], int] = {}  # representative words -> group, found however common they are

    def __len__(self) -> int:
        return len(self.group_of)

    def put(self, qid: int, text: str) -> None:
        """Index (or re-index, after an edit) an open question in the group it is most like."""
        words = tokens(text)
        if qid in self.group_of and self.words.get(qid) == words:
            return
        self.remove(qid)
        self.words[qid] = words
        best = self.exact.get(words)
        if best is None:
            best = self._closest(words)
        if best is None:
            best = qid
            self.members[qid] = {}
            self._represent(qid, words)
        self.group_of[qid] = best
        self.members[best][qid] = None

    def _closest(self, words: frozenset[str]) -> int | None:
        """The group whose representative is most like `words` (the oldest among equals), if any is alike."""
        best, best_score = None, 0.0
        seen: set[int] = set()
        for word in words:
            posting = self.postings.get(word, ())
            if len(posting) > MAX_POSTING:
                continue
            for gid in posting:
                if gid not in seen:
                    seen.add(gid)
                    score = alike(words, self.rep[gid])
                    if score > best_score or (score == best_score and score and gid < best):
                        best, best_score = gid, score
        return best

    def _represent(self, gid: int, words: frozenset[str]) -> None:
        old = self.rep.get(gid)
        if old is not None and self.exact.get(old) == gid:
            del self.exact[old]
        if words:
            self.exact.setdefault(words, gid)
        for word in old or ():
            posting = self.postings.get(word)
            if posting is not None:
                posting.pop(gid, None)
                if not posting:
                    del self.postings[word]
        self.rep[gid] = words
        for word in words:
            self.postings.setdefault(word, {})[gid] = None

    def remove(self, qid: int) -> None:
        """Forget a question (closed, merged, or about to be re-indexed)."""
        gid = self.group_of.pop(qid, None)
        self.words.pop(qid, None)
        if gid is None:
            return
        members = self.members[gid]
        members.pop(qid, None)
        if not members:
            self._represent(gid, frozenset())
            del self.rep[gid], self.members[gid]
        elif gid == qid:
            # The first question left: the next oldest speaks for the group (which keeps its id).
            self._represent(gid, self.words[next(iter(members))])

    def similar(self, qid: int) -> list[int]:
        """The ids of `qid`'s likely duplicates, newest first."""
        gid = self.group_of.get(qid)
        if gid is None:
            return []
        members = self.members[gid]
        if len(members) < 2:
            return []
        out: list[int] = []
        for other in reversed(members):
            if other != qid:
                out.append(other)
                if len(out) == MAX_SIMILAR:
                    break
        return out
