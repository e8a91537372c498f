"""Who may call the dispatch center: operators (password, then a bearer token or
a UI session cookie) and machine clients (an edge box or an Open311 client, with
a token issued once). Only hashes of passwords and tokens are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from vision.dispatch import models as m
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, InvalidInput, NotFound, Unauthorized
from vision.dispatch.schemas import ClientKind, OperatorPublic, TokenKind
from vision.dispatch.security import burn_time, hash_password, new_token, token_hash, verify_password
from vision.dispatch.workflow import Role

MIN_PASSWORD_LENGTH = 8
# Token prefixes, so a credential that shows up in a log says what it is.
TOKEN_PREFIX: dict[TokenKind | ClientKind, str] = {"api": "sva", "session": "svs", "device": "svd", "open311": "svo"}


@dataclass(frozen=True)
class OperatorPrincipal:
    """A logged-in operator, as routes and the workflow see them."""

    id: int
    username: str
    role: Role
    token_kind: TokenKind


@dataclass(frozen=True)
class ClientPrincipal:
    """An authenticated machine client; a device with `site_id` may only report for that site."""

    id: int
    name: str
    kind: ClientKind
    site_id: str | None


class Accounts:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # ---------------------------------------------------------------- operators
    def create_operator(self, username: str, password: str, role: Role | str, display_name: str | None = None) -> int:
        role = Role(role)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"password: at least {MIN_PASSWORD_LENGTH} characters")
        with self.ctx.session() as s:
            op = m.Operator(
                username=username, password_hash=hash_password(password), role=role.value, display_name=display_name
            )
            s.add(op)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"operator '{username}' exists") from None
            return op.id

    def set_password(self, username: str, password: str) -> None:
        with self.ctx.session() as s:
            op = s.scalar(select(m.Operator).where(m.Operator.username == username))
            if op is None:
                raise NotFound(f"operator '{username}' does not exist")
            op.password_hash = hash_password(password)
            s.commit()

    def list_operators(self) -> list[OperatorPublic]:
        with self.ctx.session() as s:
            return [OperatorPublic.model_validate(op) for op in s.scalars(select(m.Operator).order_by(m.Operator.id))]

    def login(self, username: str, password: str, kind: TokenKind = "api") -> tuple[str, datetime, Role]:
        """A new operator token of `kind`: (token, expiry, role). Unknown user and wrong
        password take the same time and give the same error."""
        if kind not in get_args(TokenKind):
            raise InvalidInput("kind: 'api' or 'session'")
        with self.ctx.session() as s:
            op = s.scalar(select(m.Operator).where(m.Operator.username == username))
            if op is None:
                burn_time(password)
                raise Unauthorized("wrong username or password")
            if not op.active or not verify_password(password, op.password_hash):
                raise Unauthorized("wrong username or password")
            token = new_token(TOKEN_PREFIX[kind])
            expires = self.ctx.clock() + timedelta(seconds=self.ctx.settings.token_ttl_s)
            s.add(m.ApiToken(token_hash=token_hash(token), operator_id=op.id, kind=kind, expires_at=expires))
            s.commit()
            return token, expires, Role(op.role)

    def logout(self, token: str) -> None:
        with self.ctx.session() as s:
            row = s.scalar(select(m.ApiToken).where(m.ApiToken.token_hash == token_hash(token)))
            if row is not None:
                s.delete(row)
                s.commit()

    def authenticate_operator(self, token: str) -> OperatorPrincipal | None:
        with self.ctx.session() as s:
            row = s.scalar(
                select(m.ApiToken)
                .options(selectinload(m.ApiToken.operator))
                .where(m.ApiToken.token_hash == token_hash(token))
            )
            if row is None or row.expires_at <= self.ctx.clock() or not row.operator.active:
                return None
            kind: TokenKind = "session" if row.kind == "session" else "api"
            return OperatorPrincipal(row.operator.id, row.operator.username, Role(row.operator.role), kind)

    # ------------------------------------------------------------------ clients
    def create_client(self, name: str, kind: ClientKind = "device", site_id: str | None = None) -> tuple[int, str]:
        """Registers an edge box ('device') or an Open311 client ('open311'); returns (id, token).
        The token is shown once: only its hash is stored."""
        if kind not in get_args(ClientKind):
            raise InvalidInput("kind: 'device' or 'open311'")
        token = new_token(TOKEN_PREFIX[kind])
        with self.ctx.session() as s:
            c = m.Client(name=name, kind=kind, site_id=site_id, token_hash=token_hash(token))
            s.add(c)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"client '{name}' exists") from None
            return c.id, token

    def authenticate_client(self, token: str, kind: ClientKind) -> ClientPrincipal | None:
        with self.ctx.session() as s:
            c = s.scalar(select(m.Client).where(m.Client.token_hash == token_hash(token)))
            if c is None or not c.active or c.kind != kind:
                return None
            return ClientPrincipal(c.id, c.name, kind, c.site_id)
