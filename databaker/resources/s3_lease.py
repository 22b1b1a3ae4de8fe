"""The lease of an S3 data root: the object ``_lease/bake.json``, written conditionally.

- Taken with ``PUT If-None-Match: *``: of several bakes asking at once, S3 lets exactly one
  create the object.
- Renewed every third of its time to live with ``PUT If-Match: <its ETag>``, and given back with
  ``DELETE If-Match``, so a holder never overwrites or deletes a lease that is no longer its own.
- Expired when not renewed for its time to live, measured on the server's clock (the object's
  ``Last-Modified`` against the response's ``Date``), so clocks of the machines do not matter.
  An expired lease (its holder killed or stalled) is taken over with ``PUT If-Match`` on the
  expired object's ETag, so again only one contender wins.

Every lease carries its holder's token: a request whose answer was lost (and retried by the AWS
client) is recognised as this holder's own by reading the lease back. The holder counts the
lease lost once it has not renewed it for two thirds of its time to live, before any other bake
can take it over, and from then on :meth:`confirm` refuses every write.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from databaker.resources.aws import S3Clients, aws_reason
from databaker.resources.lease import Lease, LeaseError, LeaseHolder, LeaseLost, describe

log = logging.getLogger(__name__)

SAFE_SHARE = 2 / 3
"""Of the time to live, how long after its last renewal the holder still trusts its lease."""


@dataclass(frozen=True)
class _Current:
    holder: LeaseHolder | None
    etag: str
    expired: bool


class S3Lease(Lease):
    poll_seconds = 2.0

    def __init__(
        self,
        clients: S3Clients,
        bucket: str,
        key: str,
        where: str,
        holder: LeaseHolder,
        ttl_seconds: float,
    ) -> None:
        super().__init__(where, holder)
        self._clients, self._bucket, self._key = clients, bucket, key
        self.ttl_seconds = ttl_seconds
        self._etag = ""
        self._renewed = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def try_acquire(self) -> tuple[bool, LeaseHolder | None]:
        started = time.monotonic()
        previous = None
        try:
            etag = self._put(IfNoneMatch="*")
        except ClientError as error:
            if not _precondition_failed(error):
                raise self._error("taking", error) from None
            current = self._current()
            if current is None:
                return False, None
            if current.holder and current.holder.token == self.holder.token:
                etag = current.etag
            elif not current.expired:
                return False, current.holder
            else:
                try:
                    etag = self._put(IfMatch=current.etag)
                except ClientError as error:
                    if _precondition_failed(error):
                        return False, None
                    raise self._error("taking over", error) from None
                previous = current.holder
        except BotoCoreError as error:
            raise self._error("taking", error) from None
        self._etag, self._renewed, self._lost = etag, started, None
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._renew, name="s3-lease", daemon=True)
        self._heartbeat.start()
        return True, previous

    def confirm(self) -> None:
        if self._lost:
            raise LeaseLost(f"the lease on {self.where} was lost: {self._lost}")
        quiet = time.monotonic() - self._renewed
        if quiet > SAFE_SHARE * self.ttl_seconds:
            raise LeaseLost(
                f"the lease on {self.where} was not renewed for {quiet:.0f} s of its "
                f"{self.ttl_seconds:g} s: another bake may have taken it over"
            )

    def release(self) -> None:
        """Give the lease back; on failure only warn: the lease expires unless renewed."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        if self._lost:
            return
        try:
            self._give_back()
        except (ClientError, BotoCoreError, LeaseError) as error:
            reason = str(error) if isinstance(error, LeaseError) else aws_reason(error)
            log.warning(
                f"could not give back the lease on {self.where} ({reason}): it expires "
                f"{self.ttl_seconds:g} s after its last renewal"
            )

    def _give_back(self) -> None:
        try:
            with self._clients.lent() as s3:
                s3.delete_object(Bucket=self._bucket, Key=self._key, IfMatch=self._etag)
        except ClientError as error:
            if not (_precondition_failed(error) or _not_implemented(error)):
                raise
            # Renewed by a request whose answer was lost, or a server without conditional
            # deletes: delete only what is still this holder's.
            current = self._current()
            if current and current.holder and current.holder.token == self.holder.token:
                with self._clients.lent() as s3:
                    s3.delete_object(Bucket=self._bucket, Key=self._key)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_seconds / 3):
            started = time.monotonic()
            try:
                self._etag = self._put(IfMatch=self._etag, renewed=time.time())
                self._renewed = started
            except ClientError as error:
                if not _precondition_failed(error):
                    continue
                try:
                    current = self._current()
                except LeaseError:
                    continue
                if current and current.holder and current.holder.token == self.holder.token:
                    self._etag = current.etag
                    continue
                self._lost = f"taken over by {describe(current.holder if current else None)}"
                return
            except BotoCoreError:
                # Tried again at the next beat; confirm() refuses writes if none succeeds.
                continue

    def _put(self, **conditions: Any) -> str:
        renewed = conditions.pop("renewed", None)
        body = self.holder.to_json(ttl_seconds=self.ttl_seconds, renewed=renewed)
        with self._clients.lent() as s3:
            response = s3.put_object(Bucket=self._bucket, Key=self._key, Body=body, **conditions)
        return response["ETag"]

    def _current(self) -> _Current | None:
        """The lease there now; None if there is none (given back meanwhile)."""
        with self._clients.lent() as s3:
            try:
                response = s3.get_object(Bucket=self._bucket, Key=self._key)
            except s3.exceptions.NoSuchKey:
                return None
            except (ClientError, BotoCoreError) as error:
                raise self._error("reading", error) from None
            data = response["Body"].read()
        age = (_server_time(response) - response["LastModified"]).total_seconds()
        expired = age > _ttl(data, default=self.ttl_seconds)
        return _Current(LeaseHolder.from_json(data), response["ETag"], expired)

    def _error(self, doing: str, error: ClientError | BotoCoreError) -> LeaseError:
        return LeaseError(f"{doing} the lease on {self.where} failed: {aws_reason(error)}")


def _ttl(data: bytes, *, default: float) -> float:
    """The time to live its holder gave the lease (holders may be configured differently)."""
    try:
        return float(json.loads(data).get("ttl_seconds", default))
    except (ValueError, TypeError, AttributeError):
        return default


def _server_time(response: dict[str, Any]) -> datetime:
    return parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])


def _precondition_failed(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = error.response.get("Error", {}).get("Code")
    # AWS answers 409 ConditionalRequestConflict to a conditional write racing another.
    return status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")


def _not_implemented(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "NotImplemented"
