"""Getting cases to the dispatch center: the on-disk outbox and the sender that drains it."""
