"""gitstore: a Git-backed content repository. Content changes through one door,
gitstore.content, which runs every layer's rules:

from gitstore import Author, Store, content
from gitstore.publishing.api import PublishTarget

store = Store("./data")
repo = store.create_repository("demo")
me = Author("Ada", "ada@example.org")
content.put_draft(repo, "intro", {"type": "page", "title": "Hello"}, author=me)
content.publish(repo, [PublishTarget("intro")], author=me)
"""

from gitstore.entities.api import Author, Entity, Page, VersionInfo, WriteResult
from gitstore.repository import ContentRepository
from gitstore.store import Store

__all__ = ["Author", "ContentRepository", "Entity", "Page", "Store", "VersionInfo", "WriteResult"]
