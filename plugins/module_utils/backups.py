# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where snapshots are kept: a local directory and an S3 prefix (SSE-KMS), with retention.

One function per S3 call, each mapping botocore errors to a message that says what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import tempfile

from ansible_collections.heracles.secrets.plugins.module_utils import snapshot as snap
from ansible_collections.heracles.secrets.plugins.module_utils.durations import parse_duration
from ansible_collections.heracles.secrets.plugins.module_utils.errors import join_hint

try:
    import boto3
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:  # pragma: no cover
    HAS_BOTO3 = False

SUFFIX = ".snap"
SIDE_FILES = (".sha256", ".sig")  # beside every snapshot; retention deletes them with it
SIGNATURE_METADATA = "heracles-signature"  # the signature document, base64 (snapshot_signing.encode_metadata)
S3_SPEC = dict(
    bucket=dict(type="str"),
    prefix=dict(type="str", default=""),
    kms_key_id=dict(type="str", no_log=False),
    region=dict(type="str"),
    endpoint_url=dict(type="str"),
)


class BackupError(Exception):
    def __init__(self, message, hint=None):
        super(BackupError, self).__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self):
        return join_hint(self.message, self.hint)


def _aws(exc, what):
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return BackupError("%s: %s: %s" % (what, err.get("Code"), err.get("Message")),
                           "Check the bucket, prefix, region and the role's s3:*Object and kms:GenerateDataKey/Decrypt "
                           "permissions on the backup key")
    return BackupError("%s: %s" % (what, exc), "Check region, endpoint and network; nothing was changed")


class S3Store:
    def __init__(self, bucket, prefix="", kms_key_id=None, region=None, endpoint_url=None):
        if not HAS_BOTO3:
            raise BackupError("S3 shipping needs boto3 on the host that runs the module", "pip install boto3")
        if not bucket:
            raise BackupError("bucket is required for S3", "Set bucket (pulumi/platform creates one per environment)")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.kms_key_id = kms_key_id
        self.client = boto3.client("s3", region_name=region, endpoint_url=endpoint_url)

    def key(self, name):
        return self.prefix + os.path.basename(name)

    def list(self):
        """``ListObjectsV2`` under the prefix: snapshots, newest first."""
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(SUFFIX):
                        out.append(dict(key=obj["Key"], size=obj["Size"], modified=obj["LastModified"]))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _aws(exc, "Listing s3://%s/%s" % (self.bucket, self.prefix))
        return sorted(out, key=lambda o: (o["modified"], o["key"]), reverse=True)

    def head(self, key):
        """``HeadObject`` -> metadata dict or None."""
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise _aws(exc, "Reading s3://%s/%s" % (self.bucket, key))
        except botocore.exceptions.BotoCoreError as exc:
            raise _aws(exc, "Reading s3://%s/%s" % (self.bucket, key))

    def upload(self, path, sha256, signature=None):
        """``PutObject`` (multipart for large files) with SSE-KMS, the sha256 and the signature as metadata."""
        metadata = dict(sha256=sha256)
        if signature:
            metadata[SIGNATURE_METADATA] = signature
        extra = dict(ServerSideEncryption="aws:kms", Metadata=metadata)
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        try:
            self.client.upload_file(path, self.bucket, self.key(path), ExtraArgs=extra)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                boto3.exceptions.S3UploadFailedError) as exc:
            raise _aws(exc, "Uploading %s" % path)

    def download(self, key, path):
        """``GetObject`` into a temp file beside ``path``, checked against the stored sha256, then renamed (0600).

        Returns ``(sha256, the signature metadata value or None)``; the caller writes ``<path>.sig`` from it, so the
        file is verified like a local snapshot.
        """
        head = self.head(key)
        if head is None:
            raise BackupError("s3://%s/%s does not exist" % (self.bucket, key), "List the backups to pick an existing one")
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".partial", dir=directory)
        os.close(fd)
        try:
            self.client.download_file(self.bucket, key, tmp)
            digest = snap.file_sha256(tmp)
            expected = (head.get("Metadata") or {}).get("sha256")
            if expected and expected != digest:
                raise BackupError("s3://%s/%s does not match its recorded sha256" % (self.bucket, key),
                                  "Do not restore it; pick another backup")
            os.chmod(tmp, 0o600)
            os.rename(tmp, path)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _aws(exc, "Downloading s3://%s/%s" % (self.bucket, key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        snap.write_private(snap.sidecar(path), "%s  %s\n" % (digest, os.path.basename(path)))
        signature = (head.get("Metadata") or {}).get(SIGNATURE_METADATA)
        return digest, signature

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise _aws(exc, "Deleting s3://%s/%s" % (self.bucket, key))


def local_snapshots(directory):
    """Snapshots in ``directory``, newest first (by modification time, then name)."""
    out = []
    if not os.path.isdir(directory):
        return out  # nothing kept yet (or check mode before the directory exists)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.endswith(SUFFIX) and os.path.isfile(path) and not name.startswith("."):
            out.append(dict(key=path, size=os.path.getsize(path),
                            modified=datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)))
    return sorted(out, key=lambda o: (o["modified"], o["key"]), reverse=True)


def expired(items, keep_last=None, max_age=None, now=None):
    """Items to delete: beyond the newest ``keep_last``, or older than ``max_age``; never the newest one."""
    if not items:
        return []
    now = now or datetime.datetime.now(datetime.timezone.utc)
    limit = parse_duration(max_age) if max_age else None
    doomed = []
    for position, item in enumerate(items):
        if position == 0:
            continue  # the newest backup is never deleted by retention
        too_many = keep_last is not None and position >= keep_last
        too_old = limit is not None and (now - item["modified"]).total_seconds() > limit
        if too_many or too_old:
            doomed.append(item)
    return doomed
