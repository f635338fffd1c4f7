"""tradectl login / logout, and the admin's users, roles and apikeys: the operator's side of the gateway.

`tradectl login` takes a password and a TOTP code (prompted, or TRADECTL_PASSWORD / --password-stdin and --totp for
scripts), or an API key (TRADECTL_API_KEY / --api-key-stdin), and keeps the tokens in
`$XDG_CONFIG_HOME/tradectl/credentials.json` (or ~/.config/tradectl), readable by the owner only. Other commands call
`bearer_metadata()` for the current access token: it refreshes the token by itself shortly before it expires (a lock
file keeps two tradectl processes from spending one single-use refresh token twice, which would end the session).
With TRADECTL_API_KEY set, that key is exchanged instead, and nothing is written.

The gateway's URL: --gateway, else TRADECTL_GATEWAY_URL, else the one `tradectl up` recorded in the run folder
(TRADECTL_RUN_DIR, default .run), else http://127.0.0.1:18080.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table
from trading_platform.devstack import DEFAULT_RUN_DIR
from trading_platform.identity import TOKEN_METADATA_KEY

DEFAULT_GATEWAY_URL = "http://127.0.0.1:18080"
REFRESH_MARGIN_S = 30  # refresh an access token this long before it expires
CREDENTIALS_FILE = "credentials.json"
console = Console(stderr=True)


class GatewayError(RuntimeError):
    """The gateway refused or could not be reached; the message is what to tell the operator."""


# -- where things are -------------------------------------------------------------------------------------------
def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tradectl"


def credentials_path() -> Path:
    return config_dir() / CREDENTIALS_FILE


def gateway_url(explicit: str | None = None) -> str:
    if explicit:
        return explicit.rstrip("/")
    if os.environ.get("TRADECTL_GATEWAY_URL"):
        return os.environ["TRADECTL_GATEWAY_URL"].rstrip("/")
    run_dir = Path(os.environ.get("TRADECTL_RUN_DIR", str(DEFAULT_RUN_DIR)))
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return str(json.loads((run_dir / "platform.json").read_text())["gateway_url"]).rstrip("/")
    return DEFAULT_GATEWAY_URL


# -- credentials on disk (owner-only) ---------------------------------------------------------------------------
def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)  # never a half-written file


def load_credentials() -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(credentials_path().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One tradectl at a time reads, refreshes and writes the credentials."""
    config_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(config_dir() / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _save(url: str, tokens: dict[str, Any]) -> dict[str, Any]:
    credentials = {
        "gateway_url": url,
        "username": tokens["username"],
        "roles": tokens["roles"],
        "session_id": tokens["session_id"],
        "access_token": tokens["access_token"],
        "expires_at": time.time() + int(tokens["expires_in"]),
        "refresh_token": tokens.get("refresh_token"),
    }
    _write_private(credentials_path(), credentials)
    return credentials


# -- talking to the gateway -------------------------------------------------------------------------------------
def _request(method: str, url: str, path: str, *, token: str | None = None, body: Any = None) -> Any:
    headers = {TOKEN_METADATA_KEY: f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url + path, json=body, headers=headers, timeout=10.0)
    except httpx.HTTPError as error:
        raise GatewayError(f"the gateway at {url} did not answer ({type(error).__name__}); is it up?") from None
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = problem.get("detail") or problem.get("title") or response.text
        except ValueError:
            detail = response.text[:200]
        if response.status_code == 429 and response.headers.get("retry-after"):
            detail += f" (retry after {response.headers['retry-after']} s)"
        raise GatewayError(f"{response.status_code}: {detail}")
    return response.json()


def login_with_password(url: str, username: str, password: str, totp_code: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": password}
    if totp_code:
        body["totp_code"] = totp_code
    with _locked():
        return _save(url, _request("POST", url, "/api/v1/auth/login", body=body))


def login_with_api_key(url: str, api_key: str) -> dict[str, Any]:
    with _locked():
        return _save(url, _request("POST", url, "/api/v1/auth/token", body={"api_key": api_key}))


def current_token() -> str | None:
    """The access token to send: TRADECTL_API_KEY's (exchanged now), else the stored one, refreshed when it is
    about to expire. None when not logged in or the session has ended (then the stored credentials are removed)."""
    api_key = os.environ.get("TRADECTL_API_KEY")
    if api_key:
        return str(_request("POST", gateway_url(), "/api/v1/auth/token", body={"api_key": api_key})["access_token"])
    with _locked():
        credentials = load_credentials()
        if credentials is None:
            return None
        if float(credentials["expires_at"]) - REFRESH_MARGIN_S > time.time():
            return str(credentials["access_token"])
        if not credentials.get("refresh_token"):
            return None  # an API key's token: log in again
        url = str(credentials["gateway_url"])
        try:
            tokens = _request("POST", url, "/api/v1/auth/refresh", body={"refresh_token": credentials["refresh_token"]})
        except GatewayError as error:
            if str(error).startswith("401"):
                credentials_path().unlink(missing_ok=True)
                return None
            raise
        return str(_save(url, tokens)["access_token"])


def bearer_metadata() -> list[tuple[str, str]]:
    """gRPC metadata (and HTTP header) carrying the current access token; empty when not logged in."""
    token = current_token()
    return [(TOKEN_METADATA_KEY, f"Bearer {token}")] if token else []


def _admin_token() -> tuple[str, str]:
    token = current_token()
    if token is None:
        raise GatewayError("not logged in: run `tradectl login` first")
    credentials = load_credentials()
    url = str(credentials["gateway_url"]) if credentials else gateway_url()
    return url, token


def _fail(error: GatewayError) -> typer.Exit:
    console.print(f"[red]{error}[/red]")
    return typer.Exit(1)


def _read_stdin_line() -> str:
    return sys.stdin.readline().rstrip("\n")


# -- commands ---------------------------------------------------------------------------------------------------
GATEWAY = typer.Option(None, "--gateway", help="gateway URL (default: TRADECTL_GATEWAY_URL or the run's)")


def login(
    username: str = typer.Option(None, "--username", "-u", envvar="TRADECTL_USERNAME", help="your user name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
    totp: str = typer.Option(None, "--totp", envvar="TRADECTL_TOTP", help="the 6-digit code of your authenticator"),
    api_key_stdin: bool = typer.Option(False, "--api-key-stdin", help="log in with an API key read from stdin"),
    gateway: str = GATEWAY,
) -> None:
    """Log in with your password and TOTP code (prompted unless given), or with an API key."""
    url = gateway_url(gateway)
    try:
        api_key = _read_stdin_line() if api_key_stdin else os.environ.get("TRADECTL_API_KEY")
        if api_key:
            credentials = login_with_api_key(url, api_key)
        else:
            username = username or typer.prompt("username")
            if password_stdin:
                password = _read_stdin_line()
            else:
                password = os.environ.get("TRADECTL_PASSWORD") or typer.prompt("password", hide_input=True)
            if totp is None and sys.stdin.isatty():
                totp = typer.prompt("TOTP code (empty for a viewer)", default="", show_default=False) or None
            credentials = login_with_password(url, username, password, totp)
    except GatewayError as error:
        raise _fail(error) from None
    console.print(
        f"[green]logged in[/green] as {credentials['username']} ({', '.join(credentials['roles']) or 'no roles'}) "
        f"at {url}; tokens in {credentials_path()}"
    )


def logout() -> None:
    """End your session at the gateway and forget the stored tokens."""
    with _locked():
        credentials = load_credentials()
        if credentials is None:
            console.print("not logged in")
            return
        body = {"refresh_token": credentials["refresh_token"]} if credentials.get("refresh_token") else None
        try:
            _request(
                "POST",
                str(credentials["gateway_url"]),
                "/api/v1/auth/logout",
                token=credentials["access_token"],
                body=body,
            )
        except GatewayError as error:
            console.print(f"[yellow]the gateway did not end the session: {error}[/yellow]")
        credentials_path().unlink(missing_ok=True)
    console.print("logged out")


users_app = typer.Typer(help="Users (admin): list, create, disable, enable, reset, sessions.", no_args_is_help=True)
roles_app = typer.Typer(help="Roles (admin): grant and revoke.", no_args_is_help=True)
apikeys_app = typer.Typer(help="API keys for scripts and CI (admin): create, list, revoke.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="machine-readable")


def _call(method: str, path: str, body: Any = None) -> Any:
    try:
        url, token = _admin_token()
        return _request(method, url, path, token=token, body=body)
    except GatewayError as error:
        raise _fail(error) from None


def _print_enrolment(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    user = result["user"]
    console.print(f"user {user['username']} ({', '.join(user['roles'])}): hand these over once, they are not kept")
    if result.get("password"):
        print(f"password:    {result['password']}")
    print(f"TOTP secret: {result['totp_secret']}")
    print(f"TOTP URI:    {result['totp_uri']}")


@users_app.command("list")
def users_list(as_json: bool = JSON) -> None:
    users = _call("GET", "/api/v1/users")
    if as_json:
        print(json.dumps(users, indent=2))
        return
    table = Table(title="users")
    for column in ("username", "roles", "disabled"):
        table.add_column(column)
    for user in users:
        table.add_row(user["username"], ", ".join(user["roles"]), "yes" if user["disabled"] else "")
    Console().print(table)


@users_app.command("create")
def users_create(
    username: str,
    role: list[str] = typer.Option(["viewer"], "--role", "-r", help="a role (repeat for several)"),
    as_json: bool = JSON,
) -> None:
    """Create a user; prints the generated password and the TOTP secret once."""
    _print_enrolment(_call("POST", "/api/v1/users", {"username": username, "roles": role}), as_json)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Refuse the user's logins and API keys; end the user's sessions."""
    _call("POST", f"/api/v1/users/{username}/disable")
    console.print(f"{username} disabled")


@users_app.command("enable")
def users_enable(username: str) -> None:
    _call("POST", f"/api/v1/users/{username}/enable")
    console.print(f"{username} enabled")


@users_app.command("reset")
def users_reset(username: str, as_json: bool = JSON) -> None:
    """A new password and TOTP secret (printed once); ends the user's sessions and lifts a lockout."""
    _print_enrolment(_call("POST", f"/api/v1/users/{username}/reset"), as_json)


@users_app.command("sessions")
def users_sessions(username: str, as_json: bool = JSON) -> None:
    sessions = _call("GET", f"/api/v1/users/{username}/sessions")
    if as_json:
        print(json.dumps(sessions, indent=2))
        return
    for session in sessions:
        print(f"{session['session_id']}  {session['method']}  since {time.ctime(session['created_at'])}")


@users_app.command("revoke-sessions")
def users_revoke_sessions(
    username: str, session_id: str = typer.Option(None, "--session", help="only this session")
) -> None:
    """End the user's sessions (or one of them): their refresh tokens stop working, their access tokens too."""
    if session_id:
        revoked = _call("DELETE", f"/api/v1/sessions/{session_id}")
    else:
        revoked = _call("DELETE", f"/api/v1/users/{username}/sessions")
    console.print(f"revoked {len(revoked['revoked_session_ids'])} session(s)")


@users_app.command("bootstrap")
def users_bootstrap(
    username: str = typer.Option("admin", "--username", "-u", help="the first admin's name"),
    secret_stdin: bool = typer.Option(False, "--secret-stdin", help="read the bootstrap secret from stdin"),
    run_dir: Path = typer.Option(DEFAULT_RUN_DIR, "--run-dir", help="the dev stack whose Vault holds the secret"),
    gateway: str = GATEWAY,
    as_json: bool = JSON,
) -> None:
    """Create the first admin with the one-time bootstrap secret (from stdin, TRADECTL_BOOTSTRAP_SECRET, or the dev
    Vault of the run folder, read with its root token). Prints the admin's TOTP secret once."""
    try:
        secret = _read_stdin_line() if secret_stdin else os.environ.get("TRADECTL_BOOTSTRAP_SECRET")
        if not secret:
            secret = _dev_bootstrap_secret(run_dir)
        password = os.environ.get("TRADECTL_PASSWORD") or typer.prompt(
            "the admin's new password", hide_input=True, confirmation_prompt=True
        )
        result = _request(
            "POST",
            gateway_url(gateway),
            "/api/v1/auth/bootstrap",
            body={"secret": secret, "username": username, "password": password},
        )
    except GatewayError as error:
        raise _fail(error) from None
    _print_enrolment(result, as_json)
    console.print(f"now add the TOTP secret to an authenticator and run `tradectl login -u {username}`")


def _dev_bootstrap_secret(run_dir: Path) -> str:
    import hvac
    from trading_platform.devstack import DevStack

    endpoints = DevStack.from_run_dir(run_dir).endpoints()
    try:
        client = hvac.Client(url=endpoints.vault_addr, token=endpoints.vault_token())
        response = client.secrets.kv.v2.read_secret_version(
            path="trading/gateway/bootstrap", raise_on_deleted_version=True
        )
    except (OSError, hvac.exceptions.VaultError) as error:
        raise GatewayError(
            f"no bootstrap secret in the dev Vault at {endpoints.vault_addr} ({type(error).__name__}): it is used "
            "once; pass another with --secret-stdin or TRADECTL_BOOTSTRAP_SECRET"
        ) from None
    return str(response["data"]["data"]["secret"])


@roles_app.command("grant")
def roles_grant(username: str, role: str) -> None:
    user = _call("POST", f"/api/v1/users/{username}/roles", {"role": role})
    console.print(f"{username}: {', '.join(user['roles'])}")


@roles_app.command("revoke")
def roles_revoke(username: str, role: str) -> None:
    """Take a role away; the user's sessions end (their tokens carried it)."""
    user = _call("DELETE", f"/api/v1/users/{username}/roles/{role}")
    console.print(f"{username}: {', '.join(user['roles']) or 'no roles'}")


@apikeys_app.command("create")
def apikeys_create(
    name: str,
    owner: str = typer.Option(..., "--owner", help="the user the key acts as"),
    role: list[str] = typer.Option(..., "--role", "-r", help="a role of the owner's (repeat for several)"),
    expires_in_s: int = typer.Option(30 * 24 * 3600, "--expires-in", help="seconds until the key stops working"),
    as_json: bool = JSON,
) -> None:
    """Create an API key; the key is printed once (only its hash is kept)."""
    created = _call(
        "POST", "/api/v1/apikeys", {"name": name, "owner": owner, "roles": role, "expires_in_s": expires_in_s}
    )
    if as_json:
        print(json.dumps(created, indent=2))
        return
    expires = time.ctime(created["key"]["expires_at"])
    console.print(f"key {created['key']['key_id']} for {owner} ({', '.join(role)}), expires {expires}")
    print(created["api_key"])


@apikeys_app.command("list")
def apikeys_list(as_json: bool = JSON) -> None:
    keys = _call("GET", "/api/v1/apikeys")
    if as_json:
        print(json.dumps(keys, indent=2))
        return
    table = Table(title="API keys")
    for column in ("key id", "name", "owner", "roles", "expires"):
        table.add_column(column)
    for key in keys:
        table.add_row(key["key_id"], key["name"], key["owner"], ", ".join(key["roles"]), time.ctime(key["expires_at"]))
    Console().print(table)


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: str) -> None:
    """Revoke a key; the access tokens it was exchanged for stop working too."""
    _call("DELETE", f"/api/v1/apikeys/{key_id}")
    console.print(f"key {key_id} revoked")


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.add_typer(users_app, name="users")
    app.add_typer(roles_app, name="roles")
    app.add_typer(apikeys_app, name="apikeys")
