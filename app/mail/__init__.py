"""Outgoing mail: plain-text messages in the recipient's language, sent by the backend that
MAIL_URL names (`console` logs them, `smtp://…` sends them)."""
