"""``kith demo``: seed a running stack through its gateway from the socfb-Reed98 friendship graph.

People are a connected slice of the Reed College Facebook graph (breadth-first
from its best-connected student); each of the best-connected people founds a
niche with friends of theirs; members post, react, comment and message each
other. A newcomer account joins a few niches and gets a conversation, and its
login is printed at the end. Everything goes through the public HTTP API, so
the demo also exercises the gateway end to end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kith.common.config import Settings
from kith_dev.demo_photos import demo_photo
from kith_dev.socialgraph import Graph, connected_slice, dataset_path, founded_niches, load_graph

PASSWORD = "kith-demo-password"
KINDS = ["family", "friends", "book_club", "professional", "skills", "neighbourhood", "custom"]
NAMES = {
    "family": "The {} family", "friends": "{}'s friends", "book_club": "{}'s book circle",
    "professional": "{}'s study group", "skills": "{}'s skill swap",
    "neighbourhood": "{}'s street", "custom": "{}'s band",
}
FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kit", "Lea",
         "Max", "Nia", "Oto", "Pia", "Quin", "Rui", "Sol", "Tess", "Uma", "Vic", "Wes", "Yara"]
POSTS = ["Anyone up for a walk on Saturday?", "Finished the book — no spoilers!",
         "Photos from last night are in the shared folder.", "Who has a ladder I can borrow?",
         "Happy birthday, you know who you are!", "Soup is on, come by after six.",
         "Great meeting today, notes to follow.", "Lost: one blue umbrella. Reward: cake."]
COMMENTS = ["Count me in!", "Love this", "Thanks for sharing", "Ha, classic", "Same here"]
REACTIONS = ["like", "love", "hug", "congrats", "support", "laugh"]
# What each kind is for (API.md "Purpose-built niches"): custom unlocks everything.
UNLOCKS = {"family": {"moment", "birthday"}, "friends": {"moment", "birthday"},
           "book_club": {"highlight", "reading"}, "professional": {"ask", "skills", "headline"},
           "skills": {"ask", "skills"}, "neighbourhood": {"ask", "skills"},
           "custom": {"moment", "birthday", "highlight", "reading", "ask", "skills", "headline"}}
PERSONAS = {"family": ["Grandma {}", "Uncle {}", "Auntie {}", "Cousin {}"],
            "friends": ["{} the Brave", "Little {}", "DJ {}"]}
BOOKS = [({"title": "Dune", "author": "Frank Herbert", "isbn": "978-0-441-17271-9"},
          "Fear is the mind-killer."),
         ({"title": "Moby-Dick", "author": "Herman Melville"}, "Call me Ishmael."),
         ({"title": "Middlemarch", "author": "George Eliot"},
          "What do we live for, if it is not to make life less difficult to each other?"),
         ({"title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin",
           "isbn": "0-441-47812-3"}, "Light is the left hand of darkness.")]
SKILLS = ["bike repair", "baking", "python", "plumbing", "tax returns", "gardening",
          "guitar", "first aid", "spanish", "carpentry"]
HEADLINES = ["Staff engineer", "Nurse practitioner", "Product designer", "Accountant"]
ASKS = [("Who can fix a bike? My gears slip.", "bike repair"),
        ("Anyone good with taxes? First year freelancing.", "tax returns"),
        ("My sink drips all night — help?", "plumbing")]
MOMENTS = [("surgery", "Grandpa's knee surgery went well, thanks for the soup!", -3),
           ("new_baby", "Welcome little Rosa!", -400), ("wedding", "Ten years married!", 12),
           ("new_home", "We got the keys!", -1), ("graduation", "Diploma in hand!", -30)]


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


@dataclass
class Person:
    node: int
    username: str
    display_name: str
    token: str = ""
    user_id: str = ""
    skills: list[str] = field(default_factory=list)  # in the niche being seeded


class Gateway:
    """Just enough of an HTTP client (stdlib only), retrying 429/503 as the API asks."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             attempts: int = 8) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Idempotency-Key": secrets.token_hex(12)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(attempts):
            request = urllib.request.Request(self.url + path, data, headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    raw = resp.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                text = exc.read().decode(errors="replace")
                if exc.code in (429, 503) and attempt + 1 < attempts:
                    time.sleep(float(exc.headers.get("Retry-After") or 1))
                    continue
                raise ApiError(exc.code, text) from None
        raise AssertionError("unreachable")

    def upload_photo(self, data: bytes, token: str) -> str:
        """``POST /v1/media`` with a JPEG body; the new photo's id."""
        request = urllib.request.Request(self.url + "/v1/media", data, {
            "Content-Type": "image/jpeg", "Authorization": f"Bearer {token}"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.loads(resp.read())["id"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith demo", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway")
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--niches", type=int, default=15)
    parser.add_argument("--niche-size", type=int, default=14)
    parser.add_argument("--dataset", type=Path,
                        default=dataset_path(Settings.from_env().extra))
    parser.add_argument("--seed", type=int, default=98)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    gw = Gateway(args.url)
    started = time.monotonic()
    try:
        gw.call("GET", "/healthz")
    except (OSError, ApiError) as exc:
        print(f"kith demo: no gateway at {args.url} ({exc}); start one with `make run`",
              file=sys.stderr)
        return 1

    graph = load_graph(args.dataset)
    tag = secrets.token_hex(2)
    nodes = connected_slice(graph, args.people)
    people = {n: Person(n, f"reed{n}_{tag}", f"{FIRST[n % len(FIRST)]} R{n}") for n in nodes}
    newcomer = Person(-1, f"newcomer_{tag}", "Newcomer")
    pool = ThreadPoolExecutor(args.concurrency)

    def enrol(p: Person) -> None:
        gw.call("POST", "/v1/accounts", {"username": p.username, "password": PASSWORD,
                                          "display_name": p.display_name})
        tokens = gw.call("POST", "/v1/sessions", {"username": p.username,
                                                   "password": PASSWORD})
        p.token, p.user_id = tokens["access_token"], tokens["user_id"]

    list(pool.map(enrol, [*people.values(), newcomer]))

    niches: list[tuple[str, list[Person]]] = []
    kinds: list[str] = []
    for i, (founder, friends) in enumerate(founded_niches(graph, nodes, args.niches,
                                                           args.niche_size)):
        kind = KINDS[i % len(KINDS)]
        owner = people[founder]
        niche = gw.call("POST", "/v1/niches", {
            "name": NAMES[kind].format(owner.display_name.split()[0]), "kind": kind,
            "description": f"Seeded from socfb-Reed98 around node {founder}"}, owner.token)
        members = [people[f] for f in friends] + ([newcomer] if i < 3 else [])
        code = gw.call("POST", f"/v1/niches/{niche['id']}/invites",
                       {"max_uses": len(members) + 1}, owner.token)["code"]
        list(pool.map(lambda m, c=code: gw.call("POST", f"/v1/invites/{c}/accept",
                                                token=m.token), members))
        niches.append((niche["id"], [owner, *members]))
        kinds.append(kind)

    def converse(niche: tuple[str, list[Person]]) -> int:
        niche_id, members = niche
        done = 0
        for i, author in enumerate(rng.sample(members, min(3, len(members)))):
            body: dict[str, Any] = {"text": rng.choice(POSTS)}
            if i == 0:  # the first post of each niche shows a photo (drawn here)
                body["media_ids"] = [gw.upload_photo(demo_photo(rng.randrange(1000)),
                                                     author.token)]
            post = gw.call("POST", f"/v1/niches/{niche_id}/posts", body, author.token)
            for reader in rng.sample(members, min(3, len(members))):
                gw.call("POST", f"/v1/posts/{post['id']}/reactions",
                        {"kind": rng.choice(REACTIONS)}, reader.token)
            gw.call("POST", f"/v1/posts/{post['id']}/comments",
                    {"text": rng.choice(COMMENTS)}, rng.choice(members).token)
            done += 1
        return done

    posts = sum(pool.map(converse, niches))
    purposes = [purpose(gw, rng, niche_id, kind, members) for (niche_id, members), kind
                in zip(niches, kinds, strict=True)]
    posts += sum(purposes)
    conversations = 0
    for _, members in niches[:3]:
        owner = members[0]
        conv = gw.call("POST", "/v1/conversations",
                       {"member_ids": [newcomer.user_id], "title": "Welcome!"}, owner.token)
        gw.call("POST", f"/v1/conversations/{conv['id']}/messages",
                {"client_message_id": "welcome",
                 "text": f"Welcome to Kith, {newcomer.display_name}! Say hi to everyone."},
                owner.token)
        conversations += 1
    for _, members in niches:
        pair = _friends_pair(graph, members)
        if pair is not None:
            a, b = pair
            conv = gw.call("POST", "/v1/conversations", {"member_ids": [b.user_id]}, a.token)
            for i, (sender, text) in enumerate([(a, "Coffee tomorrow?"), (b, "Sure, 10am")]):
                gw.call("POST", f"/v1/conversations/{conv['id']}/messages",
                        {"client_message_id": f"m{i}", "text": text}, sender.token)
            conversations += 1
    pool.shutdown()

    print(json.dumps({"people": len(people) + 1, "niches": len(niches), "posts": posts,
                      "conversations": conversations,
                      "seconds": round(time.monotonic() - started, 1)}))
    print(f"\nKith is seeded. Sign in at {args.url} as\n"
          f"  username: {newcomer.username}\n  password: {PASSWORD}\n"
          f"e.g.  curl -s -X POST {args.url}/v1/sessions -H 'Content-Type: application/json' "
          f"-d '{{\"username\": \"{newcomer.username}\", \"password\": \"{PASSWORD}\"}}'")
    return 0


def purpose(gw: Gateway, rng: random.Random, niche_id: str, kind: str,
            members: list[Person]) -> int:
    """Show what the kind is for: personas, skills and endorsements, highlights, asks and
    moments. Returns the number of typed posts made."""
    unlocked, made = UNLOCKS[kind], 0
    today = datetime.date.today()
    for i, m in enumerate(members):
        first = m.display_name.split()[0]
        profile: dict[str, Any] = {}
        if kind in PERSONAS:
            profile["display_name"] = PERSONAS[kind][i % len(PERSONAS[kind])].format(first)
        if "birthday" in unlocked:
            profile["birthday"] = (today + datetime.timedelta(days=3 + 11 * i)).strftime("%m-%d")
        if "reading" in unlocked:
            profile["reading"] = {k: BOOKS[i % len(BOOKS)][0][k] for k in ("title", "author")}
        if "skills" in unlocked:
            profile["skills"] = [{"name": s, "level": rng.choice(["beginner", "expert"])}
                                 for s in rng.sample(SKILLS, 3)]
        if "headline" in unlocked:
            profile["headline"] = f"{HEADLINES[i % len(HEADLINES)]} — ask me anything"
        gw.call("PUT", f"/v1/niches/{niche_id}/profile", profile, m.token)
        m.skills = [s["name"] for s in profile.get("skills", [])]
    if "moment" in unlocked:
        for (moment, text, offset), author in zip(MOMENTS, members, strict=False):
            date = (today + datetime.timedelta(days=offset)).isoformat()
            post = gw.call("POST", f"/v1/niches/{niche_id}/posts", {
                "type": "moment", "text": text, "moment": {"kind": moment, "date": date}},
                author.token)
            for reader in rng.sample(members, min(3, len(members))):
                gw.call("POST", f"/v1/posts/{post['id']}/reactions",
                        {"kind": "support" if moment == "surgery" else "congrats"},
                        reader.token)
            made += 1
    if "highlight" in unlocked:
        for (book, quote), author in zip(BOOKS, members, strict=False):
            gw.call("POST", f"/v1/niches/{niche_id}/posts", {
                "type": "highlight", "book": book, "quote": quote,
                "page": rng.randint(1, 300), "text": "This stayed with me."}, author.token)
            made += 1
    if "ask" in unlocked and len(members) > 1:
        for (question, skill), author in zip(ASKS, members, strict=False):
            post = gw.call("POST", f"/v1/niches/{niche_id}/posts",
                           {"type": "ask", "text": question, "skill": skill}, author.token)
            helper = next(m for m in members if m is not author)
            comment = gw.call("POST", f"/v1/posts/{post['id']}/comments",
                              {"text": "I can help — free on Saturday?"}, helper.token)
            gw.call("POST", f"/v1/posts/{post['id']}/answer", {"comment_id": comment["id"]},
                    author.token)
            for skill_name in helper.skills[:1]:
                gw.call("POST", f"/v1/niches/{niche_id}/members/{helper.user_id}/endorsements",
                        {"skill": skill_name}, author.token)
            made += 1
    return made


def _friends_pair(graph: Graph, members: Iterable[Person]
                  ) -> tuple[Person, Person] | None:
    listed = [m for m in members if m.node >= 0]
    for a in listed:
        for b in listed:
            if a.node < b.node and b.node in graph[a.node]:
                return a, b
    return None
