"""sweep = delete what a failed job made and could not delete, if it still carries its tag.

A job that fails after its snapshot (or restored share) exists deletes it
within ``cleanup_timeout``; what it could not delete -- Manila unreachable,
its token expired -- is recorded with the job, and the worker's sweeper comes
back for it later with the service's own credentials.  Only a resource that
still carries the failed job's tag is deleted: anything else is not ours to touch.
"""

from __future__ import annotations

import logging

from manila_protector import exception
from manila_protector.plugins import delivery as delivery_mod
from manila_protector.plugins import job_tags

LOG = logging.getLogger(__name__)

SNAPSHOT = "snapshot"
SHARE = "share"


class Sweep(delivery_mod.Operation):
    """The sweep operation."""

    def __call__(self, kind: str, resource_id: str, job_tag: str) -> bool:
        """Delete the ``kind`` (``snapshot`` or ``share``) ``resource_id`` job ``job_tag`` left.

        :returns: whether nothing of the job's is left there (deleted, gone, or not
            the job's any more); False to come back later.
        """
        delivery = self._delivery
        get = self._manila.get_snapshot if kind == SNAPSHOT else self._manila.get_share
        try:
            resource = delivery.read(lambda: get(resource_id), delivery.cleanup_deadline(),
                                     f"reading {kind} {resource_id}")
        except exception.NotFound:
            return True
        except exception.ProtectorError as exc:
            LOG.warning("sweeping %s %s of job %s: %s; trying again later", kind, resource_id,
                        job_tag, exc)
            return False
        if job_tags.tag_of(resource) != job_tag:
            LOG.warning("%s %s no longer carries failed job %s's tag: left alone", kind,
                        resource_id, job_tag)
            return True
        LOG.info("sweeping %s %s, left by failed job %s", kind, resource_id, job_tag)
        if kind == SNAPSHOT:
            return delivery.discard_snapshot(resource_id)
        return delivery.discard_share(resource_id)
