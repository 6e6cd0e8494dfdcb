"""Who may do what: scopes per repository, and the credentials that carry them.

    scopes.py       the five scopes, what each implies, and a Principal's grants
    credentials.py  the file of hashed tokens, OAuth clients and the signing key
    api.py          what the layers above import of it

Nothing here knows about HTTP; the API reads credentials from requests and asks a Principal
`may(repo, scope)`. The CLI manages the same file.
"""
