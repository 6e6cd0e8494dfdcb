"""Backup and restore of a node: each repository's refs and objects as git bundles (full, then
incremental against the previous backup's ref tips), its relay state, and the node's parts
(the credentials file), to a directory or S3-compatible storage, with a manifest of sha256s.

    targets.py      a directory or s3://bucket/prefix; a backup is listed only once complete
    manifest.py     what a backup holds and builds on; ref sets replayed along the chain
    git_bundles.py  git bundles from a ref snapshot (git pack-objects), applied by git itself
    parts.py        what a node needs besides repositories: credentials (a cluster adds its control plane)
    taking.py       a consistent snapshot per repository while the service serves
    restoring.py    staged, verified, rebuilt, then renamed into place: never half-restored
    api.py          what the CLI imports
"""
