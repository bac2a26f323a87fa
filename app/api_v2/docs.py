"""OpenAPI description of the action-style endpoint: every action, its fields and shapes."""

from __future__ import annotations

from typing import Any

DESCRIPTION = """
The public reseller API, wire-compatible with the de-facto "SMM panel API v2".

Send `key` (your API key) and `action` with the action's fields, as a form
(`application/x-www-form-urlencoded` or `multipart/form-data`), a JSON object, or a GET
query string. Answers are JSON with HTTP 200; refusals are `{"error": "<message>"}`.

| action | fields | success |
|---|---|---|
| `services` | – | list of services (id, name, type, category, rate per 1000, min, max, refill, cancel, dripfeed, and `average_time` in minutes when the service has recently completed orders); answered with an `ETag`: send it back as `If-None-Match` and an unchanged catalog answers `304 Not Modified` with no body |
| `add` | `service`, `link`, `quantity` (Default), `runs`+`interval` (drip-feed), or the type's fields | `{"order": 23501}` |
| `status` | `order` | `{"charge": "0.27819", "start_count": "3572", "status": "Partial", "remains": "157", "currency": "USD"}` |
| `status` | `orders` (≤100, comma-separated) | `{"1": {…}, "10": {"error": "Incorrect order ID"}}` |
| `refill` | `order` | `{"refill": "1"}` |
| `refill` | `orders` (≤100) | `[{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": "Incorrect order ID"}}]` |
| `refill_status` | `refill` | `{"status": "Completed"}` |
| `refill_status` | `refills` (≤100) | `[{"refill": 1, "status": "Completed"}, {"refill": 3, "status": {"error": "Refill not found"}}]` |
| `cancel` | `orders` (≤100) or `order` | `[{"order": 9, "cancel": {"error": "Incorrect order ID"}}, {"order": 2, "cancel": 1}]` |
| `balance` | – | `{"balance": "100.84292", "currency": "USD"}` |

The examples run as they stand against the demo catalog of `make run` (service ids 1-16,
one of each type): put the demo API key it prints in place of `YOUR_KEY`.

Order statuses: `Pending`, `In progress`, `Processing`, `Completed`, `Partial`, `Canceled`.
Refill statuses: `Pending`, `In progress`, `Completed`, `Rejected`.
"""

_FIELDS: dict[str, Any] = {
    "key": {"type": "string", "description": "your API key"},
    "action": {
        "type": "string",
        "enum": ["services", "add", "status", "refill", "refill_status", "cancel", "balance"],
    },
    "service": {"type": "string", "description": "service id (add)"},
    "link": {"type": "string", "description": "http(s) link (add)"},
    "quantity": {"type": "string", "description": "units to deliver (add)"},
    "runs": {"type": "string", "description": "drip-feed deliveries (add)"},
    "interval": {"type": "string", "description": "drip-feed minutes between runs (add)"},
    "comments": {"type": "string", "description": "one comment per line (Custom Comments)"},
    "usernames": {"type": "string", "description": "one per line or comma-separated (Mentions)"},
    "hashtags": {"type": "string", "description": "hashtags (Mentions with Hashtags)"},
    "hashtag": {"type": "string", "description": "one hashtag (Mentions Hashtag)"},
    "username": {"type": "string", "description": "a username (Subscriptions, Mentions…)"},
    "media": {"type": "string", "description": "a post URL (Mentions Media Likers)"},
    "answer_number": {"type": "string", "description": "poll answer (Poll)"},
    "groups": {"type": "string", "description": "one group per line (Invites from Groups)"},
    "min": {"type": "string", "description": "per-post minimum (Subscriptions)"},
    "max": {"type": "string", "description": "per-post maximum (Subscriptions)"},
    "posts": {"type": "string", "description": "number of future posts (Subscriptions)"},
    "old_posts": {"type": "string", "description": "existing posts to include (Subscriptions)"},
    "delay": {"type": "string", "description": "minutes after each post (Subscriptions)"},
    "expiry": {"type": "string", "description": "d/m/Y end date (Subscriptions)"},
    "country": {"type": "string", "description": "Web Traffic targeting"},
    "device": {"type": "string", "description": "Web Traffic targeting"},
    "type_of_traffic": {"type": "string", "description": "Web Traffic source"},
    "google_keyword": {"type": "string", "description": "Web Traffic keyword"},
    "referring_url": {"type": "string", "description": "Web Traffic referrer"},
    "order": {"type": "string", "description": "one order id (status, refill, cancel)"},
    "orders": {"type": "string", "description": "up to 100 comma-separated order ids"},
    "refill": {"type": "string", "description": "one refill id (refill_status)"},
    "refills": {"type": "string", "description": "up to 100 comma-separated refill ids"},
}

_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["key", "action"],
    "properties": _FIELDS,
    "additionalProperties": True,
}

# The demo catalog's service of each type (`make run`: a fresh database numbers the demo
# services 1-16 like the sandbox provider), so every example below runs as it stands there
# with the demo API key.
DEMO_SERVICE: dict[str, str] = {
    "Default": "2",
    "Package": "4",
    "Custom Comments": "5",
    "Custom Comments Package": "6",
    "Mentions with Hashtags": "7",
    "Mentions Custom List": "8",
    "Mentions Hashtag": "9",
    "Mentions User Followers": "10",
    "Mentions Media Likers": "11",
    "Comment Likes": "12",
    "Poll": "13",
    "Invites from Groups": "14",
    "Subscriptions": "15",
    "Web Traffic": "16",
}

# One `add` example per service type (the type name is what `services` shows).
TYPE_EXAMPLES: dict[str, dict[str, str]] = {
    "Default": {"link": "https://instagram.com/example", "quantity": "1000"},
    "Package": {"link": "https://instagram.com/example"},
    "Custom Comments": {"link": "https://instagram.com/p/abc", "comments": "Great!\nLove it"},
    "Custom Comments Package": {"link": "https://instagram.com/p/abc", "comments": "Wow\nNice"},
    "Mentions with Hashtags": {
        "link": "https://instagram.com/p/abc",
        "quantity": "100",
        "usernames": "alice,bob",
        "hashtags": "#sun,#sea",
    },
    "Mentions Custom List": {"link": "https://instagram.com/p/abc", "usernames": "alice\nbob"},
    "Mentions Hashtag": {
        "link": "https://instagram.com/p/abc",
        "quantity": "100",
        "hashtag": "#sun",
    },
    "Mentions User Followers": {
        "link": "https://instagram.com/p/abc",
        "quantity": "100",
        "username": "nasa",
    },
    "Mentions Media Likers": {
        "link": "https://instagram.com/p/abc",
        "quantity": "100",
        "media": "https://instagram.com/p/xyz",
    },
    "Comment Likes": {"link": "https://instagram.com/p/abc", "quantity": "50", "username": "bob"},
    "Poll": {"link": "https://t.me/channel/12", "quantity": "100", "answer_number": "2"},
    "Invites from Groups": {"link": "https://t.me/group", "quantity": "100", "groups": "g1\ng2"},
    "Subscriptions": {
        "username": "nasa",
        "min": "100",
        "max": "200",
        "posts": "10",
        "delay": "30",
        "expiry": "31/12/2030",
    },
    "Web Traffic": {
        "link": "https://example.com",
        "quantity": "1000",
        "country": "US",
        "device": "Mobile",
        "type_of_traffic": "Google Keyword",
        "google_keyword": "smm panel",
    },
}

_REQUEST_EXAMPLES: dict[str, Any] = {
    "services": {"value": {"key": "YOUR_KEY", "action": "services"}},
    "add": {
        "value": {
            "key": "YOUR_KEY",
            "action": "add",
            "service": "1",
            "link": "https://instagram.com/example",
            "quantity": "1000",
        }
    },
    "add drip-feed": {
        "value": {
            "key": "YOUR_KEY",
            "action": "add",
            "service": "1",
            "link": "https://instagram.com/another_example",
            "quantity": "100",
            "runs": "5",
            "interval": "30",
        }
    },
    **{
        f"add {type_name}": {
            "summary": f"add: a {type_name} service",
            "value": {
                "key": "YOUR_KEY",
                "action": "add",
                "service": DEMO_SERVICE[type_name],
                **fields,
            },
        }
        for type_name, fields in TYPE_EXAMPLES.items()
    },
    "status": {"value": {"key": "YOUR_KEY", "action": "status", "order": "23501"}},
    "multi status": {"value": {"key": "YOUR_KEY", "action": "status", "orders": "1,10,100"}},
    "refill": {"value": {"key": "YOUR_KEY", "action": "refill", "order": "23501"}},
    "multi refill": {"value": {"key": "YOUR_KEY", "action": "refill", "orders": "1,2,3"}},
    "refill_status": {"value": {"key": "YOUR_KEY", "action": "refill_status", "refill": "1"}},
    "multi refill_status": {
        "value": {"key": "YOUR_KEY", "action": "refill_status", "refills": "1,2,3"}
    },
    "cancel": {"value": {"key": "YOUR_KEY", "action": "cancel", "orders": "2,9"}},
    "balance": {"value": {"key": "YOUR_KEY", "action": "balance"}},
}

_STATUS = {
    "type": "object",
    "properties": {
        "charge": {"type": "string"},
        "start_count": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["Pending", "In progress", "Processing", "Completed", "Partial", "Canceled"],
        },
        "remains": {"type": "string"},
        "currency": {"type": "string"},
    },
}

_RESPONSE_EXAMPLES: dict[str, Any] = {
    "services": {
        "value": [
            {
                "service": 1,
                "name": "Followers",
                "type": "Default",
                "category": "First Category",
                "rate": "0.90",
                "min": "50",
                "max": "10000",
                "refill": True,
                "cancel": True,
                "dripfeed": False,
                "average_time": "135",
            }
        ]
    },
    "add": {"value": {"order": 23501}},
    "status": {
        "value": {
            "charge": "0.27819",
            "start_count": "3572",
            "status": "Partial",
            "remains": "157",
            "currency": "USD",
        }
    },
    "multi status": {
        "value": {
            "1": {
                "charge": "0.27819",
                "start_count": "3572",
                "status": "Partial",
                "remains": "157",
                "currency": "USD",
            },
            "10": {"error": "Incorrect order ID"},
        }
    },
    "refill": {"value": {"refill": "1"}},
    "multi refill": {
        "value": [
            {"order": 1, "refill": 1},
            {"order": 3, "refill": {"error": "Incorrect order ID"}},
        ]
    },
    "refill_status": {"value": {"status": "Completed"}},
    "multi refill_status": {
        "value": [
            {"refill": 1, "status": "Completed"},
            {"refill": 3, "status": {"error": "Refill not found"}},
        ]
    },
    "cancel": {
        "value": [
            {"order": 9, "cancel": {"error": "Incorrect order ID"}},
            {"order": 2, "cancel": 1},
        ]
    },
    "balance": {"value": {"balance": "100.84292", "currency": "USD"}},
    "error": {"value": {"error": "Not enough funds on balance"}},
}

# Every `add` example (name → fields), for the test that runs them against the demo catalog.
ADD_EXAMPLES: dict[str, dict[str, str]] = {
    name: example["value"]
    for name, example in _REQUEST_EXAMPLES.items()
    if example["value"]["action"] == "add"
}

OPENAPI_EXTRA: dict[str, Any] = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in _FIELDS.items()
    ],
    "requestBody": {
        "required": False,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": _REQUEST_SCHEMA,
                "examples": _REQUEST_EXAMPLES,
            },
            "multipart/form-data": {"schema": _REQUEST_SCHEMA},
            "application/json": {"schema": _REQUEST_SCHEMA, "examples": _REQUEST_EXAMPLES},
        },
    },
    "responses": {
        "200": {
            "description": 'The action\'s result, or `{"error": message}`',
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ]
                    },
                    "examples": _RESPONSE_EXAMPLES,
                }
            },
        },
        "503": {"description": 'Database unavailable: `{"error": message}`'},
    },
}

STATUS_SCHEMA = _STATUS
