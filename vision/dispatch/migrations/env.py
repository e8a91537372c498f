"""Alembic environment: the engine comes from `config.attributes['engine']`
(see vision.dispatch.db.migrate), never from an ini file."""

from __future__ import annotations

from alembic import context

from vision.dispatch.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through vision.dispatch.db.migrate(engine) or `streetvision dispatch migrate`")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
