"""unified-seller identity service: accounts, an OpenID Connect provider, team invitations and roles."""
