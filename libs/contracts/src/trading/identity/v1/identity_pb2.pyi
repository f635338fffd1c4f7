from trading.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityEvent(_message.Message):
    __slots__ = ("envelope", "actor", "client_address", "login_succeeded", "login_failed", "login_locked_out", "session_revoked", "user_created", "user_disabled", "user_enabled", "user_reset", "role_granted", "role_revoked", "api_key_created", "api_key_revoked", "admin_bootstrapped", "signing_key_rotated")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LOGIN_SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    LOGIN_FAILED_FIELD_NUMBER: _ClassVar[int]
    LOGIN_LOCKED_OUT_FIELD_NUMBER: _ClassVar[int]
    SESSION_REVOKED_FIELD_NUMBER: _ClassVar[int]
    USER_CREATED_FIELD_NUMBER: _ClassVar[int]
    USER_DISABLED_FIELD_NUMBER: _ClassVar[int]
    USER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    USER_RESET_FIELD_NUMBER: _ClassVar[int]
    ROLE_GRANTED_FIELD_NUMBER: _ClassVar[int]
    ROLE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    API_KEY_CREATED_FIELD_NUMBER: _ClassVar[int]
    API_KEY_REVOKED_FIELD_NUMBER: _ClassVar[int]
    ADMIN_BOOTSTRAPPED_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_ROTATED_FIELD_NUMBER: _ClassVar[int]
    envelope: _common_pb2.Envelope
    actor: str
    client_address: str
    login_succeeded: LoginSucceeded
    login_failed: LoginFailed
    login_locked_out: LoginLockedOut
    session_revoked: SessionRevoked
    user_created: UserCreated
    user_disabled: UserDisabled
    user_enabled: UserEnabled
    user_reset: UserReset
    role_granted: RoleGranted
    role_revoked: RoleRevoked
    api_key_created: ApiKeyCreated
    api_key_revoked: ApiKeyRevoked
    admin_bootstrapped: AdminBootstrapped
    signing_key_rotated: SigningKeyRotated
    def __init__(self, envelope: _Optional[_Union[_common_pb2.Envelope, _Mapping]] = ..., actor: _Optional[str] = ..., client_address: _Optional[str] = ..., login_succeeded: _Optional[_Union[LoginSucceeded, _Mapping]] = ..., login_failed: _Optional[_Union[LoginFailed, _Mapping]] = ..., login_locked_out: _Optional[_Union[LoginLockedOut, _Mapping]] = ..., session_revoked: _Optional[_Union[SessionRevoked, _Mapping]] = ..., user_created: _Optional[_Union[UserCreated, _Mapping]] = ..., user_disabled: _Optional[_Union[UserDisabled, _Mapping]] = ..., user_enabled: _Optional[_Union[UserEnabled, _Mapping]] = ..., user_reset: _Optional[_Union[UserReset, _Mapping]] = ..., role_granted: _Optional[_Union[RoleGranted, _Mapping]] = ..., role_revoked: _Optional[_Union[RoleRevoked, _Mapping]] = ..., api_key_created: _Optional[_Union[ApiKeyCreated, _Mapping]] = ..., api_key_revoked: _Optional[_Union[ApiKeyRevoked, _Mapping]] = ..., admin_bootstrapped: _Optional[_Union[AdminBootstrapped, _Mapping]] = ..., signing_key_rotated: _Optional[_Union[SigningKeyRotated, _Mapping]] = ...) -> None: ...

class LoginSucceeded(_message.Message):
    __slots__ = ("username", "session_id", "method", "api_key_id")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    username: str
    session_id: str
    method: str
    api_key_id: str
    def __init__(self, username: _Optional[str] = ..., session_id: _Optional[str] = ..., method: _Optional[str] = ..., api_key_id: _Optional[str] = ...) -> None: ...

class LoginFailed(_message.Message):
    __slots__ = ("username", "reason")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    username: str
    reason: str
    def __init__(self, username: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class LoginLockedOut(_message.Message):
    __slots__ = ("scope", "subject", "locked_until")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    LOCKED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    scope: str
    subject: str
    locked_until: int
    def __init__(self, scope: _Optional[str] = ..., subject: _Optional[str] = ..., locked_until: _Optional[int] = ...) -> None: ...

class SessionRevoked(_message.Message):
    __slots__ = ("username", "session_id", "reason")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    username: str
    session_id: str
    reason: str
    def __init__(self, username: _Optional[str] = ..., session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UserCreated(_message.Message):
    __slots__ = ("username", "roles")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    username: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ...) -> None: ...

class UserDisabled(_message.Message):
    __slots__ = ("username", "revoked_session_ids")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    REVOKED_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    username: str
    revoked_session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., revoked_session_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UserEnabled(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class UserReset(_message.Message):
    __slots__ = ("username", "revoked_session_ids")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    REVOKED_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    username: str
    revoked_session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., revoked_session_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class RoleGranted(_message.Message):
    __slots__ = ("username", "role")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    username: str
    role: str
    def __init__(self, username: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class RoleRevoked(_message.Message):
    __slots__ = ("username", "role", "revoked_session_ids")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    username: str
    role: str
    revoked_session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., role: _Optional[str] = ..., revoked_session_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ApiKeyCreated(_message.Message):
    __slots__ = ("key_id", "name", "owner", "roles", "expires_at")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    owner: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    expires_at: int
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., owner: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., expires_at: _Optional[int] = ...) -> None: ...

class ApiKeyRevoked(_message.Message):
    __slots__ = ("key_id", "owner")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    owner: str
    def __init__(self, key_id: _Optional[str] = ..., owner: _Optional[str] = ...) -> None: ...

class AdminBootstrapped(_message.Message):
    __slots__ = ("username",)
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    username: str
    def __init__(self, username: _Optional[str] = ...) -> None: ...

class SigningKeyRotated(_message.Message):
    __slots__ = ("kid", "previous_kid")
    KID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_KID_FIELD_NUMBER: _ClassVar[int]
    kid: str
    previous_kid: str
    def __init__(self, kid: _Optional[str] = ..., previous_kid: _Optional[str] = ...) -> None: ...
