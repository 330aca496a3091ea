"""Long, multi-session chats between two people, with questions about them (LoCoMo-like).

    .venv/bin/python -m bench.dialogues [--seed 11] [--conversations 8] [--out DIR]

Deterministic and offline: the same seed gives the same dialogues. Each conversation is two
people (names, a partner, a child, a sibling, a home town) chatting in 15–30 sessions over six to
ten months, 10–30 messages a session: small talk, plans, family, work, hobbies, travel, health
and changes of mind. Facts come from a bank of life events ("kinds"), each told in one of several
natural phrasings, sometimes in two steps months apart (a plan, then what became of it), among
filler that shares the questions' everyday words ("new", "trip", "work", "family", ...).

Questions are asked the way people ask, by name and in other words than the evidence:
single-hop, temporal ("when did …", the answer needs the session's date), multi-hop (two or more
evidence messages), change-of-mind (the evidence is the latest statement, sometimes with the
first) and open-domain (an inference from what was said). Each names its evidence message ids.

Each fact-bearing message also comes with the memory item a careful extractor would write of it
(`Item`, as `memory.items` keeps them): one short plain sentence about the person, with the
date the message says, its kind (fact, preference or decision) and its source message; where
the person changes their mind, the newer item replaces the older. Small talk gives none. These
"oracle" items are what bench.recall_evidence --items oracle feeds memory.

With --out, writes DIR/<id>.transcript.jsonl (`id`, `speaker`, `text`, `timestamp`),
DIR/<id>.questions.jsonl (`question`, `category`, `evidence`, `answer`) and DIR/<id>.items.jsonl
(`id`, `text`, `kind`, `source`, `date`, `replaces`) per conversation.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

SINGLE_HOP = "single-hop"
MULTI_HOP = "multi-hop"
TEMPORAL = "temporal"
CHANGE = "change-of-mind"
OPEN_DOMAIN = "open-domain"
CATEGORIES = (SINGLE_HOP, MULTI_HOP, TEMPORAL, CHANGE, OPEN_DOMAIN)


@dataclass(frozen=True)
class Message:
    id: str
    speaker: str
    text: str
    timestamp: str  # ISO-8601 with timezone

    def content(self) -> str:
        """The message as memory keeps it: one turn, said by the speaker."""
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class Question:
    question: str
    category: str
    evidence: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Item:
    """The memory item a careful extractor writes of one fact-bearing message."""

    id: str
    text: str  # one short plain sentence about the person, with the date the message says
    kind: str  # fact, preference or decision
    source: str  # the message's id
    date: str  # YYYY-MM-DD: the day the message was said
    replaces: str = ""  # the id of the item this one replaces (a change of mind), if any


@dataclass(frozen=True)
class Conversation:
    id: str
    speakers: tuple[str, str]
    messages: tuple[Message, ...]
    questions: tuple[Question, ...]
    items: tuple[Item, ...] = ()  # in the order their messages were said


# ---------------------------------------------------------------------------------------------
# The bank of life events. Templates are filled with the person's details ({partner}, {kid},
# {sibling}, {town}), pronouns ({they}, {their}, {them}), the option's slots and, per step,
# {when}: a relative time ("last Saturday") that temporal answers resolve with the session date.


@dataclass(frozen=True)
class Step:
    says: tuple[str, ...]  # what the person says (one is chosen)
    replies: tuple[str, ...] = ()  # what the other answers
    prompts: tuple[str, ...] = ()  # what the other may ask first
    gap: tuple[int, int] = (1, 5)  # sessions after the previous step


@dataclass(frozen=True)
class Ask:
    category: str
    steps: tuple[int, ...]  # the steps whose messages are the evidence
    phrasings: tuple[str, ...]
    answer: str = ""  # a template; "{date0}" is step 0's resolved date


@dataclass(frozen=True)
class Kind:
    name: str
    options: tuple[dict[str, str], ...]
    steps: tuple[Step, ...]
    asks: tuple[Ask, ...]
    event: str = ""  # for "which came first" questions, e.g. "getting the {pet_q}"
    chatter: tuple[str, ...] = ()  # on-topic talk that is not evidence (distractors)


def _o(**slots: str) -> dict[str, str]:
    return slots


KINDS: tuple[Kind, ...] = (
    Kind(
        "pet",
        (
            _o(
                animal="rescue greyhound",
                pet_q="dog",
                pet="Pixie",
                its="her",
                vet="she's a bit underweight, so extra meals for a while",
                vet_q="needs feeding up",
            ),
            _o(
                animal="ginger kitten from the shelter",
                pet_q="cat",
                pet="Biscuit",
                its="his",
                vet="he's got ear mites, poor thing, drops twice a day",
                vet_q="ear parasites",
            ),
            _o(
                animal="elderly border collie",
                pet_q="dog",
                pet="Mabel",
                its="her",
                vet="her hips are going, so short walks only",
                vet_q="joint problems",
            ),
            _o(
                animal="pair of guinea pigs",
                pet_q="small animals",
                pet="Salt and Pepper",
                its="their",
                vet="their teeth need filing every few months",
                vet_q="dental care",
            ),
            _o(
                animal="three-legged tabby",
                pet_q="cat",
                pet="Captain",
                its="his",
                vet="he's diabetic and needs insulin jabs",
                vet_q="a blood sugar condition",
            ),
            _o(
                animal="dachshund pup",
                pet_q="dog",
                pet="Frank",
                its="his",
                vet="he has to lose weight or his back will suffer",
                vet_q="weight and spine",
            ),
        ),
        (
            Step(
                (
                    "We adopted a {animal} {when}, {its} name's {pet}! The house is chaos",
                    "Big news: we brought home a {animal} {when}. Meet {pet} 😍",
                    "So {partner} finally caved and we picked up a {animal} "
                    "{when}. Called {pet}. {kid} hasn't stopped grinning",
                ),
                (
                    "Oh my goodness, photos please!!",
                    "No way, congratulations! How's {pet} settling in?",
                    "That's lovely. You two are going to be so spoiled for cuddles",
                ),
                ("Anything exciting happen at yours?", "How's the family?"),
            ),
            Step(
                (
                    "Took {pet} for a check-up {when}. Turns out {vet}",
                    "Vet visit with {pet} {when}... apparently {vet}. Not cheap either",
                ),
                ("Oh no, poor {pet}. Hope it's manageable", "Fingers crossed, keep me posted"),
                gap=(2, 6),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                (
                    "What kind of animal did {name}'s family take in?",
                    "What sort of pet did {name} end up getting?",
                ),
                "{animal}",
            ),
            Ask(
                SINGLE_HOP,
                (0,),
                ("What did {name} call the new {pet_q}?", "What's the name of {name}'s {pet_q}?"),
                "{pet}",
            ),
            Ask(
                TEMPORAL,
                (0,),
                (
                    "When did {name} bring the {pet_q} home?",
                    "When did {name}'s household get their {pet_q}?",
                ),
                "{date0}",
            ),
            Ask(
                MULTI_HOP,
                (0, 1),
                (
                    "What health issue does the {pet_q} {name} adopted have?",
                    "What did {name} learn at the animal clinic about the pet they took in?",
                ),
                "{pet}: {vet_q}",
            ),
            Ask(
                OPEN_DOMAIN,
                (0,),
                (
                    "Would {name} probably enjoy a pet-friendly holiday cottage?",
                    "Is {name} likely to be an animal person?",
                ),
                "yes, has a {pet_q}",
            ),
        ),
        event="getting the {pet_q}",
        chatter=(
            "Our neighbour's dog barked all night again, I could have cried",
            "I'd love a pet but honestly who has the time",
            "Saw the cutest dog at the park today, it had little boots on",
            "My cousin's cat knocked the Christmas tree over, again",
        ),
    ),
    Kind(
        "craft",
        (
            _o(
                craft="throw pots at that studio near the river",
                craft_q="pottery",
                made="a bowl that didn't collapse in the kiln",
                fair="a ceramics fair",
            ),
            _o(
                craft="do salsa on Thursday nights above the Turkish bakery",
                craft_q="dance",
                made="a whole routine without stepping on anyone",
                fair="a Latin dance festival",
            ),
            _o(
                craft="climb at the bouldering wall by the station",
                craft_q="climbing",
                made="my first orange route, arms like jelly after",
                fair="a trip to the Peak District crags",
            ),
            _o(
                craft="play the cello, my teacher is ridiculously patient",
                craft_q="music",
                made="a full piece, badly, but all the way through",
                fair="a chamber concert",
            ),
            _o(
                craft="paint with watercolours at the community centre",
                craft_q="art",
                made="a little harbour scene that's actually on our fridge",
                fair="a gallery day",
            ),
            _o(
                craft="make furniture at an evening woodwork course",
                craft_q="carpentry",
                made="a wonky but sturdy stool",
                fair="a timber-framing workshop",
            ),
            _o(
                craft="knit, one of the mums at school got me into it",
                craft_q="yarn craft",
                made="a scarf, with only three holes in it",
                fair="a wool festival",
            ),
        ),
        (
            Step(
                (
                    "I've been learning to {craft}. Started {when} and I'm weirdly hooked",
                    "Guess what, I signed up to {craft}! First session was {when}",
                    "New thing: I'm trying to {craft}. Went for the first time {when}, "
                    "total disaster but fun",
                ),
                (
                    "Ha, love that for you",
                    "Oh that's brilliant, you'll have to show me",
                    "Look at you with a new hobby!",
                ),
                ("What have you been up to in the evenings?", "Done anything fun lately?"),
            ),
            Step(
                (
                    "Progress report: I finally finished {made}!",
                    "Remember that class I told you about? I made {made}",
                ),
                ("Told you you'd be good at it!", "Amazing, I want to see it"),
                gap=(2, 7),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                (
                    "What hobby has {name} picked up?",
                    "What does {name} do in the new evening class?",
                ),
                "{craft_q}",
            ),
            Ask(
                TEMPORAL,
                (0,),
                (
                    "When did {name} start the {craft_q} lessons?",
                    "When did {name} first go to the {craft_q} class?",
                ),
                "{date0}",
            ),
            Ask(
                MULTI_HOP,
                (0, 1),
                ("What has {name} managed to produce since taking up {craft_q}?",),
                "{made}",
            ),
            Ask(OPEN_DOMAIN, (0,), ("Would {name} likely enjoy {fair}?",), "probably yes"),
        ),
        event="starting {craft_q}",
        chatter=(
            "My sister keeps telling me to get a hobby that isn't my phone",
            "There's a flyer at work for evening classes, never gone though",
            "I tried yoga once and pulled something, never again",
        ),
    ),
    Kind(
        "trip",
        (
            _o(
                first="Lisbon",
                final="Porto",
                mon="May",
                why="flights were half the price",
                region="Portugal",
                company="{sibling}",
            ),
            _o(
                first="Edinburgh",
                final="Galway",
                mon="June",
                why="a mate has a spare room there",
                region="the British Isles",
                company="{partner}",
            ),
            _o(
                first="Seville",
                final="Valencia",
                mon="April",
                why="Seville's too hot apparently",
                region="Spain",
                company="two friends from uni",
            ),
            _o(
                first="Rome",
                final="Naples",
                mon="September",
                why="Rome hotels were crazy",
                region="Italy",
                company="{partner} and {kid}",
            ),
            _o(
                first="Copenhagen",
                final="Stockholm",
                mon="August",
                why="a cheap ferry deal",
                region="Scandinavia",
                company="my old flatmate",
            ),
            _o(
                first="Kraków",
                final="Prague",
                mon="October",
                why="the train works out easier",
                region="central Europe",
                company="{sibling}",
            ),
        ),
        (
            Step(
                (
                    "We're thinking {first} for a long weekend in {mon}, never been",
                    "Plan is {first} in {mon}, just the hotel left to sort",
                    "I've basically decided: {first}, {mon}. I need a break so badly",
                ),
                ("Ooh, jealous", "Great choice, the food there is unreal"),
                ("Any holidays planned?", "Are you going away at all this year?"),
            ),
            Step(
                (
                    "Change of plans, it's {final} now, not {first}. {why}. {company} is coming "
                    "along too",
                    "Scrap {first}! Booked {final} instead because {why}. And {company} is joining",
                ),
                ("Ha, fair enough", "Even better honestly"),
                gap=(1, 4),
            ),
        ),
        (
            Ask(
                CHANGE,
                (1,),
                (
                    "Where is {name} going on holiday in {mon}?",
                    "Which city did {name} end up picking for the {mon} getaway?",
                ),
                "{final}",
            ),
            Ask(
                CHANGE,
                (0, 1),
                (
                    "Where had {name} originally planned to go before switching, "
                    "and why the switch?",
                ),
                "{first}; {why}",
            ),
            Ask(
                MULTI_HOP, (1,), ("Who is travelling with {name} on the {mon} break?",), "{company}"
            ),
            Ask(OPEN_DOMAIN, (0, 1), ("Is {name} likely to visit {region} this year?",), "yes"),
        ),
        event="booking the {mon} getaway",
        chatter=(
            "Airport queues this summer are going to be a nightmare",
            "I haven't had a proper holiday in two years, it's tragic",
            "Our office is doing a team trip, which sounds awful",
        ),
    ),
    Kind(
        "job",
        (
            _o(
                firm="a little logistics startup",
                firm_q="shipping",
                boss="Rachel",
                bossline="she used to run operations at a supermarket chain",
            ),
            _o(
                firm="the council's planning department",
                firm_q="local government",
                boss="Dev",
                bossline="he cycles in from forty miles away, mad man",
            ),
            _o(
                firm="a games studio in the old mill",
                firm_q="video game",
                boss="Yusuf",
                bossline="he brings his dog to stand-ups",
            ),
            _o(
                firm="one of the big hospitals",
                firm_q="healthcare",
                boss="Margaret",
                bossline="she's terrifying but fair",
            ),
            _o(
                firm="an architecture practice across town",
                firm_q="building design",
                boss="Olu",
                bossline="he remembers everyone's coffee order",
            ),
            _o(
                firm="a charity that does food banks",
                firm_q="non-profit",
                boss="Bea",
                bossline="she does everything by handwritten lists",
            ),
        ),
        (
            Step(
                (
                    "I handed in my notice {when}!! I'm going to {firm}",
                    "So... I resigned {when}. Taking an offer from {firm}",
                    "Told my boss I'm leaving {when}. Off to {firm}, wish me luck",
                ),
                (
                    "Whoa, big move! Proud of you",
                    "About time, that place was draining you",
                    "Congrats!! When do you start?",
                ),
                ("How's work?", "Still hating the commute?"),
            ),
            Step(
                (
                    "First weeks at the new place done. My manager {boss} seems great, {bossline}",
                    "New job update: my boss is called {boss}, {bossline}. So far so good",
                ),
                ("Sounds like a good one", "Haha love that"),
                gap=(1, 3),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                (
                    "What sort of organisation is {name} joining?",
                    "In what field is {name}'s next employer?",
                ),
                "{firm}",
            ),
            Ask(
                TEMPORAL,
                (0,),
                ("When did {name} quit the old job?", "When did {name} resign?"),
                "{date0}",
            ),
            Ask(
                MULTI_HOP,
                (0, 1),
                (
                    "Who is {name}'s manager at the {firm_q} place?",
                    "What's the name of the person {name} reports to now?",
                ),
                "{boss}",
            ),
        ),
        event="changing jobs",
        chatter=(
            "Work has been mental this week, three deadlines at once",
            "Had a performance review, it was fine, just long",
            "Our manager sent an email at 11pm, who does that",
            "Everyone at work is off sick, I'm doing three jobs",
        ),
    ),
    Kind(
        "family_move",
        (
            _o(rel="Mom", rel_q="mother", cond="after Christmas", fix="the spare room"),
            _o(rel="Dad", rel_q="father", cond="once his flat sells", fix="the garage"),
            _o(
                rel="my gran", rel_q="grandmother", cond="in the spring", fix="the downstairs study"
            ),
            _o(rel="my uncle Pete", rel_q="uncle", cond="after his operation", fix="the loft"),
        ),
        (
            Step(
                (
                    "{rel} finally agreed to move in with us {cond}",
                    "Big family news: {rel} is coming to live with us {cond}. Deep breaths",
                    "We talked {rel} round, moving in with us {cond}. {partner} is a saint",
                ),
                (
                    "That's a big step, how do you feel?",
                    "Aw, that'll be nice for {kid}",
                    "Wow. Brave!",
                ),
                ("How's everyone at home?",),
            ),
            Step(
                (
                    "We've started turning {fix} into a bedroom, it's carnage",
                    "Spent all weekend clearing {fix} so it's ready for {rel}",
                ),
                ("You'll get there", "Sounds like hard work"),
                gap=(1, 4),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                (
                    "Which relative is going to live at {name}'s house?",
                    "Who from {name}'s family is joining the household?",
                ),
                "{rel_q}",
            ),
            Ask(SINGLE_HOP, (0,), ("When will {name}'s {rel_q} be settling in?",), "{cond}"),
            Ask(
                MULTI_HOP,
                (0, 1),
                ("Which part of the house is {name} converting, and for whom?",),
                "{fix}, for {rel_q}",
            ),
        ),
        chatter=(
            "My parents are visiting next weekend, I need to clean everything",
            "Family group chat is unbearable today",
            "Mum rang three times during my meeting, all about the weather",
        ),
    ),
    Kind(
        "injury",
        (
            _o(
                hurt="tore a ligament in my knee",
                how="playing five-a-side",
                part_q="leg",
                sport_q="football",
                wait="eight weeks",
            ),
            _o(
                hurt="broke my wrist",
                how="falling off my bike on the canal path",
                part_q="arm",
                sport_q="cycling",
                wait="six weeks in a cast",
            ),
            _o(
                hurt="sprained my ankle badly",
                how="slipping on the ice outside the bakery",
                part_q="foot",
                sport_q="walking on frozen pavement",
                wait="a month",
            ),
            _o(
                hurt="put my back out",
                how="lifting a sofa for my neighbour",
                part_q="spine",
                sport_q="moving furniture",
                wait="three weeks of physio",
            ),
            _o(
                hurt="cracked two ribs",
                how="at a trampoline park with {kid}, don't ask",
                part_q="chest",
                sport_q="bouncing",
                wait="six weeks",
            ),
        ),
        (
            Step(
                (
                    "Update: I {hurt} {when}, {how}. Absolute idiot",
                    "So I {hurt} {when}, {how}. Hobbling everywhere",
                    "Don't laugh: {hurt} {when}, {how}",
                ),
                ("Oh no!! Are you OK?", "Ouch, that sounds awful", "How on earth?!"),
                ("How are you doing?", "You've been quiet, all good?"),
            ),
            Step(
                (
                    "Physio says {wait} before I'm back to normal. So much telly",
                    "Doctor reckons {wait} until it's healed. Ugh",
                ),
                ("Rest up", "At least you've got an excuse to sit down"),
                gap=(1, 3),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("How did {name} get hurt?", "What was {name} doing when the accident happened?"),
                "{how}",
            ),
            Ask(
                TEMPORAL,
                (0,),
                ("When did {name} have the accident?", "When did {name} injure {their} {part_q}?"),
                "{date0}",
            ),
            Ask(MULTI_HOP, (0, 1), ("How long is {name}'s recovery expected to take?",), "{wait}"),
        ),
        event="getting injured",
        chatter=(
            "My back's been aching all week, I think it's the chair at work",
            "Went to the doctor for my cough, she says it's just a cold",
            "Everyone I know seems to be ill at the moment",
        ),
    ),
    Kind(
        "house",
        (
            _o(
                area="Hillside, near the big park",
                area_q="by the park",
                cost="the mortgage",
                room="a tiny garden",
            ),
            _o(
                area="the old docks, third floor, no lift",
                area_q="by the waterfront",
                cost="rent",
                room="a view of the cranes",
            ),
            _o(
                area="the village just outside {town}",
                area_q="out of the city",
                cost="the mortgage",
                room="an actual driveway",
            ),
            _o(
                area="Greenfield Road, right by the tram stop",
                area_q="by public transport",
                cost="rent",
                room="a second bathroom",
            ),
        ),
        (
            Step(
                (
                    "We got the keys to the new place {when}! It's in {area}",
                    "Moved {when}. We're in {area} now, boxes everywhere",
                    "Officially moved out {when}, the new flat's in {area}",
                ),
                ("Yay, housewarming when?", "Congrats! Send me the address"),
                ("How's the house hunting?",),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("Which neighbourhood does {name} live in now?", "Where's {name}'s new home?"),
                "{area}",
            ),
            Ask(TEMPORAL, (0,), ("When did {name} relocate?",), "{date0}"),
        ),
        event="relocating",
        chatter=(
            "House prices round here are a joke",
            "Our landlord still hasn't fixed the boiler, it's been weeks",
            "I keep looking at houses online at midnight, it's a problem",
        ),
    ),
    Kind(
        "vehicle",
        (
            _o(
                first="a Golf",
                final="a little electric Fiat",
                why="the charging point at work sealed it",
                car_q="battery-powered",
            ),
            _o(
                first="an estate car",
                final="a cargo bike",
                why="we barely drive anyway",
                car_q="pedal-powered",
            ),
            _o(
                first="a brand-new Corolla",
                final="a ten-year-old Volvo",
                why="half the price",
                car_q="second-hand",
            ),
            _o(
                first="a camper van",
                final="a boring hatchback",
                why="{partner} saw sense",
                car_q="practical",
            ),
        ),
        (
            Step(
                (
                    "I think we're getting {first}, the old banger failed its MOT",
                    "Leaning towards {first} now that the old one's dying",
                ),
                ("Ooh exciting", "Practical choice"),
            ),
            Step(
                (
                    "Forget {first}. We went with {final}, {why}",
                    "Plot twist, we bought {final} instead of {first}. {why}",
                ),
                ("Ha, didn't see that coming", "Nice, very you"),
                gap=(1, 3),
            ),
        ),
        (
            Ask(
                CHANGE,
                (1,),
                (
                    "What did {name} end up buying to get around?",
                    "What vehicle does {name} have now?",
                ),
                "{final}",
            ),
            Ask(
                CHANGE,
                (0, 1),
                ("What was {name}'s first choice of transport before changing their mind?",),
                "{first}",
            ),
            Ask(OPEN_DOMAIN, (1,), ("Is {name}'s new ride {car_q}?",), "yes"),
        ),
        chatter=(
            "Petrol prices are ridiculous again",
            "Traffic this morning was unreal, took an hour to go two miles",
            "Someone scraped my car in the supermarket car park",
        ),
    ),
    Kind(
        "school",
        (
            _o(
                school="St Anne's, the little one with the goats",
                school_q="small primary",
                worry="cried at the gate",
            ),
            _o(
                school="the Montessori place on Elm Street",
                school_q="alternative",
                worry="refused to take off the coat all day",
            ),
            _o(school="Riverside Primary", school_q="local state", worry="hid behind my legs"),
        ),
        (
            Step(
                (
                    "{kid} started at {school} {when}, {worry}, I was a wreck",
                    "First day for {kid} at {school} {when}. {worry}. I held it together... mostly",
                ),
                ("Aww, the first day is the worst", "Big milestone, hugs to {kid}"),
                ("How's {kid} doing?",),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("Which school does {name}'s child go to?", "Where is {kid} being educated?"),
                "{school}",
            ),
            Ask(TEMPORAL, (0,), ("When was {kid}'s first day at school?",), "{date0}"),
            Ask(SINGLE_HOP, (0,), ("How did {kid} react on the first morning?",), "{worry}"),
        ),
        event="{kid} starting school",
        chatter=(
            "Kids are off school next week, pray for me",
            "The school wants another tenner for a trip, third this month",
            "Parents' evening was fine, apparently he talks too much in class",
        ),
    ),
    Kind(
        "wedding",
        (
            _o(
                venue="a barn in Devon",
                venue2="the registry office and a pub after",
                season="next summer",
                why="the barn double-booked them",
            ),
            _o(
                venue="a vineyard near Bordeaux",
                venue2="her in-laws' garden",
                season="next June",
                why="nobody could afford France",
            ),
            _o(
                venue="a castle in Scotland",
                venue2="a beach in Cornwall",
                season="in May",
                why="the castle wanted a fortune",
            ),
        ),
        (
            Step(
                (
                    "{sibling} got engaged {when}!! Wedding's {season} at {venue}",
                    "Family news: {sibling} and her fella are getting married! Proposed {when}. "
                    "They want {venue}, {season}",
                ),
                ("Eee congrats to them!", "Oh lovely, you'll have to do a speech"),
            ),
            Step(
                (
                    "Wedding update: it's now at {venue2}, {why}",
                    "They've moved the wedding to {venue2}. {why}, drama",
                ),
                ("Honestly that sounds nicer", "Ha, weddings are chaos"),
                gap=(2, 5),
            ),
        ),
        (
            Ask(SINGLE_HOP, (0,), ("Who in {name}'s family is getting married?",), "{sibling}"),
            Ask(TEMPORAL, (0,), ("When did {name}'s sister get proposed to?",), "{date0}"),
            Ask(
                CHANGE,
                (1,),
                (
                    "Where will {sibling}'s ceremony take place?",
                    "What's the venue for {name}'s sister's big day?",
                ),
                "{venue2}",
            ),
            Ask(CHANGE, (0, 1), ("Why did the venue for {sibling}'s marriage change?",), "{why}"),
        ),
        event="{sibling}'s engagement",
        chatter=(
            "Went to a wedding last year where the best man cried through the whole speech",
            "Weddings are so expensive now, it's mad",
        ),
    ),
    Kind(
        "race",
        (
            _o(race="the Bristol half marathon", mon="October", dist_q="21k", time="1:58"),
            _o(race="a 10k around the lake", mon="June", dist_q="ten kilometre", time="52 minutes"),
            _o(
                race="a sprint triathlon in the bay",
                mon="July",
                dist_q="swim-bike-run",
                time="1 hour 24",
            ),
        ),
        (
            Step(
                (
                    "I've signed up for {race} in {mon}. What have I done",
                    "Entered {race}, it's in {mon}. Training starts tomorrow, allegedly",
                ),
                ("You'll smash it", "Rather you than me haha"),
            ),
            Step(
                (
                    "Did it!! Finished in {time}, legs are destroyed",
                    "Crossed the line in {time}. Cried a bit. Never again (until next year)",
                ),
                ("Legend!!", "That's a great time!"),
                gap=(2, 5),
            ),
        ),
        (
            Ask(SINGLE_HOP, (0,), ("What event did {name} enter for {mon}?",), "{race}"),
            Ask(
                MULTI_HOP,
                (0, 1),
                ("How long did it take {name} to complete the {dist_q} event?",),
                "{time}",
            ),
            Ask(
                OPEN_DOMAIN,
                (0, 1),
                ("Would {name} be interested in a running club?",),
                "likely yes",
            ),
        ),
        event="the {dist_q} event",
        chatter=(
            "I went for a jog and lasted about four minutes",
            "My watch says I walked 3,000 steps today, shameful",
        ),
    ),
    Kind(
        "language",
        (
            _o(
                lang="Japanese",
                why="we're hoping to go to Osaka next spring",
                learn_q="Asian tongue",
            ),
            _o(
                lang="Portuguese",
                why="{partner}'s family are from Brazil",
                learn_q="Romance tongue",
            ),
            _o(lang="Welsh", why="{kid}'s school does it and I'm lost", learn_q="Celtic tongue"),
            _o(
                lang="Greek",
                why="I want to talk to my grandma's side properly",
                learn_q="Mediterranean tongue",
            ),
        ),
        (
            Step(
                (
                    "I'm doing {lang} on an app every morning, {why}",
                    "Started {lang} lessons {when}. {why}",
                ),
                ("Say something in it!", "Impressive, I can barely do English"),
            ),
        ),
        (
            Ask(SINGLE_HOP, (0,), ("Which language is {name} studying?",), "{lang}"),
            Ask(SINGLE_HOP, (0,), ("Why did {name} decide to learn a new {learn_q}?",), "{why}"),
        ),
        chatter=("I did French at school and remember exactly one sentence",),
    ),
    Kind(
        "diet",
        (
            _o(diet="vegetarian", food_q="meat", missed="bacon"),
            _o(diet="vegan", food_q="animal products", missed="cheese"),
            _o(diet="off sugar", food_q="sweets", missed="chocolate biscuits"),
        ),
        (
            Step(
                (
                    "I've gone {diet} since {when}, feeling good so far",
                    "Decided to go {diet}, started {when}. {partner} is not impressed",
                ),
                ("Good for you", "Oh wow, how's it going?"),
            ),
            Step(
                (
                    "Confession: I gave up on the {diet} thing. Missed {missed} too much",
                    "Yeah the {diet} experiment is over, {missed} won",
                ),
                ("Haha, we all have our limits", "Fair, life's short"),
                gap=(2, 6),
            ),
        ),
        (
            Ask(
                CHANGE,
                (1,),
                (
                    "Does {name} still avoid {food_q}?",
                    "Is {name} still sticking to the new eating plan?",
                ),
                "no",
            ),
            Ask(TEMPORAL, (0,), ("When did {name} cut out {food_q}?",), "{date0}"),
            Ask(MULTI_HOP, (0, 1), ("What made {name} give up on the eating plan?",), "{missed}"),
        ),
        chatter=(
            "Had a massive burger for lunch, no regrets",
            "Trying to eat better but the office keeps buying doughnuts",
        ),
    ),
    Kind(
        "promotion",
        (
            _o(title="team lead", raise_q="leadership", perk="a proper desk by the window"),
            _o(title="senior analyst", raise_q="more senior", perk="Fridays from home"),
            _o(title="head of the night shift", raise_q="management", perk="a parking space"),
        ),
        (
            Step(
                (
                    "They made me {title} {when}! Still can't quite believe it",
                    "So I got the {title} role, found out {when}. And {perk}",
                ),
                ("YES! Drinks on you", "Knew it, well deserved"),
                ("Any news from work?",),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("What new position did {name} get?", "What's {name}'s title after moving up?"),
                "{title}",
            ),
            Ask(TEMPORAL, (0,), ("When did {name} hear about the promotion?",), "{date0}"),
        ),
        event="the promotion",
    ),
    Kind(
        "concert",
        (
            _o(band="Arctic Monkeys", venue="the arena", genre_q="indie rock"),
            _o(band="Adele", venue="Hyde Park", genre_q="soul-pop"),
            _o(band="the symphony orchestra", venue="the cathedral", genre_q="classical"),
            _o(band="Fontaines D.C.", venue="the old ballroom", genre_q="post-punk"),
        ),
        (
            Step(
                (
                    "Got tickets to see {band} at {venue}!! {partner} doesn't know yet",
                    "Managed to grab two tickets for {band}, {venue}, after an hour in the queue",
                ),
                ("Jealous!!", "Ahh amazing, what a night that'll be"),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("Who is {name} going to watch perform?", "Which act did {name} buy seats for?"),
                "{band}",
            ),
            Ask(OPEN_DOMAIN, (0,), ("Does {name} probably like {genre_q} music?",), "yes"),
        ),
        chatter=("Concert tickets cost a fortune now, I miss the old days",),
    ),
    Kind(
        "allergy",
        (
            _o(allergen="hazelnuts", react="my lips swelled up", safe_q="nut"),
            _o(allergen="penicillin", react="I came out in a rash everywhere", safe_q="antibiotic"),
            _o(
                allergen="cats, of all things",
                react="eyes streaming, couldn't breathe",
                safe_q="feline",
            ),
        ),
        (
            Step(
                (
                    "Turns out I'm allergic to {allergen}. Found out {when}, {react}",
                    "Had a reaction {when}, {react}. Doctor says it's {allergen}",
                ),
                ("Scary! Glad you're OK", "Oh no, that's so scary"),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                (
                    "What does {name} react badly to?",
                    "What must {name} stay away from for health reasons?",
                ),
                "{allergen}",
            ),
            Ask(OPEN_DOMAIN, (0,), ("Should {name} be careful with {safe_q} products?",), "yes"),
        ),
    ),
    Kind(
        "volunteer",
        (
            _o(place="the food bank", when_q="Saturday mornings", cause_q="hunger"),
            _o(place="an animal sanctuary out past {town}", when_q="Sundays", cause_q="animals"),
            _o(
                place="a reading club at the library for kids",
                when_q="Wednesdays after work",
                cause_q="literacy",
            ),
        ),
        (
            Step(
                (
                    "I've started helping out at {place}, {when_q}. Makes me feel useful",
                    "Been giving my {when_q} to {place} lately, it's really grounding",
                ),
                ("That's so good of you", "Love that"),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("Where does {name} do unpaid work?", "What cause does {name} give time to?"),
                "{place}",
            ),
            Ask(
                SINGLE_HOP,
                (0,),
                ("On which days is {name} busy with the charity work?",),
                "{when_q}",
            ),
        ),
    ),
    Kind(
        "renovation",
        (
            _o(room="kitchen", first="navy", final="sage green", why="navy looked like a cave"),
            _o(
                room="bathroom",
                first="white tiles",
                final="terracotta",
                why="{partner} said white was boring",
            ),
            _o(
                room="living room",
                first="grey",
                final="warm yellow",
                why="the grey was so depressing",
            ),
        ),
        (
            Step(
                (
                    "We're finally redoing the {room}. Going {first}, I think",
                    "Ordered samples for the {room}, {first} is winning",
                ),
                ("Fancy!", "Ooh bold"),
            ),
            Step(
                (
                    "Update on the {room}: not {first} any more, we went {final}. {why}",
                    "Changed our minds on the {room}, it's {final} now. {why}",
                ),
                ("Send pics", "Sounds lovely"),
                gap=(1, 3),
            ),
        ),
        (
            Ask(CHANGE, (1,), ("What colour scheme did {name} settle on at home?",), "{final}"),
            Ask(CHANGE, (0, 1), ("Why did {name} switch away from the original colour?",), "{why}"),
        ),
    ),
    Kind(
        "book",
        (
            _o(book="Project Hail Mary", kind_q="science fiction", next="The Martian"),
            _o(book="the new Sally Rooney", kind_q="literary fiction", next="Normal People"),
            _o(book="a biography of Shackleton", kind_q="polar exploration", next="Endurance"),
            _o(book="Pachinko", kind_q="family saga", next="Free Food for Millionaires"),
        ),
        (
            Step(
                (
                    "Just finished {book}, couldn't put it down. Up till 2am",
                    "Reading {book} at the moment and it's wrecking me",
                ),
                ("Is it good? I need something", "Ooh added to my list"),
                ("Read anything good?",),
            ),
        ),
        (
            Ask(SINGLE_HOP, (0,), ("What did {name} love reading recently?",), "{book}"),
            Ask(
                OPEN_DOMAIN,
                (0,),
                ("Would {name} enjoy {next}?", "Is {name} into {kind_q}?"),
                "likely yes",
            ),
        ),
        chatter=("I haven't read a book in months, just scroll", "Book club picked a dud again"),
    ),
    Kind(
        "garden",
        (
            _o(
                plot="an allotment plot behind the church",
                crop="tomatoes and courgettes",
                crop_q="vegetables",
            ),
            _o(plot="a couple of raised beds in the yard", crop="strawberries", crop_q="fruit"),
            _o(plot="a window box on the balcony", crop="basil and chillies", crop_q="herbs"),
        ),
        (
            Step(
                (
                    "We got {plot} {when}! Going to grow {crop}",
                    "Finally have {plot}, set it up {when}. {crop} first",
                ),
                ("Ooh, bring me some", "Very good life of you"),
            ),
        ),
        (
            Ask(
                SINGLE_HOP,
                (0,),
                ("What is {name} planting?", "What produce is {name} hoping to harvest?"),
                "{crop}",
            ),
            Ask(TEMPORAL, (0,), ("When did {name} get the growing space?",), "{date0}"),
        ),
        event="starting to grow {crop_q}",
    ),
    Kind(
        "childhood",
        (
            _o(home="above my uncle's bakery in Cork", home_q="Ireland"),
            _o(home="on a farm outside Lahore", home_q="Pakistan"),
            _o(home="in a tiny flat in Naples", home_q="Italy"),
            _o(home="on an army base in Germany", home_q="Germany"),
            _o(home="by the sea in Accra", home_q="Ghana"),
        ),
        (
            Step(
                (
                    "When I was little we lived {home}, I still dream about it",
                    "That smell takes me straight back to growing up {home}",
                ),
                ("That sounds magical", "I never knew that about you!"),
            ),
        ),
        (
            Ask(SINGLE_HOP, (0,), ("Where did {name} spend {their} early years?",), "{home}"),
            Ask(OPEN_DOMAIN, (0,), ("Has {name} ever lived in {home_q}?",), "yes"),
        ),
    ),
)


# What a careful extractor keeps of each step's message (memory.items), per kind and step: for
# each item, its kind, one short plain sentence about the person ({on}: the date the message
# says, where it says one) and, for a change of mind, which of the step before's items it
# replaces (by position). Written in third person from the message alone, or from it and the
# item it replaces (which the extractor is shown).
ITEMS: dict[tuple[str, int], tuple[tuple[str, str, int | None], ...]] = {
    ("pet", 0): (("fact", "{name}'s family adopted a {animal} called {pet}{on}", None),),
    ("pet", 1): (("fact", "{name}'s pet {pet} saw the vet{on}: {vet}", None),),
    ("craft", 0): (("fact", "{name} started{on} learning to {craft}", None),),
    ("craft", 1): (("fact", "{name} has finished {made}", None),),
    ("trip", 0): (("decision", "{name} plans to go to {first} in {mon}", None),),
    ("trip", 1): (
        (
            "decision",
            "{name} is going to {final} in {mon} instead of {first}, because {why}; going "
            "with {company}",
            0,
        ),
    ),
    ("job", 0): (("decision", "{name} resigned{on} and is joining {firm}", None),),
    ("job", 1): (("fact", "{name}'s manager at the new job is {boss}: {bossline}", None),),
    ("family_move", 0): (("decision", "{name}'s {rel} is moving in with {them} {cond}", None),),
    ("family_move", 1): (("fact", "{name} is turning {fix} into a bedroom for {rel}", None),),
    ("injury", 0): (("fact", "{name} {hurt}{on}, {how}", None),),
    ("injury", 1): (("fact", "{name}'s recovery will take {wait}", None),),
    ("house", 0): (("fact", "{name} moved{on} to a new home in {area}", None),),
    ("vehicle", 0): (
        ("decision", "{name} is leaning towards buying {first} to replace the old car", None),
    ),
    ("vehicle", 1): (("decision", "{name} bought {final} instead of {first}: {why}", 0),),
    ("school", 0): (
        ("fact", "{name}'s child {kid} started school{on}, at {school}; {kid} {worry}", None),
    ),
    ("wedding", 0): (
        ("fact", "{name} says {sibling} got engaged{on}", None),
        ("decision", "{sibling}'s wedding is planned {season}, at {venue}", None),
    ),
    ("wedding", 1): (
        ("decision", "{sibling}'s wedding has moved to {venue2} (not {venue}), because {why}", 1),
    ),
    ("race", 0): (("decision", "{name} signed up for {race} in {mon}", None),),
    ("race", 1): (("fact", "{name} finished {race} in {time}", None),),
    ("language", 0): (("fact", "{name} started learning {lang}{on} because {why}", None),),
    ("diet", 0): (("decision", "{name} went {diet}{on}", None),),
    ("diet", 1): (("decision", "{name} is no longer {diet}: {they} missed {missed} too much", 0),),
    ("promotion", 0): (("fact", "{name} was promoted to {title}{on}", None),),
    ("concert", 0): (("fact", "{name} has tickets to see {band} at {venue}", None),),
    ("allergy", 0): (("fact", "{name} is allergic to {allergen}; found out{on} ({react})", None),),
    ("volunteer", 0): (("fact", "{name} volunteers at {place} on {when_q}", None),),
    ("renovation", 0): (("decision", "{name} is redoing the {room} in {first}", None),),
    ("renovation", 1): (
        ("decision", "{name} changed the {room} to {final} instead of {first}, because {why}", 0),
    ),
    ("book", 0): (("preference", "{name} is gripped by {book}", None),),
    ("garden", 0): (("fact", "{name} got {plot}{on}, to grow {crop}", None),),
    ("childhood", 0): (("fact", "{name} grew up {home}", None),),
}
# The options' words are the speaker's; an item speaks of the person.
_THIRD_PERSON = (
    (r"(\w)'s my\b", r"\1's"),  # "Priya's my gran": "Priya's gran"
    (r"\bI'm\b", "{they}'s"),
    (r"\bI want\b", "{they} wants"),
    (r"\bI\b", "{they}"),
    (r"\bmy\b", "{their}"),
    (r"\bme\b", "{them}"),
    (r"\bwe're\b", "they're"),
    (r"\bwe\b", "they"),
    (r"\bour\b", "their"),
    (r", don't ask\b", ""),
)


# ---------------------------------------------------------------------------------------------
# Filler: small talk built from parts, so that it seldom repeats and shares the questions'
# everyday words.

OPENERS = (
    "",
    "",
    "",
    "Honestly, ",
    "Ugh, ",
    "Haha ",
    "Oh and ",
    "Anyway, ",
    "Tbh ",
    "So ",
    "Right, ",
    "Random but ",
    "Not gonna lie, ",
)
STATEMENTS = (
    "work has been so busy this week, I barely saw daylight",
    "the kids were a nightmare at bedtime again",
    "I need a holiday, even a weekend away would do",
    "we watched that new series everyone's on about, it was fine",
    "I tried a new recipe and burnt it spectacularly",
    "the weather here has been miserable all week",
    "my phone screen cracked, third time this year",
    "I spent the whole day doing laundry and pretending it was fun",
    "family dinner on Sunday turned into a debate about politics, never again",
    "our new neighbours seem nice, they brought biscuits over",
    "I keep meaning to start going to the gym",
    "{partner} has taken over the living room with a jigsaw",
    "{kid} wants a pet now, every single day",
    "I started a new podcast about history, quite good actually",
    "I'm so tired, didn't sleep at all last night",
    "we had people over for dinner and I forgot the dessert in the oven",
    "my sister called about the holiday plans, it's all very complicated",
    "the trains were cancelled again so I worked from home",
    "I've been thinking about changing things up at work",
    "we're trying to save for a trip but everything costs so much",
    "the car needs new tyres, of course it does",
    "I went for a long walk by the river, it really helped",
    "{kid} has a school play next week, he's a tree",
    "I booked a dentist appointment, finally, after two years",
    "the house is a mess, I've given up",
    "I had the best coffee of my life at that place near the station",
    "{partner} and I are trying to do one new thing every month",
    "there's a new bakery in {town}, the queue is insane",
    "I signed up for a newsletter about gardening by accident",
    "my boss wants everyone back in the office three days a week",
    "we went to the cinema and I fell asleep halfway",
    "I finally cleaned out the garage, found my old bike",
    "my mum sent me a picture of her new haircut, it's very bold",
    "I think I'm coming down with something",
    "the city was packed on Saturday, some festival",
    "I started reading a book and then lost it on the bus",
    "{kid} started learning to ride a bike, lots of grazed knees",
    "we've been talking about getting a bigger place eventually",
    "I made a proper Sunday roast, felt like a real adult",
    "the town centre is all roadworks again",
    "I had a job interview dream, woke up sweating",
    "the new café at work does terrible tea",
    "our family holiday photos finally got printed",
    "I need to plan {partner}'s birthday and I have zero ideas",
    "I spent the whole evening on the phone with the bank",
    "the weekend went way too fast",
    "I tried to fix the washing machine myself, big mistake",
    "the kids want to go camping this summer, God help me",
)
DETAILS = (
    "we were meant to go for a walk but it chucked it down, so we ended up playing board games "
    "and arguing about the rules for two hours",
    "I finally sorted out the spare room, which mostly meant moving boxes from one corner to "
    "another and finding old birthday cards",
    "the meeting that was supposed to take half an hour went on all afternoon and nobody "
    "decided anything, classic",
    "{partner} made a curry from scratch and it was honestly better than the takeaway, I'm "
    "never telling them though",
    "my mum keeps sending me articles about sleep and screens, which I read on my phone at "
    "midnight, so you can see how that's going",
    "we drove out to the coast for the day, fish and chips on the wall, seagull stole a chip "
    "right out of {kid}'s hand",
    "I spent way too long in the garden centre looking at plants I will definitely kill",
    "there was a power cut on our street last night, we sat around with candles like it was "
    "the olden days, {kid} loved it",
    "I've been trying to get to bed before eleven, it lasted exactly two nights",
    "the train home was rammed, someone's dog sat on my foot the whole way, I didn't mind",
    "we had a massive clear-out and took three bags to the charity shop, felt amazing",
    "work gave us a new system for booking holidays and of course nobody can figure it out",
    "I went to a friend's birthday thing in town, way too loud, I'm clearly getting old",
    "my brother rang out of nowhere, we talked for an hour about nothing, it was really nice",
    "the boiler guy came and said it's fine, then it broke again the same evening",
    "{kid} has decided they want to be a vet, an astronaut and a footballer, all at once",
    "I treated myself to new trainers and then felt guilty about it all day",
    "we tried that new pizza place near the station, decent but not worth the queue",
    "I've been listening to audiobooks on my walks, makes the time go so much faster",
    "{partner} booked us a surprise dinner, which was lovely, even if I was in my scruffs",
    "the neighbours are having an extension done so it's drilling from eight every morning",
    "I'm trying to plan the summer but everyone's dates clash, it's like doing a puzzle",
    "we went to the market on Saturday and came back with far too many cheeses",
    "I had to do a presentation at work and my laptop died halfway through, mortifying",
    "my friend from school is visiting next month, haven't seen her in about five years",
    "I've got a stack of paperwork for the tax thing that I keep pretending isn't there",
    "we watched an old film with {kid} and they asked why nobody had phones",
    "I burnt my hand on the oven tray, nothing serious, just very annoying",
)
QUESTIONS = (
    "How was your weekend?",
    "What are you up to tonight?",
    "How's work treating you?",
    "Did you end up going out on Saturday?",
    "How's {partner} doing?",
    "Any plans for the summer?",
    "How's the family?",
    "Did you watch the match?",
    "Are you around next week for a call?",
    "What did you get up to yesterday?",
    "Have you started anything new lately?",
    "Is {kid} enjoying school?",
    "How was the trip to see your parents?",
    "You still doing that thing on Tuesdays?",
    "What's new with you?",
)
REPLIES = (
    "Haha same",
    "Ugh, I know the feeling",
    "That's so annoying",
    "Honestly same here",
    "Oh no 😂",
    "Sounds about right",
    "Love that",
    "Ha, classic",
    "Oof",
    "Aw that's sweet",
    "Fair enough",
    "Brilliant",
    "Tell me about it",
    "No way!",
    "Lol",
    "Nice one",
    "That made me laugh",
    "I feel that",
    "Totally",
    "Oh wow",
    "Hmm, maybe",
    "Not much, just the usual",
    "Quiet one really, we stayed in",
    "All good here, just busy",
    "Same old, same old",
    "Yeah, it was alright actually",
    "Pretty chill, thanks",
    "Not really, work's been full on",
    "Busy busy, but fine",
)
GREETINGS = (
    "Hey! Long time",
    "Hiya, how's things?",
    "Morning!",
    "Evening 👋",
    "Hey you",
    "Hi hi, you free for a chat?",
    "Yo, got a sec?",
    "Hello stranger!",
)
CLOSINGS = (
    "Right, gotta run, chat soon!",
    "Dinner's ready, talk later x",
    "Night night!",
    "Speak soon 👋",
    "Ok off to bed, bye!",
    "Catch you later",
    "Laters!",
)

NAMES = (
    ("Priya", "she"),
    ("Sam", "he"),
    ("Ana", "she"),
    ("Tom", "he"),
    ("Maya", "she"),
    ("Jonah", "he"),
    ("Leila", "she"),
    ("Marco", "he"),
    ("Grace", "she"),
    ("Kofi", "he"),
    ("Ines", "she"),
    ("Ravi", "he"),
    ("Hannah", "she"),
    ("Luis", "he"),
    ("Mei", "she"),
    ("Oscar", "he"),
    ("Zara", "she"),
    ("Ben", "he"),
    ("Nadia", "she"),
    ("Felix", "he"),
)
PARTNERS = (
    "Chris",
    "Jamie",
    "Alex",
    "Robin",
    "Dan",
    "Sophie",
    "Lena",
    "Matt",
    "Ellie",
    "Noor",
    "Pat",
    "Kim",
)
KIDS = ("Ollie", "Ruby", "Theo", "Isla", "Max", "Poppy", "Leo", "Ava", "Finn", "Zoe")
SIBLINGS = ("Anjali", "Clara", "Beth", "Rosa", "Lily", "Nina", "Tess", "Meera", "Jess", "Fran")
TOWNS = ("Bristol", "Leeds", "Norwich", "Cardiff", "York", "Bath", "Brighton", "Derby")
PRONOUNS = {"she": ("she", "her", "her"), "he": ("he", "his", "him")}


def _when(rng: random.Random, day: date) -> tuple[str, str]:
    """A relative time for something that happened before `day`, and the date it resolves to."""
    choice = rng.randrange(6)
    if choice == 0:
        return "yesterday", (day - timedelta(days=1)).isoformat()
    if choice == 1:
        saturday = day - timedelta(days=(day.weekday() - 5) % 7 or 7)
        return "last Saturday", saturday.isoformat()
    if choice == 2:
        return "last week", f"the week before {day.isoformat()}"
    if choice == 3:
        return "this morning", day.isoformat()
    if choice == 4:
        return "a couple of days ago", (day - timedelta(days=2)).isoformat()
    return "over the weekend", f"the weekend before {day.isoformat()}"


def _fill(template: str, values: dict[str, str]) -> str:
    # Two passes: an option's slot may name a person detail ("{partner} and {kid}").
    once = template.format_map(values)
    return once.format_map(values) if "{" in once else once


@dataclass
class _Person:
    name: str
    values: dict[str, str]
    kinds: list[Kind] = field(default_factory=list)


@dataclass
class _Planned:
    """One fact-bearing exchange planned in a session, before messages get ids."""

    person: _Person
    kind: Kind
    step: int
    values: dict[str, str]
    session: int
    slot: str = ""  # the message id, once placed
    date: str = ""  # the resolved {when}
    dated: bool = False  # whether the message says {when}


@dataclass
class _Session:
    start: datetime
    exchanges: list[_Planned] = field(default_factory=list)


def _person(rng: random.Random, name: str, pronoun: str) -> _Person:
    they, their, them = PRONOUNS[pronoun]
    values = {
        "name": name,
        "they": they,
        "their": their,
        "them": them,
        "partner": rng.choice(PARTNERS),
        "kid": rng.choice(KIDS),
        "sibling": rng.choice(SIBLINGS),
        "town": rng.choice(TOWNS),
    }
    return _Person(name, values)


TAILS = (
    "Anyway, how are you?",
    "Anyway, enough about me.",
    "What a week.",
    "Life, eh.",
    "How's your end?",
    "Send help.",
    "Honestly.",
    "Anyway!",
    "",
    "",
    "",
    "",
)


def _chat_line(rng: random.Random, values: dict[str, str], parts: int = 0) -> str:
    """Small talk of one to three sentences."""
    parts = parts or rng.choice((1, 1, 2, 2, 2, 3))
    sentences = [rng.choice(DETAILS if rng.random() < 0.45 else STATEMENTS) for _ in range(parts)]
    later = [x[0].upper() + x[1:] for x in sentences[1:]]
    text = rng.choice(OPENERS) + ". ".join([sentences[0], *later])
    text = _fill(text[0].upper() + text[1:], values) + "."
    return f"{text} {rng.choice(TAILS)}".strip()


def _with_tail(rng: random.Random, text: str, values: dict[str, str], chance: float) -> str:
    """A short line, sometimes followed by a sentence of small talk, as people chat."""
    if rng.random() >= chance:
        return text
    return f"{text}. {_chat_line(rng, values, 1)}"


def build_conversation(index: int, seed: int) -> Conversation:
    rng = random.Random(f"{seed}/{index}")
    first, second = NAMES[(2 * index) % len(NAMES)], NAMES[(2 * index + 1) % len(NAMES)]
    people = [_person(rng, *first), _person(rng, *second)]
    for person in people:
        person.kinds = rng.sample(KINDS, len(KINDS) - rng.randrange(1, 4))

    zone = timezone(timedelta(hours=rng.choice((-5, 0, 1, 2))))
    months = rng.randint(6, 10)
    count = rng.randint(19, 28)
    begin = date(2024, rng.randint(1, 6), rng.randint(1, 28))
    span = months * 30
    days = sorted(rng.sample(range(span), count))
    sessions = [
        _Session(
            datetime(d.year, d.month, d.day, rng.randint(7, 21), rng.randrange(60), tzinfo=zone)
        )
        for d in (begin + timedelta(days=x) for x in days)
    ]

    # Place each kind's steps in sessions, in order, spaced by the step's gap.
    plans: list[list[_Planned]] = []
    taken: set[int] = set()  # the two people never share the same option of a kind
    for person in people:
        for kind in person.kinds:
            option = rng.choice([o for o in kind.options if id(o) not in taken])
            taken.add(id(option))
            values = {**person.values, **option}
            at = rng.randrange(0, count - 2 * len(kind.steps))
            steps: list[_Planned] = []
            for number, step in enumerate(kind.steps):
                if number:
                    at = min(at + rng.randint(*step.gap), count - 1)
                steps.append(_Planned(person, kind, number, values, at))
                sessions[at].exchanges.append(steps[-1])
            plans.append(steps)

    messages: list[Message] = []
    conversation_id = f"conv-{index + 1}"
    for session in sessions:
        rng.shuffle(session.exchanges)
        messages.extend(_session_messages(rng, conversation_id, len(messages), session, people))

    questions: list[Question] = []
    for steps in plans:
        questions.extend(_questions(rng, steps))
    for person in people:
        questions.extend(_which_first(rng, person, [s for s in plans if s[0].person is person]))
    rng.shuffle(questions)
    return Conversation(
        conversation_id,
        (people[0].name, people[1].name),
        tuple(messages),
        tuple(questions),
        _items(plans, messages),
    )


def _items(plans: list[list[_Planned]], messages: list[Message]) -> tuple[Item, ...]:
    """The items a careful extractor writes of the planted facts, in the order they were said
    (no randomness: the same dialogue gives the same items)."""
    said = {message.id: (order, message) for order, message in enumerate(messages)}
    items: list[tuple[int, Item]] = []
    for steps in plans:
        before: list[Item] = []
        for planned in steps:
            order, message = said[planned.slot]
            values = {**planned.values, "on": _on(planned.date) if planned.dated else ""}
            made = [
                Item(
                    f"{message.id}#{number}",
                    _third_person(_fill(template, values), planned.values) + ".",
                    kind,
                    message.id,
                    message.timestamp[:10],
                    "" if replaced is None else before[replaced].id,
                )
                for number, (kind, template, replaced) in enumerate(
                    ITEMS[planned.kind.name, planned.step], 1
                )
            ]
            items.extend((order, item) for item in made)
            before = made
    items.sort(key=lambda entry: entry[0])  # stable: a message's items keep their order
    return tuple(item for _, item in items)


def _on(resolved: str) -> str:
    """When, as an item says it: " on 2024-05-04", " in the week before 2024-05-10"."""
    if resolved.startswith("the week before"):
        return f" in {resolved}"
    if resolved.startswith("the weekend before"):
        return f" over {resolved}"
    return f" on {resolved}"


def _third_person(text: str, values: dict[str, str]) -> str:
    for pattern, replacement in _THIRD_PERSON:
        text = re.sub(pattern, replacement.format_map(values), text)
    return text


def _session_messages(
    rng: random.Random, conversation: str, before: int, session: _Session, people: list[_Person]
) -> list[Message]:
    lines: list[tuple[_Person, str, _Planned | None]] = []
    starter = rng.choice(people)
    other = people[1] if starter is people[0] else people[0]
    lines.append((starter, rng.choice(GREETINGS), None))
    lines.append((other, rng.choice([g for g in GREETINGS if g != lines[0][1]]), None))
    target = rng.randint(10, 30)
    exchanges = list(session.exchanges)
    # Interleave fact exchanges with small talk until the session is long enough.
    while exchanges or len(lines) < target - 1:
        if exchanges and (rng.random() < 0.55 or len(lines) >= target - 4):
            planned = exchanges.pop()
            person = planned.person
            listener = people[1] if person is people[0] else people[0]
            step = planned.kind.steps[planned.step]
            if step.prompts and rng.random() < 0.5:
                lines.append((listener, _fill(rng.choice(step.prompts), planned.values), None))
            when, resolved = _when(rng, session.start.date())
            planned.date = resolved
            values = {**planned.values, "when": when}
            template = rng.choice(step.says)
            planned.dated = "{when}" in template
            said = _fill(template, values)
            lines.append((person, _with_tail(rng, said, person.values, 0.35), planned))
            if step.replies:
                reply = _fill(rng.choice(step.replies), planned.values)
                lines.append((listener, _with_tail(rng, reply, listener.values, 0.5), None))
            if planned.kind.chatter and rng.random() < 0.3:
                lines.append((listener, rng.choice(planned.kind.chatter), None))
        else:
            speaker = rng.choice(people)
            listener = people[1] if speaker is people[0] else people[0]
            roll = rng.random()
            if roll < 0.3:
                lines.append((speaker, _fill(rng.choice(QUESTIONS), listener.values), None))
                lines.append((listener, _chat_line(rng, listener.values), None))
            elif roll < 0.45:
                kind = rng.choice(KINDS)
                if kind.chatter:
                    chatter = _with_tail(rng, rng.choice(kind.chatter), speaker.values, 0.5)
                    lines.append((speaker, chatter, None))
                    reply = rng.choice(REPLIES)
                    lines.append((listener, _with_tail(rng, reply, listener.values, 0.5), None))
            else:
                lines.append((speaker, _chat_line(rng, speaker.values), None))
                if rng.random() < 0.6:
                    reply = rng.choice(REPLIES)
                    lines.append((listener, _with_tail(rng, reply, listener.values, 0.6), None))
    closer = rng.choice(people)
    lines.append((closer, rng.choice(CLOSINGS), None))

    messages = []
    at = session.start
    for number, (speaker, text, fact) in enumerate(lines):
        message_id = f"{conversation}:{before + number + 1}"
        if fact is not None:
            fact.slot = message_id
        messages.append(Message(message_id, speaker.name, text, at.isoformat()))
        at += timedelta(seconds=rng.randint(8, 90))
    return messages


def _questions(rng: random.Random, steps: list[_Planned]) -> list[Question]:
    kind = steps[0].kind
    values = {**steps[0].values, "date0": steps[0].date}
    asked = []
    for ask in kind.asks:
        phrasing = rng.choice(ask.phrasings)
        evidence = tuple(steps[n].slot for n in ask.steps)
        asked.append(
            Question(_fill(phrasing, values), ask.category, evidence, _fill(ask.answer, values))
        )
    return asked


def _which_first(
    rng: random.Random, person: _Person, plans: list[list[_Planned]]
) -> list[Question]:
    """Multi-hop temporal questions: which of two of the person's events came first."""
    dated = [
        steps[0]
        for steps in plans
        if steps[0].kind.event and all("{when}" in s for s in steps[0].kind.steps[0].says)
    ]
    rng.shuffle(dated)
    asked = []
    for a, b in zip(dated[0:12:2], dated[1:12:2], strict=False):
        if a.session == b.session:
            continue
        first = min(a, b, key=lambda p: p.session)
        name_a = _fill(a.kind.event, a.values)
        name_b = _fill(b.kind.event, b.values)
        question = rng.choice(
            (
                "Which came first for {name}: {a} or {b}?",
                "Did {a} happen before or after {b} for {name}?",
            )
        ).format(name=person.name, a=name_a, b=name_b)
        earlier = _fill(first.kind.event, first.values)
        asked.append(Question(question, MULTI_HOP, (a.slot, b.slot), earlier))
    return asked


def build_dialogues(seed: int = 11, conversations: int = 8) -> list[Conversation]:
    return [build_conversation(index, seed) for index in range(conversations)]


def write(conversations: list[Conversation], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for conversation in conversations:
        with (folder / f"{conversation.id}.transcript.jsonl").open("w", encoding="utf-8") as f:
            for m in conversation.messages:
                line = {"id": m.id, "speaker": m.speaker, "text": m.text, "timestamp": m.timestamp}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
        with (folder / f"{conversation.id}.questions.jsonl").open("w", encoding="utf-8") as f:
            for q in conversation.questions:
                row: dict[str, object] = {
                    "question": q.question,
                    "category": q.category,
                    "evidence": list(q.evidence),
                    "answer": q.answer,
                }
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        with (folder / f"{conversation.id}.items.jsonl").open("w", encoding="utf-8") as f:
            for item in conversation.items:
                f.write(json.dumps(vars(item), ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--out", type=Path, help="write JSONL files into this folder")
    arguments = parser.parse_args()
    conversations = build_dialogues(arguments.seed, arguments.conversations)
    for c in conversations:
        sessions = len({m.timestamp[:10] for m in c.messages})
        print(
            f"{c.id}: {' & '.join(c.speakers)}, {len(c.messages)} messages, "
            f"{sessions} sessions, {c.messages[0].timestamp[:10]} to "
            f"{c.messages[-1].timestamp[:10]}, {len(c.questions)} questions"
        )
    print(f"{sum(len(c.questions) for c in conversations)} questions in all")
    if arguments.out:
        write(conversations, arguments.out)


if __name__ == "__main__":
    main()
