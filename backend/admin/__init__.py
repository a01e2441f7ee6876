"""Tenant administration and the directory: users and teams within the caller's scope, the team tree, users'
lifecycle (create, disable, password reset) and the tenant's table of what each role may do."""
