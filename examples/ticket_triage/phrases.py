"""Phrase pools of the sample data: urgency cues, filler, greetings, slot values, PII lines.

Priority is carried by one cue sentence per message. Most cues are shared by train and test
rows; the HELD_OUT_CUES appear only in pinned test rows. A cue ending in ":" is a prefix
("URGENT: ..."); the others are whole sentences placed before or after the body.
"""

from __future__ import annotations

# Share of each priority among clean rows; order matches templates.PRIORITIES.
PRIORITY_WEIGHTS: dict[str, int] = {"low": 25, "medium": 35, "high": 25, "urgent": 15}

# Medium is the "no special urgency" class: often no cue at all, else a neutral ask.
MEDIUM_WITHOUT_CUE = 0.4

CUES: dict[str, tuple[str, ...]] = {
    "low": (
        "No rush on this.",
        "Whenever you get a chance.",
        "No hurry at all.",
        "It can wait, just wanted to ask.",
        "Low priority, just curious.",
        "Take your time with this one.",
        "Not a big deal, whenever you can.",
        "Just flagging it for when you have a moment.",
    ),
    "medium": (
        "Could you look into this?",
        "Please let me know.",
        "What are the next steps?",
        "Would appreciate an update this week.",
        "Can someone check this?",
        "Please advise.",
    ),
    "high": (
        "Please sort this out as soon as possible.",
        "This is blocking my work.",
        "I need this resolved today.",
        "Please prioritise this.",
        "This is quite time-sensitive.",
        "I can't do anything until this is fixed.",
        "Please get back to me quickly.",
        "I need an answer by end of day.",
    ),
    "urgent": (
        "URGENT:",
        "URGENT!!",
        "Our whole team is down because of this.",
        "I need this fixed right now.",
        "This is an emergency.",
        "We are losing money every minute this continues.",
        "Please respond immediately.",
        "Need an answer within the hour.",
    ),
}

# One per priority, close in wording to a shared cue so a model can still read it.
HELD_OUT_CUES: dict[str, tuple[str, ...]] = {
    "low": ("Reply whenever it suits you.",),
    "medium": ("What do you suggest?",),
    "high": ("Please treat this as a priority.",),
    "urgent": ("EMERGENCY:",),
}

FILLERS: tuple[str, ...] = (
    "Thanks in advance.",
    "Hope you're well.",
    "I appreciate your help.",
    "Sorry if this is the wrong place to ask.",
    "I've been a customer for a while.",
    "Thank you for your time.",
    "I hope this makes sense.",
    "Happy to provide more details.",
    "I already checked the help centre.",
    "Sorry for the long message.",
)

ORDER_LINES: tuple[str, ...] = (
    "My order number is {order}.",
    "Order number: {order}",
    "It's order {order}.",
    "(order {order})",
)

# {name} greetings and sign-offs put the customer's first name in the message; the reply
# then greets them by name.
GREETINGS: tuple[str, ...] = ("Hi,", "Hello,", "Hi there,", "Hello support,", "Dear team,", "Hey,")
NAMED_GREETINGS: tuple[str, ...] = ("Hi, this is {name}.", "Hello, {name} here.")
SIGN_OFFS: tuple[str, ...] = ("Thanks", "Thank you!", "Regards")
NAMED_SIGN_OFFS: tuple[str, ...] = (
    "Thanks, {name}",
    "Regards, {name}",
    "Best, {name}",
    "- {name}",
    "Cheers, {name}",
)

NAMES: tuple[str, ...] = (
    "Priya",
    "James",
    "Maria",
    "Chen",
    "Fatima",
    "Lukas",
    "Aisha",
    "Tom",
    "Sofia",
    "Kenji",
    "Emma",
    "Omar",
    "Olivia",
    "Mateo",
    "Hannah",
    "Ravi",
    "Grace",
    "Noah",
    "Yuki",
    "Daniel",
    "Amara",
    "Liam",
    "Ingrid",
    "Carlos",
    "Mei",
    "Jack",
    "Zoë",
    "José",
    "Søren",
    "Chloé",
    "Renée",
    "Jürgen",
    "Aoife",
    "Nikos",
    "Leila",
    "Ben",
    "Anya",
    "Sam",
    "Elena",
    "Kwame",
)
SURNAMES: tuple[str, ...] = (
    "smith",
    "garcia",
    "patel",
    "nguyen",
    "kim",
    "muller",
    "rossi",
    "okafor",
    "silva",
    "johansson",
    "tanaka",
    "brown",
    "lopez",
    "novak",
    "cohen",
    "walsh",
)

PRODUCTS: tuple[str, ...] = (
    "AeroBlend blender",
    "Nimbus wireless earbuds",
    "TrailPro backpack",
    "Lumen desk lamp",
    "Vista 4K monitor",
    "Zephyr tower fan",
    "Orbit smart speaker",
    "Kestrel running shoes",
    "Halo baby monitor",
    "Summit rain jacket",
    "Pixel mechanical keyboard",
    "Aurora air purifier",
    "Cascade water bottle",
    "Nova fitness tracker",
    "Ember coffee grinder",
    "Drift office chair",
    "Atlas carry-on suitcase",
    "Breeze robot vacuum",
    "Sable leather wallet",
    "Quill e-reader",
    "Terra yoga mat",
    "Polar cooler bag",
    "Echo webcam",
    "Maple cutting board",
)

# Technical issues happen to connected products only; other categories use all PRODUCTS.
DEVICES: tuple[str, ...] = tuple(
    p
    for p in PRODUCTS
    if p.split()[-1]
    in {
        "earbuds",
        "monitor",
        "speaker",
        "keyboard",
        "purifier",
        "tracker",
        "vacuum",
        "e-reader",
        "webcam",
    }
)

DATES: tuple[str, ...] = (
    "Monday",
    "last Tuesday",
    "Friday",
    "the weekend",
    "last week",
    "the 3rd",
    "the 14th",
    "the 21st",
    "September 28",
    "October 2",
    "October 15",
    "October 30",
    "November 4",
    "November 19",
    "1 October",
    "12 November",
)

EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net", "mail.example.com")

# PII lines never end the PII value with "." so a redaction regex cannot swallow the dot.
PII_LINES: dict[str, tuple[str, ...]] = {
    "email": (
        "You can reach me at {value} if needed.",
        "My email is {value} by the way.",
        "Please reply to {value} instead.",
        "Account email: {value}",
    ),
    "phone": (
        "You can call me on {value} anytime.",
        "My number is {value} if that's easier.",
        "Phone: {value}",
        "Text me at {value} please.",
    ),
    "card": (
        "The card I used is {value} if that helps.",
        "Card number {value} was used for this.",
        "I paid with {value} on my account.",
    ),
}
