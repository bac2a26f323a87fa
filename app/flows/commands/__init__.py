"""Commands: one per action a customer or an operator takes, called by every front end that
offers the action (API v2's full path, /client/v1, the storefront /web, the admin API), so
each rule is enforced once, below all of them, and no front end needs another.

A command takes the caller's transaction and its after-commit queue (`app.http.tx`),
applies every rule through the domains, asks for the jobs the action needs (enqueued only
once the transaction has committed) and returns a typed result or raises a typed
`DomainError`, which each front end renders in its own shape. It never commits, never
reads a request and never renders.

A refused command leaves the caller's transaction as it found it: it runs in a savepoint,
so a front end may answer the refusal (a form shown again with the error next to its
field) and still commit. A command over several items (a mass order, a multi-id cancel)
settles each item on its own: one item's refusal never undoes another.

An action that is a single domain call (change the profile, rotate the API key, set the
status webhook) needs no command: that function is the one place already. `WRAPS` in
each module names the domain functions its commands compose; no front end calls those
itself (tests/test_front_ends.py).
"""
