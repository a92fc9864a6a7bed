#!/usr/bin/env python3
"""Checks tests/fixtures/eval/queries.json against the eval notes.

"question" queries must share no content word with their relevant notes
(stop words ignored, rough suffix stemming, and a shared prefix of 5+ letters
counts as shared, to be strict). "keyword" queries must have every content
word in their relevant notes. Relevant paths must exist. Exit 1 on violations.
"""
import json, os, re, sys
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval")
STOP = set("""a an the and or but of to in on at for with by from about into over under after before
is are was were be been being am do does did have has had i me my we our you your he she it its they them their this that these those
what which who whom when where why how can could should would will shall may might must not no yes so if then than too very just
up down out off again once here there all any both each few more most other some such only own same s t don now get got keep
i'm""".split())
def stem(w):
    for suf in ("ational","ization","ations","ation","iness","ments","ment","ings","ing","edly","ed","ies","es","s","ly","er","y","e"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w
def words(t):
    return [w for w in re.findall(r"[a-z0-9à-ÿ]+", t.lower())]
qs = json.load(open(f"{ROOT}/queries.json"))
bad = 0
for q in qs:
    for rel in q["relevant"]:
        p = f"{ROOT}/notes/{rel}"
        assert os.path.exists(p), p
        text = open(p).read() + " " + rel
        nw = set(words(text)); ns = {stem(w) for w in nw}
        qw = [w for w in words(q["query"]) if w not in STOP]
        if q["kind"] == "question":
            hits = []
            for w in qw:
                s = stem(w)
                if w in nw or s in ns or any(min(len(s),len(x)) >= 5 and (x.startswith(s) or s.startswith(x)) for x in ns):
                    near = sorted(x for x in ns if x == s or (min(len(s),len(x))>=5 and (x.startswith(s) or s.startswith(x))))
                    hits.append(f"{w}~{near[:4]}")
            if hits:
                bad += 1; print(f"QUESTION VIOLATION {q['query']!r} [{rel}]: {hits}")
        else:
            miss = [w for w in qw if w not in nw]
            if miss:
                bad += 1; print(f"KEYWORD MISSING {q['query']!r} [{rel}]: {miss}")
print("violations:", bad)
sys.exit(1 if bad else 0)
