"""A real S3-compatible store for the archive's tests (the `s3_store` fixture, conftest.py): moto's standalone server (`python -m moto.server`, the S3 API
over HTTP) started here as its own process, with request signing enforced (INITIAL_NO_AUTH_ACTION_COUNT: after the
first three calls, which make the IAM user, its bucket policy and its access key, every request must be signed by a
key moto issued, so a wrong secret is refused as AWS would refuse it). The key goes into the test Vault; the archive
settings name it only by `vault:` reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import hvac
from trading_platform.devstack import free_port
from trading_platform.testing.plugin import VaultEndpoint
from trading_platform.testing.waiting import wait_for

BUCKET = "ledger-archive"


@dataclass(frozen=True)
class S3Store:
    endpoint: str
    access_key_id: str
    secret_access_key: str
    vault_path: str  # secret/<vault_path> holds access_key_id and secret_access_key
    vault: VaultEndpoint

    def client(self, secret: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=secret or self.secret_access_key,
        )

    def env(self, prefix: str, vault_path: str | None = None) -> dict[str, str]:
        """The settings of an archive to this store under `prefix`, credentials by Vault reference."""
        path = vault_path or self.vault_path
        return {
            "TRADING_AUDIT__ARCHIVE_TARGET": "s3",
            "TRADING_AUDIT__ARCHIVE_S3_BUCKET": BUCKET,
            "TRADING_AUDIT__ARCHIVE_S3_PREFIX": prefix,
            "TRADING_AUDIT__ARCHIVE_S3_ENDPOINT_URL": self.endpoint,
            "TRADING_AUDIT__ARCHIVE_S3_ACCESS_KEY_ID": f"vault:secret/{path}#access_key_id",
            "TRADING_AUDIT__ARCHIVE_S3_SECRET_ACCESS_KEY": f"vault:secret/{path}#secret_access_key",
            "TRADING_VAULT__ADDR": self.vault.address,
            "TRADING_VAULT__TOKEN": self.vault.token,
        }

    def put_secret(self, path: str, access_key_id: str, secret_access_key: str) -> None:
        vault = hvac.Client(url=self.vault.address, token=self.vault.token)
        vault.secrets.kv.v2.create_or_update_secret(
            path=path, secret={"access_key_id": access_key_id, "secret_access_key": secret_access_key}
        )


@contextmanager
def moto_s3(vault_endpoint: VaultEndpoint, folder: Path) -> Iterator[S3Store]:
    """moto's server on a free port, an IAM user allowed the bucket, the bucket, the user's key in Vault."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (folder / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        assert server.poll() is None, f"moto's server exited with {server.returncode} (log: {log.name})"
        try:
            return httpx.get(f"{endpoint}/moto-api/", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(answers, 60, "moto's S3 server to answer")
        iam = boto3.client(
            "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        iam.create_user(UserName="audit-archiver")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
                }
            ],
        }
        iam.put_user_policy(UserName="audit-archiver", PolicyName="archive", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="audit-archiver")["AccessKey"]
        store = S3Store(
            endpoint,
            key["AccessKeyId"],
            key["SecretAccessKey"],
            f"trading/tests/{uuid.uuid4().hex[:10]}/s3",
            vault_endpoint,
        )
        store.client().create_bucket(Bucket=BUCKET)
        store.put_secret(store.vault_path, store.access_key_id, store.secret_access_key)
        yield store
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
