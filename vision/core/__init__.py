"""What both sides share: the case schema, the taxonomy, evidence files, geometry,
backoff, model cards, project paths. Imports nothing else of the project, so the
edge, the dispatch center and the CLI can import it without paying for the rest.
"""
