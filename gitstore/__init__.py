"""gitstore: a Git-backed content repository.

from gitstore import Store, Author
from gitstore.entities import api as entities
from gitstore.publishing import api as publishing

store = Store("./data")
repo = store.create_repository("demo")
me = Author("Ada", "ada@example.org")
entities.put_draft(repo, "intro", {"type": "page", "title": "Hello"}, author=me)
publishing.publish(repo, [publishing.PublishTarget("intro")], author=me)
"""

from gitstore.entities.model import Author, Entity, Page, VersionInfo, WriteResult
from gitstore.repository import ContentRepository
from gitstore.store import Store

__all__ = ["Author", "ContentRepository", "Entity", "Page", "Store", "VersionInfo", "WriteResult"]
