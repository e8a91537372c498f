"""Who may call the dispatch center: operators (password, then a bearer token or
a UI session cookie) and machine clients (an edge box or an Open311 client, with
a token issued once). Only hashes of passwords and tokens are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from vision.dispatch import models as m
from vision.dispatch.context import ServiceContext
from vision.dispatch.errors import Conflict, InvalidInput, NotFound, Unauthorized
from vision.dispatch.schemas import ClientKind, OperatorPublic, TokenKind
from vision.dispatch.security import burn_time, hash_password, new_token, token_hash, verify_password
from vision.dispatch.throttle import LoginThrottle
from vision.dispatch.workflow import DEPARTMENT_BOUND, DEPARTMENT_VISIBLE, Role, Status

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
    department: str | None = None  # a department account's (Role.DEPARTMENT) department

    def sees(self, department: str | None, status: str | None = None) -> bool:
        """Whether a case of `department` (in `status`, when given) is visible to this operator:
        a department account sees its own department's cases once dispatched to it, and no
        other (another's is "not found", not "forbidden": it does not learn the case exists)."""
        if self.role not in DEPARTMENT_BOUND:
            return True
        own = department is not None and department == self.department
        return own and (status is None or Status(status) in DEPARTMENT_VISIBLE)


@dataclass(frozen=True)
class ClientPrincipal:
    """An authenticated machine client; a device with `site_id` may only report for that site."""

    id: int
    name: str
    kind: ClientKind
    site_id: str | None


@dataclass(frozen=True)
class IssuedClientToken:
    """A machine client's new token (shown once) and who it is for."""

    id: int
    name: str
    kind: ClientKind
    token: str


@dataclass(frozen=True)
class _LoginCandidate:
    """What a login needs of an operator row, read in a short session of its own."""

    id: int
    active: bool
    password_hash: str
    role: Role


class Accounts:
    def __init__(self, ctx: ServiceContext, throttle: LoginThrottle | None = None) -> None:
        self.ctx = ctx
        self.throttle = throttle or LoginThrottle()

    # ---------------------------------------------------------------- operators
    def create_operator(
        self,
        username: str,
        password: str,
        role: Role | str,
        display_name: str | None = None,
        department: str | None = None,
    ) -> int:
        """A new operator; a department account (Role.DEPARTMENT) names one of the configured
        departments, and only it does."""
        try:
            role = Role(role)
        except ValueError:
            raise InvalidInput(f"role: unknown role '{role}' (one of {', '.join(Role)})") from None
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"password: at least {MIN_PASSWORD_LENGTH} characters")
        if role in DEPARTMENT_BOUND:
            known = self.ctx.config.department_ids()
            if not department:
                raise InvalidInput(f"department: a {role} account needs one (one of {', '.join(known)})")
            if department not in known:
                raise InvalidInput(f"department: unknown department '{department}' (one of {', '.join(known)})")
        elif department:
            raise InvalidInput(f"department: only a {Role.DEPARTMENT} account is bound to a department")
        with self.ctx.write() as s:
            op = m.Operator(
                username=username,
                password_hash=hash_password(password),
                role=role.value,
                display_name=display_name,
                department=department,
            )
            s.add(op)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"operator '{username}' exists") from None
            return op.id

    def set_password(self, username: str, password: str) -> None:
        """A new password; every token and UI session of the operator ends with the old one."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"password: at least {MIN_PASSWORD_LENGTH} characters")
        new_hash = hash_password(password)  # before the session: no lock held while hashing
        with self.ctx.write() as s:
            op = self._operator(s, username)
            op.password_hash = new_hash
            s.execute(delete(m.ApiToken).where(m.ApiToken.operator_id == op.id))
            s.commit()

    def set_operator_active(self, username: str, active: bool) -> None:
        """Deactivates (ending every token and session at once) or reactivates an operator.
        The last active admin cannot be deactivated: nobody could manage accounts any more."""
        with self.ctx.write() as s:
            op = self._operator(s, username)
            if not active and op.active and op.role == Role.ADMIN.value:
                admins = s.scalar(
                    select(func.count())
                    .select_from(m.Operator)
                    .where(m.Operator.role == Role.ADMIN.value, m.Operator.active.is_(True))
                )
                if (admins or 0) <= 1:
                    raise Conflict(f"operator '{username}' is the last active admin")
            op.active = active
            if not active:
                s.execute(delete(m.ApiToken).where(m.ApiToken.operator_id == op.id))
            s.commit()

    @staticmethod
    def _operator(s: Session, username: str) -> m.Operator:
        op = s.scalar(select(m.Operator).where(m.Operator.username == username))
        if op is None:
            raise NotFound(f"operator '{username}' does not exist")
        return op

    def list_operators(self) -> list[OperatorPublic]:
        with self.ctx.read() as s:
            return [OperatorPublic.model_validate(op) for op in s.scalars(select(m.Operator).order_by(m.Operator.id))]

    def login(
        self, username: str, password: str, kind: TokenKind = "api", client_address: str | None = None
    ) -> tuple[str, datetime, Role]:
        """A new operator token of `kind`: (token, expiry, role). Unknown user and wrong
        password take the same time and give the same error. Repeated failures for the
        username or from `client_address` are refused for a growing delay (TooManyAttempts)
        without a password check. The password is checked with no database session open,
        so a slow hash never holds a transaction or SQLite's write lock."""
        if kind not in get_args(TokenKind):
            raise InvalidInput("kind: 'api' or 'session'")
        self.throttle.check(username, client_address)
        candidate = self._login_candidate(username)
        if candidate is None:
            burn_time(password)
            ok = False
        else:
            ok = verify_password(password, candidate.password_hash) and candidate.active
        if candidate is None or not ok:
            self.throttle.failed(username, client_address)
            raise Unauthorized("wrong username or password")
        self.throttle.succeeded(username)
        token = new_token(TOKEN_PREFIX[kind])
        expires = self.ctx.clock() + timedelta(seconds=self.ctx.settings.token_ttl_s)
        with self.ctx.write() as s:
            # re-checked in the writing transaction: deactivated between the read and now?
            still_active = s.scalar(select(m.Operator.active).where(m.Operator.id == candidate.id))
            if not still_active:
                raise Unauthorized("wrong username or password")
            s.add(m.ApiToken(token_hash=token_hash(token), operator_id=candidate.id, kind=kind, expires_at=expires))
            s.commit()
        return token, expires, candidate.role

    def _login_candidate(self, username: str) -> _LoginCandidate | None:
        with self.ctx.read() as s:
            op = s.scalar(select(m.Operator).where(m.Operator.username == username))
            if op is None:
                return None
            return _LoginCandidate(op.id, op.active, op.password_hash, Role(op.role))

    def logout(self, token: str) -> None:
        with self.ctx.write() as s:
            row = s.scalar(select(m.ApiToken).where(m.ApiToken.token_hash == token_hash(token)))
            if row is not None:
                s.delete(row)
                s.commit()

    def authenticate_operator(self, token: str) -> OperatorPrincipal | None:
        with self.ctx.read() as s:
            row = s.scalar(
                select(m.ApiToken)
                .options(selectinload(m.ApiToken.operator))
                .where(m.ApiToken.token_hash == token_hash(token))
            )
            if row is None or row.expires_at <= self.ctx.clock() or not row.operator.active:
                return None
            kind: TokenKind = "session" if row.kind == "session" else "api"
            op = row.operator
            return OperatorPrincipal(op.id, op.username, Role(op.role), kind, op.department)

    # ------------------------------------------------------------------ clients
    def create_client(
        self, name: str, kind: ClientKind = "device", site_id: str | None = None, *, site_less: bool = False
    ) -> tuple[int, str]:
        """Registers an edge box ('device') or an Open311 client ('open311'); returns (id, token).
        The token is shown once: only its hash is stored. A device is bound to `site_id`
        (it may report only for that site, so it cannot post as, or merge into, another
        site's cameras); a device for any site needs `site_less=True` (tests, demos)."""
        if kind not in get_args(ClientKind):
            raise InvalidInput("kind: 'device' or 'open311'")
        if kind == "device" and site_id is None and not site_less:
            raise InvalidInput("site_id: a device is bound to a site (site-less only when asked for explicitly)")
        token = new_token(TOKEN_PREFIX[kind])
        with self.ctx.write() as s:
            c = m.Client(name=name, kind=kind, site_id=site_id, token_hash=token_hash(token))
            s.add(c)
            try:
                s.commit()
            except IntegrityError:
                raise Conflict(f"client '{name}' exists") from None
            return c.id, token

    def revoke_client(self, name: str) -> None:
        """The client's token stops working at once (its cases stay); `rotate_client_token` re-enables it."""
        with self.ctx.write() as s:
            self._client(s, name).active = False
            s.commit()

    def rotate_client_token(self, name: str) -> IssuedClientToken:
        """A new token for the client (shown once); the old one stops working at once.
        A revoked client is active again with the new token."""
        with self.ctx.write() as s:
            c = self._client(s, name)
            kind: ClientKind = "open311" if c.kind == "open311" else "device"
            token = new_token(TOKEN_PREFIX[kind])
            c.token_hash = token_hash(token)
            c.active = True
            s.commit()
            return IssuedClientToken(c.id, c.name, kind, token)

    @staticmethod
    def _client(s: Session, name: str) -> m.Client:
        c = s.scalar(select(m.Client).where(m.Client.name == name))
        if c is None:
            raise NotFound(f"client '{name}' does not exist")
        return c

    def authenticate_client(self, token: str, kind: ClientKind) -> ClientPrincipal | None:
        with self.ctx.read() as s:
            c = s.scalar(select(m.Client).where(m.Client.token_hash == token_hash(token)))
            if c is None or not c.active or c.kind != kind:
                return None
            return ClientPrincipal(c.id, c.name, kind, c.site_id)
