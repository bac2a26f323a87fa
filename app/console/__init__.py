"""The operator's console (/web/admin): server-rendered pages for staff members, signed in
with their own accounts and limited by their role. A front end of its own: it renders with
app/pages and calls the domains, never the storefront."""
