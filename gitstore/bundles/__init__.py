"""Bundles: a repository's entities as one file to import or export (issue 8).

format      the layout (the `draft` branch's files, or JSON lines) and pins by fingerprint
reading     safe, streaming readers for tar.gz, zip and JSON lines, and for a bundle kept as a directory
checks      the rules an import must pass, checked against the bundle and the repository
writing     streaming writers of an exported view
api         import_bundle and export_bundle, the public surface
"""
