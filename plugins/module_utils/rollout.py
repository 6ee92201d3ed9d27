# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A change in Vault, rolled out to the pods: force-sync the ExternalSecrets that read it, wait until ESO has
refreshed them, then restart the workloads that consume their Secrets (``kubectl rollout restart``).

Every decision compares times, so a rerun does nothing once the rollout is done:

* an ExternalSecret is synced only when its ``status.refreshTime`` is older than the change of the data it
  reads (``changed_at``, for example the KV version's ``created_time``);
* a workload is restarted only when it last (re)started -- the ``kubectl.kubernetes.io/restartedAt`` annotation
  of its pod template, or its creation -- before the newest change among the ExternalSecrets it consumes.

The decisions are pure functions; :func:`rollout` strings them together over the thin API layer of
``eso_kube`` (one function per call), so tests hand in a fake API, a fake clock and a fake sleep.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re
import time

from ansible_collections.heracles.secrets.plugins.module_utils import eso_kube
from ansible_collections.heracles.secrets.plugins.module_utils.eso import (
    FORCE_SYNC_ANNOTATION, condition, parse_time, ready_state)

WORKLOAD_KINDS = tuple(sorted(eso_kube.WORKLOAD_PLURALS))
RESTARTED_AT = eso_kube.RESTARTED_AT_ANNOTATION
# ESO records refreshTime in whole seconds: the force-sync annotation is set no earlier than the change it rolls
# out, so the refresh it triggers is recorded at or after that change. The wait is bounded (clock skew between
# this host and Vault must not stall a run); the refresh check below does not depend on it.
MAX_ALIGN_SECONDS = 2.0


class RolloutError(eso_kube.KubeError):
    """The rollout stopped; ``results`` holds what was done before (the module returns it)."""

    results = None


def changed_epoch(value):
    """Unix seconds of a change, rounded up: a number, digits, or an RFC 3339 time (fractions count); else None."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    if isinstance(value, (int, float)):
        return int(math.ceil(value))
    text = str(value).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return int(math.ceil(float(text)))
    stamp = parse_time(text)
    if stamp is None:
        return None
    fraction = re.match(r"^[^.]*T[^.]*\.(\d+)", text)
    if fraction and int(fraction.group(1)):
        stamp += 1
    return stamp


def rfc3339(epoch):
    """``2026-12-07T03:04:05Z`` (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _label(epoch):
    return rfc3339(epoch) if epoch is not None else "never"


# -- decisions ---------------------------------------------------------------------------------------
def refresh_of(obj):
    """(refreshTime as unix seconds or None, Ready True/False/None, the Ready condition's message)."""
    cond = condition(obj) or {}
    return parse_time((obj.get("status") or {}).get("refreshTime")), ready_state(obj), cond.get("message")


def plan_sync(obj, changed_at):
    """(sync?, reason) for one ExternalSecret and the time the data it reads last changed."""
    refresh, _ready, _msg = refresh_of(obj)
    if refresh is None:
        return True, "ESO has not recorded a refresh yet"
    if refresh < changed_at:
        return True, "refreshed %s, before the change at %s" % (rfc3339(refresh), rfc3339(changed_at))
    return False, "refreshed %s, at or after the change at %s" % (rfc3339(refresh), rfc3339(changed_at))


def is_refreshed(obj, changed_at, seen_before):
    """True once ESO reports Ready with a refresh after the change.

    After the change means ``refreshTime >= changed_at``, or a refreshTime newer than the one seen before the
    annotation was set (that refresh read Vault after the change: this also holds when ESO's clock lags Vault's).
    """
    refresh, ready, _msg = refresh_of(obj)
    if ready is not True or refresh is None:
        return False
    return refresh >= changed_at or seen_before is None or refresh > seen_before


def last_start(obj):
    """When the workload last (re)started its pods: its restartedAt annotation or its creation, the later one."""
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    stamps = [parse_time((template.get("annotations") or {}).get(RESTARTED_AT)),
              parse_time((obj.get("metadata") or {}).get("creationTimestamp"))]
    stamps = [s for s in stamps if s is not None]
    return max(stamps) if stamps else None


def plan_restart(obj, due_at):
    """(restart?, reason, last start) for one workload and the newest change among the Secrets it consumes."""
    last = last_start(obj)
    if last is None:
        return True, "no restartedAt annotation and no creationTimestamp", None
    if last < due_at:
        return True, "(re)started %s, before the change at %s" % (rfc3339(last), rfc3339(due_at)), last
    return False, "(re)started %s, at or after the change at %s" % (rfc3339(last), rfc3339(due_at)), last


# -- inputs ---------------------------------------------------------------------------------------------
def external_secret_refs(targets):
    """``namespace/name`` of each target, in order, without duplicates."""
    refs = []
    for target in targets:
        ref = "%s/%s" % eso_kube.parse_target(target)
        if ref not in refs:
            refs.append(ref)
    return refs


def changed_times(changed_at, refs):
    """``{ref: unix seconds}`` from one time for all or a mapping ``{namespace/name: time}``."""
    if isinstance(changed_at, dict):
        out = {}
        for ref in refs:
            if ref not in changed_at:
                raise eso_kube.KubeError("changed_at has no time for ExternalSecret %s" % ref,
                                         "Give one time for all, or one per namespace/name in external_secrets")
            out[ref] = _time(changed_at[ref], "changed_at[%s]" % ref)
        return out
    stamp = _time(changed_at, "changed_at")
    return dict((ref, stamp) for ref in refs)


def _time(value, what):
    stamp = changed_epoch(value)
    if stamp is None:
        raise eso_kube.KubeError("%s %r is not a time" % (what, value),
                                 "Give unix seconds or an RFC 3339 time such as 2026-12-07T03:04:05Z")
    return stamp


def workload_plans(workloads, refs):
    """Check ``workloads`` ({namespace, kind, name, secrets}) and tie each to the ExternalSecrets it consumes."""
    plans, seen = [], set()
    for item in workloads or []:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                                 for k in ("namespace", "kind", "name")):
            raise eso_kube.KubeError("workloads entry %r needs namespace, kind and name" % (item,),
                                     "Give each as {namespace, kind, name, secrets} (vault_consumers returns them so)")
        namespace, kind, name = item["namespace"], item["kind"], item["name"]
        if kind not in WORKLOAD_KINDS:
            raise eso_kube.KubeError(
                "workload %s/%s: kind %r is not one of %s" % (namespace, name, kind, ", ".join(WORKLOAD_KINDS)),
                "Restart other kinds by hand (kubectl rollout restart)")
        secrets = item.get("secrets")
        if secrets is None:
            consumed = [ref for ref in refs if ref.split("/", 1)[0] == namespace]
        else:
            consumed = [ref for ref in ("%s/%s" % (namespace, s) for s in secrets) if ref in refs]
        ref = "%s/%s/%s" % (namespace, kind, name)
        if not consumed:
            raise eso_kube.KubeError("workload %s consumes none of the ExternalSecrets given" % ref,
                                     "List the ExternalSecrets it reads in external_secrets, or name them in its "
                                     "secrets (Secret names in its namespace)")
        if ref not in seen:
            seen.add(ref)
            plans.append(dict(ref=ref, namespace=namespace, kind=kind, name=name, external_secrets=consumed))
    return plans


# -- the rollout ----------------------------------------------------------------------------------------
def rollout(api, version, targets, changed_at, workloads, check_mode, timeout, poll, annotation=FORCE_SYNC_ANNOTATION,
            clock=time.time, sleep=time.sleep):
    """Sync what is stale, wait for ESO, restart what started before the change.

    Everything is read first (a missing object fails before any change). Then the stale ExternalSecrets are
    annotated ``<annotation>=<unix time>``, each is polled every ``poll`` seconds until :func:`is_refreshed`, for
    at most ``timeout`` seconds (then :class:`RolloutError`, and no workload is restarted), and only then the
    workloads get ``restartedAt``. Returns ``{external_secrets, workloads, synced, restarted, left_alone, steps}``.
    """
    refs = external_secret_refs(targets)
    times = changed_times(changed_at, refs)
    plans = workload_plans(workloads, refs)
    objects = _read_all(api, version, refs, plans)
    would = "would " if check_mode else ""
    result = dict(external_secrets=[], workloads=[], synced=[], restarted=[], left_alone=[], steps=[])
    stale = _plan_syncs(refs, objects, times, result, would, annotation)
    restarts = _plan_restarts(plans, objects, times, result, would)
    if check_mode:
        for ref, _refresh, entry in stale:
            result["steps"].append("ExternalSecret %s: would force-sync and wait for ESO (%s)" % (ref, entry["reason"]))
        for entry in result["workloads"]:
            result["steps"].append("%s %s/%s: %s (%s)" % (entry["kind"], entry["namespace"], entry["name"],
                                                          entry["action"], entry["reason"]))
        return result
    try:
        _sync_and_wait(api, version, stale, times, result, timeout, poll, annotation, clock, sleep)
        _restart(api, result, restarts, rfc3339(clock()))
    except eso_kube.KubeError as exc:
        result["synced"] = [e["ref"] for e in result["external_secrets"] if e["action"] == "synced"]
        result["restarted"] = [e["ref"] for e in result["workloads"] if e["action"] == "restarted"]
        error = exc if isinstance(exc, RolloutError) else RolloutError(exc.message, exc.hint)
        error.results = result
        raise error
    return result


def _read_all(api, version, refs, plans):
    """Every ExternalSecret and workload by ref; a missing one fails before anything changes."""
    objects, missing = {}, []
    for ref in refs:
        namespace, name = ref.split("/", 1)
        objects[ref] = eso_kube.get_external_secret(api, version, namespace, name)
        if objects[ref] is None:
            missing.append("ExternalSecret %s" % ref)
    for plan in plans:
        objects[plan["ref"]] = eso_kube.get_workload(api, plan["namespace"], plan["kind"], plan["name"])
        if objects[plan["ref"]] is None:
            missing.append("%s %s/%s" % (plan["kind"], plan["namespace"], plan["name"]))
    if missing:
        raise eso_kube.KubeError("Not found: %s" % ", ".join(missing),
                                 "Check the names (kubectl get externalsecrets,deployments,statefulsets,daemonsets -A) "
                                 "and the consumers declared in vault/environments/<env>.yml; nothing was changed")
    return objects


def _plan_syncs(refs, objects, times, result, would, annotation):
    """Record each ExternalSecret's entry in ``result``; return ``[(ref, refresh time, entry)]`` of the stale ones."""
    stale = []
    for ref in refs:
        obj = objects[ref]
        sync, reason = plan_sync(obj, times[ref])
        refresh, _ready, _msg = refresh_of(obj)
        entry = dict(ref=ref, changed_at=rfc3339(times[ref]), refresh_time=_label(refresh) if refresh else None,
                     action=(would + "sync") if sync else "up to date", reason=reason,
                     before=((obj.get("metadata") or {}).get("annotations") or {}).get(annotation))
        entry["after"] = entry["before"]
        result["external_secrets"].append(entry)
        if sync:
            stale.append((ref, refresh, entry))
            result["synced"].append(ref)
        else:
            result["left_alone"].append(ref)
            result["steps"].append("ExternalSecret %s: up to date (%s)" % (ref, reason))
    return stale


def _plan_restarts(plans, objects, times, result, would):
    """Record each workload's entry in ``result``; return the entries of those started before their change."""
    restarts = []
    for plan in plans:
        due_at = max(times[ref] for ref in plan["external_secrets"])
        restart, reason, _last = plan_restart(objects[plan["ref"]], due_at)
        template = ((objects[plan["ref"]].get("spec") or {}).get("template") or {}).get("metadata") or {}
        entry = dict(ref=plan["ref"], namespace=plan["namespace"], kind=plan["kind"], name=plan["name"],
                     external_secrets=plan["external_secrets"], changed_at=rfc3339(due_at),
                     action=(would + "restart") if restart else "up to date", reason=reason,
                     before=(template.get("annotations") or {}).get(RESTARTED_AT))
        entry["after"] = entry["before"]
        result["workloads"].append(entry)
        if restart:
            restarts.append(entry)
            result["restarted"].append(plan["ref"])
        else:
            result["left_alone"].append(plan["ref"])
    return restarts


def _restart(api, result, restarts, stamp):
    """Set ``restartedAt=stamp`` on the workloads in ``restarts``; a step for each workload either way."""
    for entry in result["workloads"]:
        if entry not in restarts:
            result["steps"].append("%s %s/%s: up to date (%s)" % (entry["kind"], entry["namespace"],
                                                                  entry["name"], entry["reason"]))
            continue
        eso_kube.restart_workload(api, entry["namespace"], entry["kind"], entry["name"], stamp)
        entry.update(after=stamp, action="restarted")
        result["steps"].append("%s %s/%s: restarted (restartedAt=%s; %s)" % (entry["kind"], entry["namespace"],
                                                                             entry["name"], stamp, entry["reason"]))


def _sync_and_wait(api, version, stale, times, result, timeout, poll, annotation, clock, sleep):
    if not stale:
        return
    gap = max(times[ref] for ref, _refresh, _entry in stale) - clock()
    if gap > 0:
        sleep(min(gap, MAX_ALIGN_SECONDS))
    for ref, _refresh, entry in stale:
        namespace, name = ref.split("/", 1)
        value = int(clock())
        if entry["before"] == str(value):  # the same value would not be a change ESO sees
            value += 1
        eso_kube.annotate_external_secret(api, version, namespace, name, {annotation: str(value)})
        entry.update(after=str(value), action="synced")
        result["steps"].append("ExternalSecret %s: force-synced (%s=%s; %s)" % (ref, annotation, value, entry["reason"]))
    started = clock()
    deadline = started + timeout
    pending = list(stale)
    last_seen = {}
    while True:
        for item in list(pending):
            ref, seen_before, entry = item
            namespace, name = ref.split("/", 1)
            obj = eso_kube.get_external_secret(api, version, namespace, name)
            if obj is None:
                raise RolloutError("ExternalSecret %s disappeared while waiting for ESO to refresh it" % ref,
                                   "Check who deleted it (kubectl get events -n %s); no workload was restarted"
                                   % namespace)
            if is_refreshed(obj, times[ref], seen_before):
                pending.remove(item)
                refresh, _ready, _msg = refresh_of(obj)
                entry.update(refresh_time=rfc3339(refresh), waited=round(clock() - started, 1))
                result["steps"].append("ExternalSecret %s: ESO refreshed it at %s, Ready (waited %.1f s)"
                                       % (ref, rfc3339(refresh), entry["waited"]))
            else:
                last_seen[ref] = obj
        if not pending:
            return
        if clock() >= deadline:
            raise _timeout_error(pending, times, timeout, last_seen)
        sleep(max(0.0, min(poll, deadline - clock())))


def _timeout_error(pending, times, timeout, last_seen):
    parts = []
    for ref, _seen_before, _entry in pending:
        refresh, ready, message = refresh_of(last_seen.get(ref) or {})
        state = {True: "Ready", False: "not Ready", None: "no Ready condition"}[ready]
        parts.append("%s (refreshTime %s, change at %s, %s%s)" % (ref, _label(refresh), rfc3339(times[ref]), state,
                                                                  ": %s" % message if message and ready is not True
                                                                  else ""))
    first = pending[0][0].split("/", 1)
    return RolloutError(
        "ESO did not refresh ExternalSecret%s %s within %gs of the force-sync; no workload was restarted"
        % ("s" if len(parts) > 1 else "", "; ".join(parts), timeout),
        "Check that the ESO controller runs (kubectl -n external-secrets logs deploy/external-secrets) and "
        "kubectl -n %s describe externalsecret %s (its SecretStore Ready, refreshPolicy not CreatedOnce); "
        "once it refreshes, rerun: what is left is synced and restarted" % (first[0], first[1]))
