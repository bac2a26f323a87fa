"""Staff accounts: the people who run the panel, their roles, sign-in and API tokens."""
