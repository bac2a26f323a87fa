"""Customers on their own: passwords, email verification, sessions, two-factor sign-in,
profile, and the operator's view of them."""
