"""The toolkit of the server-rendered front ends (the storefront under /web, the operator's
console under /web/admin): CSRF tokens and cookies, the pages' Content-Security-Policy and
Jinja2 environments, languages and number formats. It knows no domain and no front end;
each front end brings its own templates, words and sign-in."""
