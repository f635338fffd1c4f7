"""Request and response bodies: strict (unknown fields refused, sizes bounded), so bad input is a 422 naming the
field before any work is done."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{1,63}$"
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
# A login takes any name up to a bound (an unknown or malformed one fails like a wrong password).
LoginName = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
TotpCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
Role = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoginRequest(Strict):
    username: LoginName
    password: Password
    totp_code: TotpCode | None = Field(None, description="required for every role but viewer")


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LogoutRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


class ApiKeyExchange(Strict):
    api_key: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class BootstrapRequest(Strict):
    secret: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    username: Username
    password: Password


class TokenResponse(Strict):
    """The answer of login, refresh and the API-key exchange. It names the token's user and roles (what GET
    /api/v1/auth/me answers for it), so a client needs no other request before it can draw the user's view."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds the access token is valid for")
    refresh_token: str | None = Field(None, description="single use; absent for an API key's token")
    session_id: str
    username: str = Field(description="the access token's subject: the user (an API key's owner)")
    roles: list[str] = Field(description="the access token's roles, sorted (the user's roles at this login or refresh)")


class CreateUserRequest(Strict):
    username: Username
    roles: list[Role] = Field(default_factory=lambda: ["viewer"], max_length=16)
    password: Password | None = Field(None, description="omitted: the gateway generates one (returned once)")


class ResetUserRequest(Strict):
    password: Password | None = Field(None, description="omitted: the gateway generates one (returned once)")


class RoleRequest(Strict):
    role: Role


class UserView(Strict):
    username: str
    roles: list[str]
    disabled: bool
    created_at: float


class EnrolledUser(Strict):
    """What the admin hands to the user, once: the password (if generated) and the TOTP secret."""

    user: UserView
    password: str | None = None
    totp_secret: str
    totp_uri: str


class SessionView(Strict):
    session_id: str
    username: str
    created_at: float
    expires_at: float
    method: str


class CreateApiKeyRequest(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
    owner: Username
    roles: list[Role] = Field(min_length=1, max_length=16)
    expires_in_s: int = Field(30 * 24 * 3600, ge=1, description="at most TRADING_GATEWAY__API_KEY_MAX_TTL_S")


class ApiKeyView(Strict):
    key_id: str
    name: str
    owner: str
    roles: list[str]
    created_at: float
    expires_at: float
    created_by: str


class CreatedApiKey(Strict):
    key: ApiKeyView
    api_key: str = Field(description="shown once; only its hash is kept")


class IdentityView(Strict):
    subject: str
    kind: str
    roles: list[str]
    session_id: str


class Revoked(Strict):
    revoked_session_ids: list[str]


class Rotated(Strict):
    kid: str
    previous_kid: str
